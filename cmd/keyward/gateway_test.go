package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/keystore"
	"github.com/keyward/keyward/keywardtest"
)

// echoUpstream records the headers of each request it gets.
type echoUpstream struct {
	*httptest.Server
	mu   sync.Mutex
	seen []http.Header
}

func newEchoUpstream(t *testing.T) *echoUpstream {
	u := &echoUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen = append(u.seen, r.Header.Clone())
		u.mu.Unlock()
		io.WriteString(w, "upstream "+r.URL.Path)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *echoUpstream) requests() []http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]http.Header(nil), u.seen...)
}

// runningGateway is an in-process "keyward gateway" on port 0.
type runningGateway struct {
	url    string
	stderr *keywardtest.Lines
}

// startGateway runs "keyward gateway --listen 127.0.0.1:0 args..." with env
// and returns once it accepts connections; it stops when the test ends.
func startGateway(t *testing.T, env map[string]string, args ...string) *runningGateway {
	t.Helper()
	g := &runningGateway{stderr: keywardtest.NewLines()}
	addr, done := make(chan string, 1), make(chan int, 1)
	m := &Main{Getenv: mapEnv(env), Listening: func(a string) { addr <- a }, Version: "test"}
	ctx, cancel := context.WithCancel(context.Background())
	argv := append([]string{"gateway", "--listen", "127.0.0.1:0"}, args...)
	go func() { done <- m.Run(ctx, argv, io.Discard, g.stderr) }()
	select {
	case a := <-addr:
		g.url = "http://" + a
	case code := <-done:
		cancel()
		t.Fatalf("gateway exited with %d before listening; stderr:\n%s", code, g.stderr)
	case <-time.After(waitTimeout):
		cancel()
		t.Fatalf("gateway did not listen in time; stderr:\n%s", g.stderr)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("gateway exited with %d; stderr:\n%s", code, g.stderr)
			}
		case <-time.After(waitTimeout):
			t.Errorf("gateway did not stop in time")
		}
	})
	return g
}

// get sends GET url with header pairs and returns the status and body.
func get(t *testing.T, url string, kv ...string) (int, string) {
	t.Helper()
	resp, body := send(t, "GET", url, "", kv...)
	if resp.StatusCode == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("GET %s: 401 without WWW-Authenticate", url)
	}
	return resp.StatusCode, body
}

