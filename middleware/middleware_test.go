package middleware_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/middleware"
)

// app is the protected service of these tests: whoami on every path,
// /admin/ needing notes:admin on top, /public/locked exempt but behind
// RequirePermissions.
func app() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", whoami())
	mux.Handle("/admin/", middleware.RequirePermissions("notes:admin")(whoami()))
	mux.Handle("/public/locked", middleware.RequirePermissions("notes:read")(whoami()))
	return mux
}

var appOptions = []middleware.Option{
	middleware.WithPermissions("notes:read"),
	middleware.WithExempt("/", "/healthz", "/public/*"),
}

// TestRemote protects a service with a remote keyward through the cached
// client and probes it with good, bad, missing and conflicting keys.
func TestRemote(t *testing.T) {
	e := newEnv(t)
	ts := e.protect(e.remote(e.root), app(), appOptions...)

	reader := e.userKey("notes:read")
	admin := e.userKey("notes:read", "notes:admin")
	writer := e.userKey("notes:write")
	revoked := e.userKey("notes:read")
	if _, err := e.svc.Keys.RevokeKey(e.rootCtx(), revoked.ID); err != nil {
		t.Fatal(err)
	}
	unknown := e.userKey("notes:read")
	if err := e.svc.Keys.DeleteKey(e.rootCtx(), unknown.ID); err != nil {
		t.Fatal(err)
	}

	t.Run("valid key: identity in context", func(t *testing.T) {
		s := get(t, ts, "/notes", "Authorization", "Bearer "+reader.Secret, "X-Keyward-Agent", "claude").seen(t)
		id := s.Identity
		if id == nil || id.KeyID != reader.ID || id.AccountID != e.acct.ID || id.UserID != e.user.ID || id.ExternalID != "idp|alice" ||
			id.Role != keyward.RoleUser || id.Agent != "claude" || len(id.Permissions) != 1 {
			t.Errorf("identity = %+v", id)
		}
		if string(s.Meta) != `{"plan":"pro"}` {
			t.Errorf("meta = %s", s.Meta)
		}
	})
	t.Run("X-API-Key", func(t *testing.T) {
		if id := get(t, ts, "/notes", "X-API-Key", reader.Secret).seen(t).Identity; id == nil || id.KeyID != reader.ID || id.Agent != "" {
			t.Errorf("identity = %+v", id)
		}
	})
	t.Run("both headers, same key", func(t *testing.T) {
		get(t, ts, "/notes", "Authorization", "Bearer "+reader.Secret, "X-API-Key", reader.Secret).seen(t)
	})
	t.Run("root key holds every permission", func(t *testing.T) {
		if id := get(t, ts, "/admin/x", "Authorization", "Bearer "+e.root.Reveal()).seen(t).Identity; id.Role != keyward.RoleRoot {
			t.Errorf("identity = %+v", id)
		}
	})
	t.Run("RequirePermissions passes", func(t *testing.T) {
		get(t, ts, "/admin/x", "Authorization", "Bearer "+admin.Secret).seen(t)
	})

	for _, tt := range []struct {
		name       string
		path       string
		header     []string
		status     int
		code       string
		wantDetail string
	}{
		{"no key", "/notes", nil, 401, keyward.EUNAUTHORIZED, `"Authorization: Bearer <key>"`},
		{"key in the query string", "/notes?api_key=" + reader.Secret + "&key=" + reader.Secret, nil, 401, keyward.EUNAUTHORIZED, "no API key"},
		{"two different keys", "/notes", []string{"Authorization", "Bearer " + reader.Secret, "X-API-Key", admin.Secret}, 401, keyward.EUNAUTHORIZED, "different keys"},
		{"not Bearer", "/notes", []string{"Authorization", "Basic " + reader.Secret}, 401, keyward.EUNAUTHORIZED, "Bearer"},
		{"empty key", "/notes", []string{"X-API-Key", " "}, 401, keyward.EUNAUTHORIZED, "no API key"},
		{"garbage", "/notes", []string{"Authorization", "Bearer nonsense"}, 401, keyward.EUNAUTHORIZED, "invalid API key"},
		{"off by one character", "/notes", []string{"Authorization", "Bearer " + reader.Secret[:len(reader.Secret)-1]}, 401, keyward.EUNAUTHORIZED, "invalid API key"},
		{"unknown key", "/notes", []string{"Authorization", "Bearer " + unknown.Secret}, 401, keyward.EUNAUTHORIZED, "invalid API key"},
		{"revoked key", "/notes", []string{"Authorization", "Bearer " + revoked.Secret}, 401, keyward.EUNAUTHORIZED, "invalid API key"},
		{"missing the service's permission", "/notes", []string{"Authorization", "Bearer " + writer.Secret}, 403, keyward.EFORBIDDEN, "lacks the required permissions"},
		{"missing the route's permission", "/admin/x", []string{"Authorization", "Bearer " + reader.Secret}, 403, keyward.EFORBIDDEN, "lacks the required permissions"},
		{"exempt path behind RequirePermissions", "/public/locked", nil, 401, keyward.EUNAUTHORIZED, "no API key"},
		{"unclean path is not exempt", "/public/../notes", nil, 401, keyward.EUNAUTHORIZED, "no API key"},
		{"agent too long", "/notes", []string{"Authorization", "Bearer " + reader.Secret, "X-Keyward-Agent", strings.Repeat("a", 201)}, 400, keyward.EINVALID, "X-Keyward-Agent"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			detail := get(t, ts, tt.path, tt.header...).problem(t, tt.status, tt.code)
			if !strings.Contains(detail, tt.wantDetail) {
				t.Errorf("detail %q does not contain %q", detail, tt.wantDetail)
			}
		})
	}

	t.Run("exempt paths need no key", func(t *testing.T) {
		for _, p := range []string{"/", "/healthz", "/public/a.css", "/public/"} {
			if s := get(t, ts, p).seen(t); s.Identity != nil {
				t.Errorf("%s: identity %+v on an exempt path", p, s.Identity)
			}
		}
		// A key on an exempt path is not checked, even a bad one.
		get(t, ts, "/healthz", "Authorization", "Bearer nonsense").seen(t)
		// Exact paths are exact.
		get(t, ts, "/healthz/x").problem(t, 401, keyward.EUNAUTHORIZED)
	})
}

