package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/keystore"
)

// bodyUpstream records the headers and body of each request it gets.
type bodyUpstream struct {
	*httptest.Server
	mu     sync.Mutex
	header []http.Header
	body   []string
}

func newBodyUpstream(t *testing.T) *bodyUpstream {
	u := &bodyUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.header = append(u.header, r.Header.Clone())
		u.body = append(u.body, string(b))
		u.mu.Unlock()
	}))
	t.Cleanup(u.Close)
	return u
}

// last returns the headers and body of the last request.
func (u *bodyUpstream) last(t *testing.T) (http.Header, string) {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.header) == 0 {
		t.Fatal("the upstream got no request")
	}
	return u.header[len(u.header)-1], u.body[len(u.body)-1]
}

func (u *bodyUpstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.header)
}

// post sends POST url with a JSON body and header pairs.
func post(t *testing.T, url, body string, kv ...string) (*http.Response, string) {
	t.Helper()
	return send(t, "POST", url, body, kv...)
}

// stamped returns the created_by field of a JSON body.
func stamped(t *testing.T, body string) string {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("upstream body %q: %v", body, err)
	}
	return m["created_by"]
}

// addToken runs keyward keystore add and returns the token it printed.
func addToken(t *testing.T, file string, args ...string) string {
	t.Helper()
	r := runCLI(t, nil, append(append([]string{"keystore", "add"}, args...), file)...)
	if r.code != ExitOK {
		t.Fatalf("keystore add %v: %+v", args, r)
	}
	token := strings.TrimSuffix(r.stdout, "\n")
	if !strings.HasPrefix(token, keystore.TokenPrefix) || strings.Contains(token, "\n") || keystore.CheckToken(token) != nil {
		t.Fatalf("keystore add printed %q", r.stdout)
	}
	if !strings.Contains(r.stderr, "shown once") || strings.Contains(r.stderr, token) {
		t.Errorf("keystore add said %q", r.stderr)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), token) || !strings.Contains(string(b), keystore.Digest(token)) {
		t.Fatalf("the file holds the token, or not its digest:\n%s", b)
	}
	return token
}

