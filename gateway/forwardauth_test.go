package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/gateway"
)

func (e *env) forwardAuth(cfg gateway.Config) *httptest.Server {
	e.t.Helper()
	if cfg.Verifier == nil {
		cfg.Verifier = e.engine
	}
	cfg.Logger = e.logger()
	fa, err := gateway.NewForwardAuth(cfg)
	if err != nil {
		e.t.Fatalf("gateway.NewForwardAuth: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/forward-auth", fa)
	mux.Handle("/v1/forward-auth/", fa)
	ts := httptest.NewServer(mux)
	e.t.Cleanup(ts.Close)
	return ts
}

var identityNames = []string{"X-Keyward-Key-Id", "X-Keyward-Account", "X-Keyward-User", "X-Keyward-Role", "X-Keyward-Agent", "X-Keyward-Permissions"}

func TestForwardAuthContracts(t *testing.T) {
	e := newEnv(t)
	reader := e.userKey("notes:read")
	writer := e.userKey("notes:read", "notes:write")
	routes := []gateway.Route{
		{PathPrefix: "/notes", Permissions: []string{"notes:read"}, Exempt: []string{"/notes/docs"}},
		{PathPrefix: "/notes/admin", Permissions: []string{"notes:write"}},
		{PathPrefix: "/", Host: "write.example", Permissions: []string{"notes:write"}},
	}
	// The test client is the proxy, on loopback: trusted, so its
	// X-Forwarded-Host picks host routes.
	fa := e.forwardAuth(gateway.Config{Routes: routes, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}})
	untrusted := e.forwardAuth(gateway.Config{Routes: routes})
	nginx := func(uri string) http.Header { return http.Header{"X-Original-URI": {uri}} }
	traefik := func(method, host, uri string) http.Header {
		return http.Header{"X-Forwarded-Method": {method}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {host}, "X-Forwarded-Uri": {uri}}
	}
	key := func(h http.Header, k string) http.Header { return with(h, "Authorization", "Bearer "+k) }

	for _, tc := range []struct {
		name   string
		method string
		path   string
		header http.Header
		status int
		keyID  string
	}{
		{"nginx valid", "GET", "/v1/forward-auth", key(nginx("/notes/1?x=1"), reader.Secret), 200, reader.ID},
		{"nginx exempt, no key", "GET", "/v1/forward-auth", nginx("/notes/docs"), 200, ""},
		{"nginx exempt, bad key", "GET", "/v1/forward-auth", key(nginx("/notes/docs"), "kw_user_bad"), 200, ""},
		{"nginx missing key", "GET", "/v1/forward-auth", nginx("/notes/1"), 401, ""},
		{"nginx bad key", "GET", "/v1/forward-auth", key(nginx("/notes/1"), "kw_user_bad"), 401, ""},
		{"nginx longest prefix", "GET", "/v1/forward-auth", key(nginx("/notes/admin/x"), reader.Secret), 403, ""},
		{"nginx longest prefix allowed", "GET", "/v1/forward-auth", key(nginx("/notes/admin/x"), writer.Secret), 200, writer.ID},
		{"nginx no route: any valid key", "GET", "/v1/forward-auth", key(nginx("/other"), reader.Secret), 200, reader.ID},
		{"nginx dot segments", "GET", "/v1/forward-auth", key(nginx("/notes/docs/../admin"), writer.Secret), 400, ""},
		{"traefik valid", "GET", "/v1/forward-auth", key(traefik("POST", "api.example", "/notes/2"), reader.Secret), 200, reader.ID},
		{"traefik X-API-Key", "GET", "/v1/forward-auth", with(traefik("POST", "api.example", "/notes/2"), "X-Api-Key", reader.Secret), 200, reader.ID},
		{"traefik host route", "GET", "/v1/forward-auth", key(traefik("GET", "write.example:443", "/notes/2"), reader.Secret), 403, ""},
		{"host from an untrusted peer is ignored", "GET", "untrusted:/v1/forward-auth", key(traefik("GET", "write.example", "/notes/2"), reader.Secret), 200, reader.ID},
		{"caddy host route allowed", "GET", "/v1/forward-auth", key(traefik("GET", "write.example", "/x"), writer.Secret), 200, writer.ID},
		{"ingress-nginx absolute URL", "GET", "/v1/forward-auth", key(http.Header{"X-Original-Url": {"https://api.example/notes/admin/1"}}, reader.Secret), 403, ""},
		{"agreeing URIs", "GET", "/v1/forward-auth", key(with(nginx("/notes/1"), "X-Forwarded-Uri", "/notes/1"), reader.Secret), 200, reader.ID},
		{"forged URI disagrees", "GET", "/v1/forward-auth", with(nginx("/notes/admin"), "X-Forwarded-Uri", "/notes/docs"), 400, ""},
		{"repeated URI", "GET", "/v1/forward-auth", with(nginx("/notes/docs"), "X-Original-URI", "/notes/admin"), 400, ""},
		{"no URI with routes", "GET", "/v1/forward-auth", key(http.Header{}, writer.Secret), 400, ""},
		{"envoy appended path", "POST", "/v1/forward-auth/notes/admin/1", key(http.Header{}, reader.Secret), 403, ""},
		{"envoy appended path allowed", "DELETE", "/v1/forward-auth/notes/admin/1", key(http.Header{}, writer.Secret), 200, writer.ID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := with(tc.header, forged...)
			base, path := fa.URL, tc.path
			if p, ok := strings.CutPrefix(path, "untrusted:"); ok {
				base, path = untrusted.URL, p
			}
			r := do(t, call{method: tc.method, url: base + path, header: h})
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if r.status != 200 {
				code, _ := r.problem(t)
				want := map[int]string{400: keyward.EINVALID, 401: keyward.EUNAUTHORIZED, 403: keyward.EFORBIDDEN}[r.status]
				if code != want {
					t.Errorf("code %s, want %s", code, want)
				}
				if (r.status == 401) != (r.header.Get("WWW-Authenticate") != "") {
					t.Errorf("WWW-Authenticate %q on %d", r.header.Get("WWW-Authenticate"), r.status)
				}
				return
			}
			// 200: every identity header present (empty when it does
			// not apply), none forged.
			for _, name := range identityNames {
				if _, ok := r.header[name]; !ok {
					t.Errorf("200 without %s", name)
				}
			}
			if got := r.header.Get("X-Keyward-Key-Id"); got != tc.keyID {
				t.Errorf("X-Keyward-Key-Id %q, want %q", got, tc.keyID)
			}
			checkNoForged(t, &seen{header: r.header})
			if r.header.Get("Cache-Control") != "no-store" {
				t.Error("200 is cacheable")
			}
		})
	}
}