// TestRemoteAccountAdminVerifier: an account_admin key with keys:verify
// verifies its own account's keys; another account's keys are unknown.
func TestRemoteAccountAdminVerifier(t *testing.T) {
	e := newEnv(t)
	verifier := e.key(keyward.KeyCreate{AccountID: e.acct.ID, Role: keyward.RoleAccountAdmin, Permissions: []string{"keys:verify"}})
	other, err := e.svc.Tenancy.CreateAccount(e.rootCtx(), keyward.AccountCreate{Name: "other"})
	if err != nil {
		t.Fatal(err)
	}
	otherAdmin := e.key(keyward.KeyCreate{AccountID: other.ID, Role: keyward.RoleAccountAdmin})
	ts := e.protect(e.remote(keyward.Secret(verifier.Secret)), app())

	get(t, ts, "/notes", "Authorization", "Bearer "+e.userKey().Secret).seen(t)
	get(t, ts, "/notes", "Authorization", "Bearer "+otherAdmin.Secret).problem(t, 401, keyward.EUNAUTHORIZED)
}

// TestRemoteUnavailable: when no decision can be made the service fails
// closed with 503, and says why in its log.
func TestRemoteUnavailable(t *testing.T) {
	e := newEnv(t)
	k := e.userKey("notes:read")

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String()
	l.Close()
	t.Run("keyward down", func(t *testing.T) {
		ts := e.protect(client.NewCachedVerifier(client.New(down, e.root), client.CacheConfig{}), app())
		for range 2 {
			detail := get(t, ts, "/notes", "Authorization", "Bearer "+k.Secret).problem(t, 503, keyward.EUNAVAILABLE)
			if !strings.Contains(detail, "try again") {
				t.Errorf("detail = %q", detail)
			}
		}
		if !logged(e, "cannot reach keyward at "+down) {
			t.Errorf("the middleware's log does not say why:\n%s", e.logs)
		}
	})
	t.Run("verifier key may not verify", func(t *testing.T) {
		weak := e.userKey("notes:read")
		ts := e.protect(e.remote(keyward.Secret(weak.Secret)), app())
		get(t, ts, "/notes", "Authorization", "Bearer "+k.Secret).problem(t, 503, keyward.EUNAVAILABLE)
		if !logged(e, "keys:verify") {
			t.Errorf("the middleware's log does not name the missing permission:\n%s", e.logs)
		}
	})
	t.Run("bare client, keyward down", func(t *testing.T) {
		ts := e.protect(client.New(down, e.root), app())
		get(t, ts, "/notes", "Authorization", "Bearer "+k.Secret).problem(t, 503, keyward.EUNAVAILABLE)
	})
}