// TestKeystoreAdd: the command appends entries that verify, keeps what
// the file held, and changes nothing when it refuses.
func TestKeystoreAdd(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keys.yaml")
	writeFile(t, file, "# the keys of the memory service\nkeys:\n    "+keystore.Digest("old-token")+":   # indented by 4\n        id: legacy\n        role: root\n")
	alice1 := addToken(t, file, "--id", "alice-laptop", "--subject", "alice", "--permission", "memories:read")
	alice2 := addToken(t, file, "--id", "alice-phone", "--subject", "alice", "--role", "account_admin", "--account", "acme")
	if alice1 == alice2 {
		t.Fatal("two adds printed the same token")
	}
	b, _ := os.ReadFile(file)
	if !strings.HasPrefix(string(b), "# the keys of the memory service\n") || !strings.Contains(string(b), "# indented by 4") {
		t.Errorf("the file lost its comments:\n%s", b)
	}
	ks, err := keystore.Load(file)
	if err != nil {
		t.Fatalf("the file no longer parses: %v\n%s", err, b)
	}
	for _, tc := range []struct {
		token, id, account string
		role               keyward.Role
		perms              []string
	}{
		{alice1, "alice-laptop", "", keyward.RoleUser, []string{"memories:read"}},
		{alice2, "alice-phone", "acme", keyward.RoleAccountAdmin, nil},
	} {
		res, _ := ks.VerifyKey(t.Context(), keyward.VerifyRequest{Key: tc.token, Permissions: tc.perms})
		if !res.Valid || res.Identity.KeyID != tc.id || res.Identity.UserID != "alice" || res.Identity.Role != tc.role || res.Identity.AccountID != tc.account {
			t.Errorf("token of %s verifies as %+v %+v", tc.id, res, res.Identity)
		}
	}
	if res, _ := ks.VerifyKey(t.Context(), keyward.VerifyRequest{Key: "old-token"}); !res.Valid || res.KeyID != "legacy" || res.Identity.UserID != "" {
		t.Errorf("the old entry verifies as %+v", res)
	}

	// A new file is created; -o json shows the token and its digest.
	fresh := filepath.Join(t.TempDir(), "new.yaml")
	r := runCLI(t, nil, "keystore", "add", "--id", "ci", "-o", "json", fresh)
	var out keystoreAdded
	if r.code != ExitOK || json.Unmarshal([]byte(r.stdout), &out) != nil || out.ID != "ci" || out.Role != "user" || out.SHA256 != keystore.Digest(out.Token) {
		t.Fatalf("keystore add -o json: %+v", r)
	}
	if ks, err := keystore.Load(fresh); err != nil || ks.Len() != 1 {
		t.Fatalf("the new file: %v", err)
	}
	// A file started with "keys:" and nothing under it gets the entry below.
	started := filepath.Join(t.TempDir(), "started.yaml")
	writeFile(t, started, "# service keys\nkeys:\n")
	addToken(t, started, "--id", "first")
	if ks, err := keystore.Load(started); err != nil || ks.Len() != 1 {
		t.Fatalf("the started file: %v", err)
	}

	// Refusals leave the file as it was.
	before, _ := os.ReadFile(file)
	flow := filepath.Join(t.TempDir(), "flow.yaml")
	writeFile(t, flow, "keys: {"+keystore.Digest("x")+": {id: x, role: user}}\n")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--id", "alice-laptop", file}, ExitUsage, `id "alice-laptop" is already used`},
		{[]string{"--subject", "alice", file}, ExitUsage, "--id is required"},
		{[]string{"--id", "x", "--role", "admin", file}, ExitUsage, `--role "admin"`},
		{[]string{"--id", "x", "--role", "root", "--account", "acme", file}, ExitUsage, "a root key belongs to no account"},
		{[]string{"--id", "x", "--permission", "a b", file}, ExitUsage, "permission 1"},
		{[]string{"--id", "x", "--subject", " alice", file}, ExitUsage, "subject begins or ends with white space"},
		{[]string{"--id", "y", flow}, ExitUsage, "flow style"},
	} {
		r := runCLI(t, nil, append([]string{"keystore", "add"}, tc.args...)...)
		line := checkFails(t, r, tc.code, tc.args)
		if !strings.Contains(line, tc.want) || r.stdout != "" {
			t.Errorf("keystore add %v: %q (stdout %q), want %q", tc.args, line, r.stdout, tc.want)
		}
	}
	if after, _ := os.ReadFile(file); string(after) != string(before) {
		t.Errorf("refused adds changed the file:\n%s", after)
	}
	broken := filepath.Join(t.TempDir(), "broken.yaml")
	writeFile(t, broken, "keys:\n  nope: {id: a, role: user}\n")
	checkFails(t, runCLI(t, nil, "keystore", "add", "--id", "b", broken), ExitConfig, nil)
}

// TestKeystoreAddConcurrent: keyward keystore add processes racing on one
// file each wait for the file's lock: every token they print verifies.
func TestKeystoreAddConcurrent(t *testing.T) {
	requireBinary(t)
	file := filepath.Join(t.TempDir(), "keys.yaml")
	const n = 8
	out := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			out[i] = runBinary(t, "", "", "keystore", "add", "--id", fmt.Sprintf("key-%d", i), "--subject", "svc", file)
		})
	}
	wg.Wait()
	ks, err := keystore.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if ks.Len() != n {
		t.Errorf("%d adds left %d keys: %v", n, ks.Len(), ks.IDs())
	}
	for i, r := range out {
		token := strings.TrimSuffix(r.stdout, "\n")
		res, _ := ks.VerifyKey(t.Context(), keyward.VerifyRequest{Key: token})
		if r.code != ExitOK || !res.Valid || res.KeyID != fmt.Sprintf("key-%d", i) {
			t.Errorf("add of key-%d: %+v; its token verifies as %+v", i, r, res)
		}
	}
}