func TestForwardAuthIdentityHeaders(t *testing.T) {
	e := newEnv(t)
	k := e.userKey("a", "b")
	fa := e.forwardAuth(gateway.Config{})
	r := do(t, call{url: fa.URL + "/v1/forward-auth", header: with(bearer(k.Secret), "X-Keyward-Agent", "n8n")})
	want := map[string]string{
		"X-Keyward-Key-Id": k.ID, "X-Keyward-Account": k.AccountID, "X-Keyward-User": k.UserID,
		"X-Keyward-Role": "user", "X-Keyward-Agent": "n8n", "X-Keyward-Permissions": "a b",
	}
	for name, v := range want {
		if got := r.header.Get(name); got != v {
			t.Errorf("%s = %q, want %q", name, got, v)
		}
	}
}

func TestForwardAuthClientIP(t *testing.T) {
	e := newEnv(t)
	k := e.userKey()
	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
		ip      string
	}{
		{"untrusted proxy", nil, "127.0.0.1"},
		{"trusted proxy", []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, "192.0.2.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rv := &recordingVerifier{next: e.engine}
			fa := e.forwardAuth(gateway.Config{Verifier: rv, TrustedProxies: tc.trusted})
			r := do(t, call{url: fa.URL + "/v1/forward-auth", header: with(bearer(k.Secret), "X-Forwarded-For", "192.0.2.7")})
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if got := rv.lastIP(); got != tc.ip {
				t.Errorf("verifier saw %q, want %q", got, tc.ip)
			}
		})
	}
}

func TestForwardAuthUnavailable(t *testing.T) {
	e := newEnv(t)
	fa := e.forwardAuth(gateway.Config{Verifier: failingVerifier{}})
	r := do(t, call{url: fa.URL + "/v1/forward-auth", header: bearer("kw_user_x")})
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("status %d", r.status)
	}
	if code, _ := r.problem(t); code != keyward.EUNAVAILABLE {
		t.Errorf("code %s", code)
	}
}