// logged reports whether the middleware logged a warning containing s.
func logged(e *env, s string) bool {
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(line, "component=keyward-middleware") && strings.Contains(line, "level=WARN") && strings.Contains(line, s) {
			return true
		}
	}
	return false
}

// TestInProcess protects a service with the verification engine itself.
func TestInProcess(t *testing.T) {
	e := newEnv(t)
	ts := e.protect(e.engine, app(), appOptions...)
	reader := e.userKey("notes:read")
	writer := e.userKey("notes:write")

	s := get(t, ts, "/notes", "X-API-Key", reader.Secret, "X-Keyward-Agent", "ci").seen(t)
	if s.Identity == nil || s.Identity.KeyID != reader.ID || s.Identity.Agent != "ci" || string(s.Meta) != `{"plan":"pro"}` {
		t.Errorf("seen = %+v", s)
	}
	get(t, ts, "/notes", "X-API-Key", writer.Secret).problem(t, 403, keyward.EFORBIDDEN)
	get(t, ts, "/admin/x", "X-API-Key", reader.Secret).problem(t, 403, keyward.EFORBIDDEN)
	get(t, ts, "/notes", "X-API-Key", "kw_user_nope").problem(t, 401, keyward.EUNAUTHORIZED)
	get(t, ts, "/").seen(t)

	// In process, a revocation is seen at once.
	if _, err := e.svc.Keys.RevokeKey(e.rootCtx(), reader.ID); err != nil {
		t.Fatal(err)
	}
	get(t, ts, "/notes", "X-API-Key", reader.Secret).problem(t, 401, keyward.EUNAUTHORIZED)
}

// TestErrorWriter: a custom writer formats refusals, of New and of
// RequirePermissions behind it; the protocol headers are still set.
func TestErrorWriter(t *testing.T) {
	e := newEnv(t)
	var denials []*middleware.Denial
	var mu sync.Mutex
	write := func(w http.ResponseWriter, r *http.Request, d *middleware.Denial) {
		mu.Lock()
		denials = append(denials, d)
		mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(d.Status)
		fmt.Fprintf(w, "denied: %s", d.Code)
	}
	ts := e.protect(e.engine, app(), middleware.WithErrorWriter(write))
	reader := e.userKey("notes:read")

	r := get(t, ts, "/notes")
	if r.status != 401 || string(r.body) != "denied: unauthorized" || r.header.Get("WWW-Authenticate") != middleware.WWWAuthenticate {
		t.Errorf("401: %d %q %v", r.status, r.body, r.header)
	}
	r = get(t, ts, "/admin/x", "X-API-Key", reader.Secret)
	if r.status != 403 || string(r.body) != "denied: forbidden" {
		t.Errorf("403: %d %q", r.status, r.body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(denials) != 2 || denials[1].KeyID != reader.ID || denials[1].Decision != keyward.DecisionInsufficientPermissions {
		t.Errorf("denials = %+v", denials)
	}
}

func TestExemptFunc(t *testing.T) {
	e := newEnv(t)
	preflight := func(r *http.Request) bool { return r.Method == http.MethodOptions }
	ts := e.protect(e.engine, app(), middleware.WithExemptFunc(preflight))
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodOptions, ts.URL+"/notes", nil)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("OPTIONS: %d", resp.StatusCode)
	}
	get(t, ts, "/notes").problem(t, 401, keyward.EUNAUTHORIZED)
}

// recordingVerifier passes requests on to a real verifier and keeps the
// IPs they carry.
type recordingVerifier struct {
	next keyward.KeyVerifier
	mu   sync.Mutex
	ips  []string
}

func (v *recordingVerifier) VerifyKey(ctx context.Context, r keyward.VerifyRequest) (*keyward.VerifyResult, error) {
	v.mu.Lock()
	v.ips = append(v.ips, r.IP)
	v.mu.Unlock()
	return v.next.VerifyKey(ctx, r)
}