// TestGatewayDropIn: a gateway in the dialect of the service it replaces:
// tokens of one subject, the subject stamped into bodies, the agent read
// from the service's own header, and its challenge.
func TestGatewayDropIn(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keys.yaml")
	alice1 := addToken(t, file, "--id", "alice-1", "--subject", "alice")
	alice2 := addToken(t, file, "--id", "alice-2", "--subject", "alice")
	svc := addToken(t, file, "--id", "svc")
	up := newBodyUpstream(t)
	g := startGateway(t, nil, "--keystore", file, "--upstream", up.URL, "--stamp-field", "created_by", "--stamp-value", "subject",
		"--agent-headers", "X-OpenViking-Agent", "--www-authenticate-scheme", "ApiKey", "--www-authenticate-realm", "memories")

	// Both tokens of alice are alice upstream; the key id tells them apart.
	for _, tc := range []struct{ token, id string }{{alice1, "alice-1"}, {alice2, "alice-2"}} {
		resp, body := post(t, g.url+"/v1/memories", `{"text":"hi","created_by":"mallory"}`, "X-API-Key", tc.token, "X-OpenViking-Agent", "planner")
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", tc.id, resp.StatusCode, body)
		}
		h, b := up.last(t)
		if stamped(t, b) != "alice" || h.Get("X-Keyward-User") != "alice" || h.Get("X-Keyward-Key-Id") != tc.id {
			t.Errorf("%s: upstream got %s with %v", tc.id, b, h)
		}
		// The alias is read as the agent and never reaches the upstream.
		if h.Get("X-Keyward-Agent") != "planner" || len(h.Values("X-Openviking-Agent")) != 0 {
			t.Errorf("%s: upstream agent headers %v", tc.id, h)
		}
	}
	// A key without a subject is stamped with its id.
	if resp, body := post(t, g.url+"/v1/memories", `{}`, "Authorization", "Bearer "+svc); resp.StatusCode != 200 {
		t.Fatalf("svc: %d %s", resp.StatusCode, body)
	}
	if _, b := up.last(t); stamped(t, b) != "svc" {
		t.Errorf("svc stamped %s", b)
	}
	// A forged alias in another spelling goes too; two different agents
	// are refused.
	post(t, g.url+"/v1/memories", `{}`, "X-API-Key", alice1, "X_OpenViking_Agent", "forged")
	if h, _ := up.last(t); h.Get("X-Keyward-Agent") != "" || len(h.Values("X_Openviking_Agent")) != 0 {
		t.Errorf("an underscore alias reached the upstream: %v", h)
	}
	n := up.count()
	if resp, body := post(t, g.url+"/v1/memories", `{}`, "X-API-Key", alice1, "X-OpenViking-Agent", "a", "X-Keyward-Agent", "b"); resp.StatusCode != 400 || !strings.Contains(body, "agent") {
		t.Errorf("two agents: %d %s", resp.StatusCode, body)
	}
	// The service's challenge.
	resp, _ := post(t, g.url+"/v1/memories", `{}`)
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `ApiKey realm="memories"` {
		t.Errorf("no key: %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if up.count() != n {
		t.Errorf("refused requests reached the upstream")
	}

	// user: keys without a subject are refused, the others stamped.
	g2 := startGateway(t, nil, "--keystore", file, "--upstream", up.URL, "--stamp-field", "created_by", "--stamp-value", "user")
	if resp, body := post(t, g2.url+"/x", `{}`, "X-API-Key", alice2); resp.StatusCode != 200 {
		t.Errorf("user stamp, alice: %d %s", resp.StatusCode, body)
	} else if _, b := up.last(t); stamped(t, b) != "alice" {
		t.Errorf("user stamp, alice: %s", b)
	}
	n = up.count()
	if resp, body := post(t, g2.url+"/x", `{}`, "X-API-Key", svc); resp.StatusCode != 403 || !strings.Contains(body, "user") {
		t.Errorf("user stamp, no subject: %d %s", resp.StatusCode, body)
	}
	if up.count() != n {
		t.Errorf("a refused request reached the upstream")
	}
}