// send sends a request with body (a JSON body unless empty) and header
// pairs; it returns the response, its body read into the string.
func send(t *testing.T, method, url, body string, kv ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Add(kv[i], kv[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// checkGateway probes a gateway protecting up, whose exempt path is /docs
// and which requires memories:read: good passes with identity keyID,
// weak (no memories:read) is forbidden, missing and bad keys are refused,
// forged identity never reaches up.
func checkGateway(t *testing.T, g *runningGateway, up *echoUpstream, good, keyID, weak string) {
	t.Helper()
	before := len(up.requests())
	forged := []string{"X-Keyward-Key-Id", "key_forged", "X-Keyward-Role", "root"}
	if code, body := get(t, g.url+"/v1/memories", append([]string{"Authorization", "Bearer " + good}, forged...)...); code != 200 || body != "upstream /v1/memories" {
		t.Fatalf("good key: %d %s", code, body)
	}
	rs := up.requests()
	if len(rs) != before+1 {
		t.Fatalf("upstream got %d requests, want 1", len(rs)-before)
	}
	if h := rs[before]; h.Get("X-Keyward-Key-Id") != keyID || h.Get("Authorization") != "" || len(h.Values("X-Keyward-Key-Id")) != 1 {
		t.Errorf("upstream headers %v, want key id %s and no Authorization", h, keyID)
	}
	if code, _ := get(t, g.url+"/docs", forged...); code != 200 {
		t.Errorf("exempt /docs: %d", code)
	}
	if h := up.requests()[before+1]; h.Get("X-Keyward-Key-Id") != "" || h.Get("X-Keyward-Role") != "" {
		t.Errorf("forged identity reached the upstream on an exempt path: %v", h)
	}
	for _, tc := range []struct {
		name string
		kv   []string
		code int
	}{
		{"missing", nil, 401},
		{"bad", []string{"X-API-Key", good + "x"}, 401},
		{"weak", []string{"Authorization", "Bearer " + weak}, 403},
	} {
		if code, body := get(t, g.url+"/v1/memories", append(tc.kv, forged...)...); code != tc.code {
			t.Errorf("%s key: %d %s, want %d", tc.name, code, body, tc.code)
		}
	}
	if n := len(up.requests()); n != before+2 {
		t.Errorf("refused requests reached the upstream: %d", n-before-2)
	}
}

func TestGatewayCommandLocalStore(t *testing.T) {
	s := startServer(t, nil)
	var acct keyward.Account
	s.okJSON(t, s.rootKey, &acct, "accounts", "create", "--name", "acme")
	var good, weak keyward.CreatedKey
	s.okJSON(t, s.rootKey, &good, "keys", "create", "--account", acct.ID, "--role", "account_admin", "--permission", "memories:read")
	s.okJSON(t, s.rootKey, &weak, "keys", "create", "--account", acct.ID, "--role", "account_admin")
	up := newEchoUpstream(t)
	g := startGateway(t, nil, "--data", s.data, "--upstream", up.URL, "--exempt", "/docs", "--permission", "memories:read")
	checkGateway(t, g, up, good.Secret, good.ID, weak.Secret)
}

func TestGatewayCommandRemote(t *testing.T) {
	s := startServer(t, nil)
	var acct keyward.Account
	s.okJSON(t, s.rootKey, &acct, "accounts", "create", "--name", "acme")
	var verifier, good, weak keyward.CreatedKey
	s.okJSON(t, s.rootKey, &verifier, "keys", "create", "--account", acct.ID, "--role", "account_admin", "--permission", "keys:verify")
	s.okJSON(t, s.rootKey, &good, "keys", "create", "--account", acct.ID, "--role", "account_admin", "--permission", "memories:read")
	s.okJSON(t, s.rootKey, &weak, "keys", "create", "--account", acct.ID, "--role", "account_admin")
	up := newEchoUpstream(t)
	g := startGateway(t, map[string]string{"KEYWARD_API_KEY": verifier.Secret},
		"--remote", s.url, "--upstream", up.URL, "--exempt", "/docs", "--permission", "memories:read")
	checkGateway(t, g, up, good.Secret, good.ID, weak.Secret)
}

func TestGatewayCommandSimpleModes(t *testing.T) {
	dir := t.TempDir()
	const good, weak = "static-token-0123456789-good", "static-token-0123456789-weak"
	ks := filepath.Join(dir, "keys.yaml")
	if err := os.WriteFile(ks, []byte("keys:\n  "+keystore.Digest(good)+": {id: svc, role: user, permissions: [memories:read]}\n  "+
		keystore.Digest(weak)+": {id: weak, role: user}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	up := newEchoUpstream(t)
	t.Run("keystore", func(t *testing.T) {
		g := startGateway(t, nil, "--keystore", ks, "--upstream", up.URL, "--exempt", "/docs", "--permission", "memories:read")
		checkGateway(t, g, up, good, "svc", weak)
	})
	t.Run("dev mode", func(t *testing.T) {
		g := startGateway(t, nil, "--dev", "--upstream", up.URL)
		before := len(up.requests())
		if code, _ := get(t, g.url+"/x", "X-Keyward-Role", "forged"); code != 200 {
			t.Fatalf("dev mode without a key: %d", code)
		}
		seen := up.requests()[before]
		if seen.Get("X-Keyward-Key-Id") != keystore.DevKeyID || seen.Get("X-Keyward-Role") != "root" {
			t.Errorf("dev mode identity upstream = %q/%q", seen.Get("X-Keyward-Key-Id"), seen.Get("X-Keyward-Role"))
		}
		if !strings.Contains(g.stderr.String(), "DEV MODE") && !strings.Contains(strings.ToLower(g.stderr.String()), "dev mode") {
			t.Errorf("no dev mode warning at start:\n%s", g.stderr)
		}
	})
	t.Run("legacy key", func(t *testing.T) {
		const legacy = "legacy-admin-key-0123456789abcdef"
		g := startGateway(t, map[string]string{"KEYWARD_ADMIN_API_KEY": legacy}, "--upstream", up.URL, "--exempt", "/docs")
		if code, _ := get(t, g.url+"/x", "Authorization", "Bearer "+legacy); code != 200 {
			t.Errorf("legacy key: %d", code)
		}
		if code, _ := get(t, g.url+"/x", "Authorization", "Bearer "+legacy+"x"); code != 401 {
			t.Errorf("wrong legacy key: %d", code)
		}
	})
}

func TestServeGatewayAndForwardAuth(t *testing.T) {
	up := newEchoUpstream(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "keyward.yaml")
	if err := os.WriteFile(cfg, []byte(`gateway_listen: 127.0.0.1:0
trusted_proxies: [127.0.0.1]
gateway:
  routes:
    - prefix: /
      upstream: `+up.URL+`
      permissions: [memories:read]
      exempt: [/docs]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, map[string]string{"KEYWARD_CONFIG": cfg})
	line := s.stderr.WaitLine(t, "the gateway listening", nil, func(l string) bool { return strings.Contains(l, "gateway listening") })
	_, after, _ := strings.Cut(line, "url=")
	g := &runningGateway{url: strings.Fields(after)[0]}

	var acct keyward.Account
	s.okJSON(t, s.rootKey, &acct, "accounts", "create", "--name", "acme")
	var good, weak keyward.CreatedKey
	s.okJSON(t, s.rootKey, &good, "keys", "create", "--account", acct.ID, "--role", "account_admin", "--permission", "memories:read")
	s.okJSON(t, s.rootKey, &weak, "keys", "create", "--account", acct.ID, "--role", "account_admin")
	checkGateway(t, g, up, good.Secret, good.ID, weak.Secret)

	// Forward-auth on the API listener uses the same routes.
	fa := s.url + "/v1/forward-auth"
	for _, tc := range []struct {
		kv   []string
		code int
	}{
		{[]string{"X-Original-URI", "/v1/memories", "Authorization", "Bearer " + good.Secret}, 200},
		{[]string{"X-Original-URI", "/v1/memories", "Authorization", "Bearer " + weak.Secret}, 403},
		{[]string{"X-Forwarded-Uri", "/docs"}, 200},
		{[]string{"X-Forwarded-Uri", "/v1/memories"}, 401},
		{[]string{"X-Original-URI", "/v1/memories;x", "Authorization", "Bearer " + good.Secret}, 400},
	} {
		if code, body := get(t, fa, tc.kv...); code != tc.code {
			t.Errorf("forward-auth %v: %d %s, want %d", tc.kv, code, body, tc.code)
		}
	}
}

func TestGatewayConfigErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	noUpstream := write("no-upstream.yaml", "gateway_listen: 127.0.0.1:8089\ngateway:\n  routes:\n    - prefix: /api\n")
	dup := write("dup.yaml", "gateway:\n  routes:\n    - {prefix: /api, upstream: 'http://a'}\n    - {prefix: /api/, upstream: 'http://b'}\n")
	badURL := write("bad-url.yaml", "gateway:\n  routes:\n    - {prefix: /, upstream: 'ftp://a'}\n")
	unknown := write("unknown.yaml", "gateway:\n  routes:\n    - {prefix: /, upstream: 'http://a', permission: [x]}\n")
	good := write("good.yaml", "gateway:\n  routes:\n    - {prefix: /, upstream: 'http://a'}\n")
	caseNested := write("case.yaml", "gateway:\n  routes:\n    - {prefix: /api, upstream: 'http://a', case_insensitive: true, allow_semicolon: true, allow_backslash: true}\n    - {prefix: /API/admin, upstream: 'http://a'}\n")
	badProxy := write("bad-proxy.yaml", "trusted_proxies: [10.0.0.0/33]\n")
	emptyData := filepath.Join(dir, "empty-data")
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"bad upstream flag", nil, []string{"gateway", "--upstream", "127.0.0.1:9000"}, ExitConfig, "upstream:"},
		{"no upstream", nil, []string{"gateway"}, ExitUsage, "--upstream is required"},
		{"route flags without upstream", map[string]string{"KEYWARD_CONFIG": good}, []string{"gateway", "--exempt", "/x"}, ExitUsage, "describe the --upstream route"},
		{"bad upstream in config", map[string]string{"KEYWARD_CONFIG": badURL}, []string{"gateway"}, ExitConfig, "gateway.routes[0].upstream"},
		{"remote and keystore", nil, []string{"gateway", "--upstream", "http://a", "--remote", "http://b", "--keystore", "k"}, ExitUsage, "remote"},
		{"no database", nil, []string{"gateway", "--upstream", "http://a", "--data", emptyData}, ExitConfig, "no keyward database"},
		{"route without upstream", map[string]string{"KEYWARD_CONFIG": noUpstream}, []string{"serve"}, ExitConfig, "gateway.routes[0].upstream: is required"},
		{"duplicate prefix", map[string]string{"KEYWARD_CONFIG": dup}, []string{"config", "check"}, ExitConfig, "gateway.routes[1].prefix"},
		{"case-sensitive route under a case-insensitive one", map[string]string{"KEYWARD_CONFIG": caseNested}, []string{"config", "check"}, ExitConfig, "gateway.routes[1].prefix: \"/API/admin\" lies under \"/api\" of routes[0], which is case_insensitive"},
		{"bad upstream URL", map[string]string{"KEYWARD_CONFIG": badURL}, []string{"serve"}, ExitConfig, "must start with http:// or https://"},
		{"unknown route key", map[string]string{"KEYWARD_CONFIG": unknown}, []string{"serve"}, ExitConfig, "permission is not a keyward setting"},
		{"bad trusted proxy", map[string]string{"KEYWARD_CONFIG": badProxy}, []string{"serve"}, ExitConfig, "trusted_proxies"},
		{"remote without key", nil, []string{"gateway", "--upstream", "http://a", "--remote", "http://127.0.0.1:1"}, ExitConfig, "KEYWARD_API_KEY"},
		{"dev mode with remote", nil, []string{"gateway", "--dev", "--upstream", "http://a", "--remote", "http://127.0.0.1:1"}, ExitConfig, "dev_mode"},
		{"dev mode off loopback", nil, []string{"gateway", "--dev", "--upstream", "http://a", "--listen", "0.0.0.0:0"}, ExitConfig, "dev_mode"},
		{"dev mode with keystore", map[string]string{"KEYWARD_DEV_MODE": "true"}, []string{"gateway", "--upstream", "http://a", "--keystore", "k"}, ExitConfig, "dev_mode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, tc.env, tc.args...)
			line := checkFails(t, r, tc.code, tc.args)
			if !strings.Contains(line, tc.want) {
				t.Errorf("error %q does not contain %q", line, tc.want)
			}
		})
	}
}
