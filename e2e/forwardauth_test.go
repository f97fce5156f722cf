package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The addresses in the configurations of testdata/ (and so of
// docs/forward-auth.md); the tests replace them with their own.
const (
	docKeyward  = "127.0.0.1:8080" // keyward serve
	docUpstream = "127.0.0.1:9000" // the protected service
	docProxy    = "127.0.0.1:8000" // nginx or Caddy
)

// identityHeaders are the headers forward-auth answers and the proxies
// copy to the upstream, folded (lower case, "-").
var identityHeaders = []string{
	"x-keyward-key-id", "x-keyward-account", "x-keyward-user",
	"x-keyward-role", "x-keyward-agent", "x-keyward-permissions",
}

func TestNginx(t *testing.T) {
	requireBinary(t)
	nginx := requireTool(t, "nginx", "apt-get install nginx", "/usr/sbin/nginx")
	s := startKeyward(t, filepath.Join("testdata", "keyward.yaml"))
	up := newUpstream(t)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	site := readConfig(t, "nginx-keyward.conf", s.addr, up.addr(), addr)
	user := "" // nginx's workers run as nobody unless told otherwise
	if os.Geteuid() == 0 {
		user = "user root;\n" // the temporary directory is root's alone
	}
	conf := user + `daemon off;
worker_processes 1;
pid nginx.pid;
error_log error.log info;
events {
    worker_connections 64;
}
http {
    access_log off;
    client_body_temp_path tmp/client_body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    include site.conf;
}
`
	writeFile(t, filepath.Join(dir, "site.conf"), site)
	writeFile(t, filepath.Join(dir, "nginx.conf"), conf)
	cmd := exec.Command(nginx, "-p", dir+"/", "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log"))
	cmd.Env = env()
	p := start(t, "nginx", cmd)
	p.waitListening(t, addr)
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "error.log")); err == nil {
				t.Logf("nginx error.log:\n%s", b)
			}
		}
	})
	tn := newTenant(t, s)
	checkProxy(t, "http://"+addr, tn, up)
	checkKeywardDown(t, "http://"+addr, s, tn, up, http.StatusServiceUnavailable)
}