// TestGatewayDropInDefaults: without the drop-in settings nothing changes:
// the key id is stamped, the challenge is Bearer, and another service's
// agent header is neither read nor removed.
func TestGatewayDropInDefaults(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keys.yaml")
	token := addToken(t, file, "--id", "alice-1", "--subject", "alice")
	up := newBodyUpstream(t)
	g := startGateway(t, nil, "--keystore", file, "--upstream", up.URL, "--stamp-field", "created_by")
	if resp, body := post(t, g.url+"/x", `{}`, "X-API-Key", token, "X-OpenViking-Agent", "planner"); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	h, b := up.last(t)
	if stamped(t, b) != "alice-1" || h.Get("X-Keyward-Agent") != "" || h.Get("X-Openviking-Agent") != "planner" || h.Get("X-Keyward-User") != "alice" {
		t.Errorf("upstream got %s with %v", b, h)
	}
	resp, _ := post(t, g.url+"/x", `{}`)
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Bearer realm="keyward"` {
		t.Errorf("no key: %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	// Bad settings are refused at start, naming the setting.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--www-authenticate-scheme", "Api Key"}, "www_authenticate_scheme"},
		{[]string{"--www-authenticate-realm", `a"b`}, "www_authenticate_realm"},
		{[]string{"--agent-headers", "X-API-Key"}, "agent_headers"},
		{[]string{"--agent-headers", "X-Keyward-Agent"}, "agent_headers"},
		// Routes are checked once the keystore is loaded (it logs that).
		{[]string{"--stamp-value", "email", "--stamp-field", "created_by"}, `stamp-value: "email" is not one of key, user, subject`},
		{[]string{"--stamp-value", "user"}, `stamp-value: "user" needs stamp_field`},
	} {
		r := runCLI(t, nil, append([]string{"gateway", "--keystore", file, "--upstream", up.URL}, tc.args...)...)
		last := strings.TrimSuffix(r.stderr[max(0, strings.LastIndex(r.stderr, "keyward: ")):], "\n")
		if r.code != ExitConfig || !strings.HasPrefix(last, "keyward: ") || !strings.Contains(last, tc.want) || strings.Contains(last, "\n") {
			t.Errorf("gateway %v: exit %d, %q, want %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}

// TestServeDropIn: serve's API and forward-auth read the agent aliases
// and answer with the configured challenge.
func TestServeDropIn(t *testing.T) {
	s := startServer(t, map[string]string{"KEYWARD_WWW_AUTHENTICATE_SCHEME": "ApiKey", "KEYWARD_AGENT_HEADERS": "X-OpenViking-Agent"})
	resp, err := http.Get(s.url + "/v1/whoami")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `ApiKey realm="keyward"` {
		t.Errorf("whoami without a key: %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	code, body := get(t, s.url+"/v1/whoami", "X-API-Key", s.rootKey, "X-OpenViking-Agent", "planner")
	var id keyward.Identity
	if code != 200 || json.Unmarshal([]byte(body), &id) != nil || id.Agent != "planner" {
		t.Errorf("whoami with an alias: %d %s", code, body)
	}
	req, _ := http.NewRequestWithContext(t.Context(), "GET", s.url+"/v1/forward-auth", nil)
	req.Header.Set("X-API-Key", s.rootKey)
	req.Header.Set("X-OpenViking-Agent", "planner")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Keyward-Agent") != "planner" {
		t.Errorf("forward-auth with an alias: %d %v", resp.StatusCode, resp.Header)
	}
}

// TestConfigCheckDropIn: config check shows the drop-in settings and
// where they came from.
func TestConfigCheckDropIn(t *testing.T) {
	env := map[string]string{"KEYWARD_DATA": filepath.Join(t.TempDir(), "data"), "KEYWARD_PEPPER": testPepperHex,
		"KEYWARD_WWW_AUTHENTICATE_SCHEME": "ApiKey", "KEYWARD_AGENT_HEADERS": "X-OpenViking-Agent, X-Agent"}
	r := runCLI(t, env, "config", "check", "--www-authenticate-realm", "memories", "-o", "json")
	var eff effectiveConfig
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &eff) != nil {
		t.Fatalf("config check: %+v", r)
	}
	if eff.WWWAuthenticateScheme != "ApiKey" || eff.WWWAuthenticateRealm != "memories" || strings.Join(eff.AgentHeaders, ",") != "X-OpenViking-Agent,X-Agent" ||
		eff.Sources["www_authenticate_scheme"] != "env KEYWARD_WWW_AUTHENTICATE_SCHEME" || eff.Sources["www_authenticate_realm"] != "flag --www-authenticate-realm" ||
		eff.Sources["agent_headers"] != "env KEYWARD_AGENT_HEADERS" {
		t.Errorf("config check: %s", r.stdout)
	}
	r = runCLI(t, map[string]string{"KEYWARD_DATA": env["KEYWARD_DATA"], "KEYWARD_PEPPER": testPepperHex}, "config", "check", "-o", "json")
	eff = effectiveConfig{}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &eff) != nil || eff.WWWAuthenticateScheme != "Bearer" || eff.WWWAuthenticateRealm != "keyward" || len(eff.AgentHeaders) != 0 {
		t.Errorf("config check defaults: %+v", r)
	}
}