func TestClientIP(t *testing.T) {
	e := newEnv(t)
	k := e.userKey()
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for _, tt := range []struct {
		name    string
		trusted []netip.Prefix
		peer    string
		xff     []string
		want    string
	}{
		{"no trusted proxies: XFF ignored", nil, "198.51.100.7:1234", []string{"203.0.113.9"}, "198.51.100.7"},
		{"untrusted peer: XFF ignored", proxies, "198.51.100.7:1234", []string{"203.0.113.9"}, "198.51.100.7"},
		{"trusted peer", proxies, "10.0.0.1:80", []string{"203.0.113.9"}, "203.0.113.9"},
		{"chain of trusted proxies", proxies, "10.0.0.1:80", []string{"203.0.113.9, 10.0.0.2", "10.0.0.3"}, "203.0.113.9"},
		{"client-written entries left of the client are ignored", proxies, "10.0.0.1:80", []string{"1.1.1.1, 203.0.113.9"}, "203.0.113.9"},
		{"garbage stops at the last trusted hop", proxies, "10.0.0.1:80", []string{"203.0.113.9, nonsense"}, "10.0.0.1"},
		{"trusted peer without XFF", proxies, "10.0.0.1:80", nil, "10.0.0.1"},
		{"IPv6 peer", nil, "[2001:db8::1]:443", nil, "2001:db8::1"},
		{"IPv6 trusted proxy", proxies, "[::1]:443", []string{"2001:db8::2"}, "2001:db8::2"},
		{"IPv4-mapped peer", nil, "[::ffff:192.0.2.1]:80", nil, "192.0.2.1"},
		{"XFF with a port", proxies, "10.0.0.1:80", []string{"[2001:db8::3]:5555"}, "2001:db8::3"},
		// Where the middleware once disagreed with the gateway (issue 13).
		{"trailing empty XFF element", proxies, "10.0.0.1:80", []string{"203.0.113.7, "}, "203.0.113.7"},
		{"bracketed IPv6 without port", proxies, "10.0.0.1:80", []string{"[2001:db8::1]"}, "2001:db8::1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recordingVerifier{next: e.engine}
			h := middleware.New(rec, middleware.WithTrustedProxies(tt.trusted...), middleware.WithLogger(e.log))(whoami())
			r := httptest.NewRequest(http.MethodGet, "/notes", nil)
			r.RemoteAddr = tt.peer
			r.Header.Set("Authorization", "Bearer "+k.Secret)
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != 200 {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if len(rec.ips) != 1 || rec.ips[0] != tt.want {
				t.Errorf("verifier saw IP %q, want %q", rec.ips, tt.want)
			}
		})
	}
}

func TestRequirePermissionsWithoutNew(t *testing.T) {
	h := middleware.RequirePermissions("notes:read")(whoami())
	for _, tt := range []struct {
		id     *keyward.Identity
		status int
	}{
		{nil, 401},
		{&keyward.Identity{KeyID: "key_1", Role: keyward.RoleUser}, 403},
		{&keyward.Identity{KeyID: "key_1", Role: keyward.RoleUser, Permissions: []string{"notes:read"}}, 200},
		{&keyward.Identity{KeyID: "key_1", Role: keyward.RoleRoot}, 200},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if tt.id != nil {
			r = r.WithContext(keyward.NewContextWithIdentity(r.Context(), tt.id))
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tt.status {
			t.Errorf("identity %+v: status %d, want %d", tt.id, w.Code, tt.status)
		}
	}
}

func TestNewPanicsOnWiringBugs(t *testing.T) {
	for name, f := range map[string]func(){
		"nil verifier":  func() { middleware.New(nil) },
		"relative path": func() { middleware.New(&recordingVerifier{}, middleware.WithExempt("healthz")) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: New did not panic", name)
				}
			}()
			f()
		}()
	}
}

// brokenVerifier breaks the KeyVerifier contract in the ways a careless
// implementation might.
type brokenVerifier struct{ res *keyward.VerifyResult }

func (v brokenVerifier) VerifyKey(context.Context, keyward.VerifyRequest) (*keyward.VerifyResult, error) {
	return v.res, nil
}

// TestFailsClosed: a result that is not clearly VALID never lets a request
// through.
func TestFailsClosed(t *testing.T) {
	for _, res := range []*keyward.VerifyResult{
		nil,
		{Valid: true},
		{Valid: true, Code: "SOMETHING_NEW"},
		{Valid: false, Code: keyward.DecisionValid},
		{Valid: true, Code: keyward.DecisionNotFound},
		{Code: keyward.DecisionUnavailable},
	} {
		h := middleware.New(brokenVerifier{res}, middleware.WithLogger(slog.New(slog.DiscardHandler)))(whoami())
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("X-API-Key", "kw_user_x")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code == 200 {
			t.Errorf("result %+v let the request through", res)
		}
	}
}