func TestCaddy(t *testing.T) {
	requireBinary(t)
	caddy := requireTool(t, "caddy", "go install github.com/caddyserver/caddy/v2/cmd/caddy@"+caddyVersion,
		filepath.Join(gopathBin(), "caddy"))
	s := startKeyward(t, filepath.Join("testdata", "keyward.yaml"))
	up := newUpstream(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	// The test's global options: no admin endpoint, nothing saved.
	conf := "{\n\tadmin off\n\tpersist_config off\n}\n\n" + readConfig(t, "Caddyfile", s.addr, up.addr(), addr)
	file := filepath.Join(dir, "Caddyfile")
	writeFile(t, file, conf)
	cmd := exec.Command(caddy, "run", "--config", file, "--adapter", "caddyfile")
	cmd.Env = env("HOME="+dir, "XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "XDG_DATA_HOME="+filepath.Join(dir, "data"))
	cmd.Dir = dir
	p := start(t, "caddy", cmd)
	p.waitListening(t, addr)
	tn := newTenant(t, s)
	checkProxy(t, "http://"+addr, tn, up)
	checkKeywardDown(t, "http://"+addr, s, tn, up, http.StatusBadGateway)
}

// checkKeywardDown stops keyward and checks that the proxy at base then
// refuses a valid key with status: it fails closed.
func checkKeywardDown(t *testing.T, base string, s *server, tn *tenant, up *upstream, status int) {
	t.Run("keyward unreachable", func(t *testing.T) {
		s.stop(t)
		n := up.count()
		req, err := http.NewRequest("GET", base+"/memories", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tn.reader.Secret)
		resp, err := (&http.Client{Timeout: waitTimeout}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != status {
			t.Errorf("with keyward stopped: %s, want %d", resp.Status, status)
		}
		if got := up.since(n); len(got) > 0 {
			t.Errorf("with keyward stopped, a request reached the upstream: %+v", got)
		}
	})
}

// readConfig returns testdata/name with the documented addresses replaced
// by the test's, after checking each appears.
func readConfig(t *testing.T, name, keywardAddr, upstreamAddr, proxyAddr string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{docKeyward, docUpstream, docProxy} {
		if !strings.Contains(string(b), a) {
			t.Fatalf("testdata/%s does not mention %s, which the test replaces", name, a)
		}
	}
	return strings.NewReplacer(docKeyward, keywardAddr, docUpstream, upstreamAddr, docProxy, proxyAddr).Replace(string(b))
}

func writeFile(t *testing.T, name, body string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// upstream is the protected service: it records every request and echoes
// the headers it got.
type upstream struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []seen
}

// seen is a request as the upstream received it.
type seen struct {
	URI    string
	Header http.Header
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.reqs = append(u.reqs, seen{URI: r.RequestURI, Header: r.Header.Clone()})
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(r.Header)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) addr() string { return strings.TrimPrefix(u.srv.URL, "http://") }

// since returns the requests received after the first n.
func (u *upstream) since(n int) []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seen(nil), u.reqs[n:]...)
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

// forged are identity headers a client sends to pose as someone else: the
// canonical names, other cases, repeats and "_" for "-". Every value but
// the role says "forged".
var forged = [][2]string{
	{"X-Keyward-Key-Id", "key_forged"},
	{"X-Keyward-Account", "acc_forged"},
	{"X-KEYWARD-ACCOUNT", "acc_forged_upper"},
	{"x-keyward-user", "usr_forged"},
	{"X-Keyward-User", "usr_forged_again"},
	{"X-Keyward-Role", "root"},
	{"X_Keyward_Role", "root"},
	{"X_Keyward_User", "usr_forged_underscore"},
	{"X-Keyward_Key-Id", "key_forged_mixed"},
	{"X-Keyward-Permissions", "admin:write forged:all"},
}

// probe is one request through the proxy and what must come of it.
type probe struct {
	name   string
	path   string
	header [][2]string // sent as written: names are not canonicalised
	status int
	// identity is what the upstream must see in the identity headers
	// (folded names; a missing name must be absent or empty); nil: the
	// request must not reach the upstream.
	identity map[string]string
}

// checkProxy sends good, bad, missing and forged credentials through the
// proxy at base and checks what the client and the upstream see.
func checkProxy(t *testing.T, base string, tn *tenant, up *upstream) {
	bearer := func(k string) [2]string { return [2]string{"Authorization", "Bearer " + k} }
	with := func(hs ...[2]string) [][2]string { return append(hs, forged...) }
	reader := map[string]string{
		"x-keyward-key-id":      tn.reader.ID,
		"x-keyward-account":     tn.account.ID,
		"x-keyward-user":        tn.user.ID,
		"x-keyward-role":        "user",
		"x-keyward-permissions": "memories:read",
	}
	readerAgent := map[string]string{"x-keyward-agent": "ci-bot"}
	for k, v := range reader {
		readerAgent[k] = v
	}
	admin := map[string]string{
		"x-keyward-key-id":      tn.admin.ID,
		"x-keyward-account":     tn.account.ID,
		"x-keyward-role":        "account_admin",
		"x-keyward-permissions": strings.Join(tn.admin.Permissions, " "),
	}
	// A well-formed key with a wrong checksum, and one that is not a
	// keyward key at all.
	mangled := tn.reader.Secret[:len(tn.reader.Secret)-1] + flip(tn.reader.Secret[len(tn.reader.Secret)-1])

	probes := []probe{
		{name: "valid key (Bearer)", path: "/memories?q=1", header: [][2]string{bearer(tn.reader.Secret)},
			status: 200, identity: reader},
		{name: "valid key (X-API-Key) naming an agent", path: "/memories",
			header: [][2]string{{"X-API-Key", tn.reader.Secret}, {"X-Keyward-Agent", "ci-bot"}},
			status: 200, identity: readerAgent},
		{name: "valid user key, forged identity", path: "/memories/1", header: with(bearer(tn.reader.Secret)),
			status: 200, identity: reader},
		{name: "valid admin key, forged identity (no user to overwrite X-Keyward-User)", path: "/admin/users",
			header: with(bearer(tn.admin.Secret)), status: 200, identity: admin},
		{name: "exempt path, no key, forged identity", path: "/docs",
			header: with([2]string{"X-Keyward-Agent", "ci-bot"}), status: 200, identity: map[string]string{}},
		{name: "no key", path: "/memories", status: 401},
		{name: "no key, forged identity", path: "/memories", header: with(), status: 401},
		{name: "wrong checksum, forged identity", path: "/memories", header: with(bearer(mangled)), status: 401},
		{name: "not a keyward key", path: "/memories", header: [][2]string{{"X-API-Key", "hunter2"}}, status: 401},
		{name: "revoked key, forged identity", path: "/memories", header: with(bearer(tn.revoked.Secret)), status: 401},
		{name: "two different keys", path: "/memories",
			header: [][2]string{bearer(tn.reader.Secret), {"X-API-Key", tn.admin.Secret}}, status: 401},
		{name: "key without the route's permission", path: "/admin/users", header: [][2]string{bearer(tn.reader.Secret)},
			status: 403},
		{name: "client names an exempt path", path: "/admin/users",
			header: [][2]string{{"X-Original-URI", "/docs"}, {"X-Forwarded-Uri", "/docs"}, {"X-Original-URL", "http://example.com/docs"}},
			status: 401},
		{name: "dot segments from an exempt path", path: "/docs/../admin/users", header: [][2]string{bearer(tn.reader.Secret)},
			status: 400},
		{name: "encoded dot segments from an exempt path", path: "/docs/%2e%2e/admin/users", status: 400},
		{name: "upper-case path of a case-insensitive route", path: "/ADMIN/users", header: [][2]string{bearer(tn.reader.Secret)},
			status: 403},
		{name: "encoded letter of a case-insensitive route", path: "/%41dmin/users", header: [][2]string{bearer(tn.reader.Secret)},
			status: 403},
		{name: "path parameter", path: "/admin;x/users", header: [][2]string{bearer(tn.reader.Secret)}, status: 400},
		{name: "dot-dot with a path parameter", path: "/x/..;/admin/users", header: [][2]string{bearer(tn.reader.Secret)},
			status: 400},
	}
	hc := &http.Client{Timeout: waitTimeout}
	for _, pr := range probes {
		t.Run(pr.name, func(t *testing.T) {
			n := up.count()
			req, err := http.NewRequest("GET", base+pr.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, kv := range pr.header {
				req.Header[kv[0]] = append(req.Header[kv[0]], kv[1])
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
			resp.Body.Close()
			if resp.StatusCode != pr.status {
				t.Fatalf("GET %s: %s, want %d\n%s", pr.path, resp.Status, pr.status, body)
			}
			if resp.StatusCode == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
			got := up.since(n)
			if pr.identity == nil {
				if len(got) > 0 {
					t.Fatalf("a refused request reached the upstream: %+v", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("the upstream got %d requests, want 1", len(got))
			}
			if got[0].URI != pr.path {
				t.Errorf("the upstream got %s, want %s", got[0].URI, pr.path)
			}
			checkUpstreamHeaders(t, got[0].Header, pr.identity)
		})
	}
}

// checkUpstreamHeaders checks that h, the headers the upstream got, carry
// exactly the identity want (folded names; others absent or empty), no
// forged value and no credential.
func checkUpstreamHeaders(t *testing.T, h http.Header, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for name, vs := range h {
		for _, v := range vs {
			if strings.Contains(v, "forged") {
				t.Errorf("a forged value reached the upstream: %s: %s", name, v)
			}
		}
		f := strings.ReplaceAll(strings.ToLower(name), "_", "-")
		switch {
		case f == "authorization" || f == "x-api-key":
			t.Errorf("the credential reached the upstream in %s", name)
		case !strings.HasPrefix(f, "x-keyward-"):
		case len(vs) != 1:
			t.Errorf("the upstream got %s %d times: %q", name, len(vs), vs)
		default:
			if _, dup := got[f]; dup {
				t.Errorf("the upstream got %s twice (in different spellings): %v", f, h)
			}
			got[f] = vs[0]
		}
	}
	for _, name := range identityHeaders {
		if got[name] != want[name] {
			t.Errorf("upstream %s = %q, want %q", name, got[name], want[name])
		}
		delete(got, name)
	}
	for name, v := range got {
		t.Errorf("the upstream got an identity header keyward does not send: %s: %q", name, v)
	}
}

// flip returns another base62 character than c.
func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

// TestTraefikAndEnvoyShapes sends keyward the check requests that the
// Traefik and Envoy configurations of docs/forward-auth.md make (the tests
// run no Traefik or Envoy): Traefik names the original request in
// X-Forwarded-* headers, Envoy appends the original path to the endpoint
// and keeps the original method.
func TestTraefikAndEnvoyShapes(t *testing.T) {
	requireBinary(t)
	s := startKeyward(t, filepath.Join("testdata", "keyward.yaml"))
	tn := newTenant(t, s)
	fa := "http://" + s.addr + "/v1/forward-auth"
	traefik := func(method, uri string) [][2]string {
		return [][2]string{{"X-Forwarded-Method", method}, {"X-Forwarded-Uri", uri},
			{"X-Forwarded-Host", "api.example.com"}, {"X-Forwarded-For", "203.0.113.7"}, {"X-Forwarded-Proto", "https"}}
	}
	for _, tc := range []struct {
		name, method, url string
		header            [][2]string
		status            int
		keyID             string
	}{
		{"traefik: valid key", "GET", fa, append(traefik("POST", "/memories?q=1"), [2]string{"Authorization", "Bearer " + tn.reader.Secret}), 200, tn.reader.ID},
		{"traefik: no permission", "GET", fa, append(traefik("GET", "/admin/users"), [2]string{"X-API-Key", tn.reader.Secret}), 403, ""},
		{"traefik: exempt path", "GET", fa, traefik("GET", "/docs"), 200, ""},
		{"traefik: no key", "GET", fa, traefik("GET", "/memories"), 401, ""},
		{"envoy: valid key", "POST", fa + "/memories?q=1", [][2]string{{"Authorization", "Bearer " + tn.reader.Secret}, {"X-Forwarded-For", "203.0.113.7"}}, 200, tn.reader.ID},
		{"envoy: no permission", "DELETE", fa + "/admin/users", [][2]string{{"X-API-Key", tn.reader.Secret}}, 403, ""},
		{"envoy: exempt path", "GET", fa + "/docs", nil, 200, ""},
		{"envoy: revoked key", "GET", fa + "/memories", [][2]string{{"X-API-Key", tn.revoked.Secret}}, 401, ""},
		{"envoy: dot segments", "GET", fa + "/docs/%2e%2e/admin/users", nil, 400, ""},
		{"traefik: upper-case path of a case-insensitive route", "GET", fa, append(traefik("GET", "/ADMIN/users"), [2]string{"X-API-Key", tn.reader.Secret}), 403, ""},
		{"envoy: a client's X-Original-URI disagrees with the path", "GET", fa + "/admin/users", [][2]string{{"X-Original-URI", "/docs"}}, 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, tc.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, kv := range tc.header {
				req.Header.Add(kv[0], kv[1])
			}
			resp, err := (&http.Client{Timeout: waitTimeout}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("%s %s: %s, want %d\n%s", tc.method, tc.url, resp.Status, tc.status, body)
			}
			if tc.status != 200 {
				return
			}
			// All six identity headers, empty when they do not apply, so a
			// proxy that copies them overwrites the client's.
			for _, name := range identityHeaders {
				if _, ok := resp.Header[http.CanonicalHeaderKey(name)]; !ok {
					t.Errorf("the answer has no %s header", name)
				}
			}
			if got := resp.Header.Get("X-Keyward-Key-Id"); got != tc.keyID {
				t.Errorf("X-Keyward-Key-Id = %q, want %q", got, tc.keyID)
			}
		})
	}
}