// TestDependencies keeps the middleware light: services that embed it must
// not pull in a database driver, Redis or Prometheus.
func TestDependencies(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := map[string]bool{
		"github.com/keyward/keyward":            true,
		"github.com/keyward/keyward/apikey":     true,
		"github.com/keyward/keyward/clientaddr": true,
		"github.com/keyward/keyward/httpedge":   true,
		"github.com/keyward/keyward/middleware": true,
		"github.com/keyward/keyward/permission": true,
		"github.com/keyward/keyward/ratelimit":  true,
	}
	for _, dep := range strings.Fields(string(out)) {
		if !allowed[dep] {
			t.Errorf("middleware depends on %s; it may import only the standard library, the root package, apikey, clientaddr, httpedge, permission and ratelimit", dep)
		}
	}
}

// TestDropIn: a service that moves to keyward keeps its clients' agent
// header and its challenge; RequirePermissions answers with the same
// challenge. Without the options nothing changes.
func TestDropIn(t *testing.T) {
	e := newEnv(t)
	reader := e.userKey("notes:read")
	writer := e.userKey("notes:write")
	const challenge = `ApiKey realm="memories"`
	ts := e.protect(e.engine, app(), append(appOptions,
		middleware.WithAgentHeaders("X-OpenViking-Agent"), middleware.WithChallenge(challenge))...)

	if id := get(t, ts, "/notes", "X-API-Key", reader.Secret, "X-OpenViking-Agent", "planner").seen(t).Identity; id == nil || id.Agent != "planner" {
		t.Errorf("alias: identity %+v", id)
	}
	if id := get(t, ts, "/notes", "X-API-Key", reader.Secret, "X-OpenViking-Agent", "planner", "X-Keyward-Agent", "planner").seen(t).Identity; id.Agent != "planner" {
		t.Errorf("alias and header agree: identity %+v", id)
	}
	get(t, ts, "/notes", "X-API-Key", reader.Secret, "X-OpenViking-Agent", "a", "X-Keyward-Agent", "b").problem(t, 400, keyward.EINVALID)
	get(t, ts, "/notes", "X-API-Key", reader.Secret, "X-OpenViking-Agent", strings.Repeat("a", keyward.MaxAgentLen+1)).problem(t, 400, keyward.EINVALID)
	r := get(t, ts, "/notes")
	if got := r.header.Get("WWW-Authenticate"); r.status != 401 || got != challenge {
		t.Errorf("no key: %d, challenge %q", r.status, got)
	}
	// A 403 carries no challenge.
	if r := get(t, ts, "/notes", "X-API-Key", writer.Secret); r.header.Get("WWW-Authenticate") != "" {
		t.Errorf("403 with a challenge: %v", r.header)
	}
	// RequirePermissions behind New without an identity: an exempt path.
	r = get(t, ts, "/public/locked")
	if got := r.header.Get("WWW-Authenticate"); r.status != 401 || got != challenge {
		t.Errorf("RequirePermissions on an exempt path: %d, challenge %q", r.status, got)
	}

	plain := e.protect(e.engine, app(), appOptions...)
	if id := get(t, plain, "/notes", "X-API-Key", reader.Secret, "X-OpenViking-Agent", "planner").seen(t).Identity; id.Agent != "" {
		t.Errorf("without WithAgentHeaders the alias was read: %+v", id)
	}
	if got := get(t, plain, "/notes").header.Get("WWW-Authenticate"); got != `Bearer realm="keyward"` {
		t.Errorf("default challenge = %q", got)
	}
}

func TestDropInOptionsPanicOnWiringBugs(t *testing.T) {
	for name, opt := range map[string]middleware.Option{
		"credential header": middleware.WithAgentHeaders("Authorization"),
		"not a header":      middleware.WithAgentHeaders("X Agent"),
		"the agent header":  middleware.WithAgentHeaders("x-keyward-agent"),
		"twice":             middleware.WithAgentHeaders("X-A", "x-a"),
		"control character": middleware.WithChallenge("ApiKey\r\nX: y"),
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: New did not panic", name)
				}
			}()
			middleware.New(&recordingVerifier{}, opt)
		}()
	}
}
