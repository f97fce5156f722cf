package gateway_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/gateway"
)

// normaliseRoutes are the routes of the path tests: "/admin" needs admin
// and matches in any case; "/" needs read, exempts /docs and takes
// path parameters; "/jsession" takes ';' and '\'; "/files" takes neither.
func normaliseRoutes(e *env) []gateway.Route {
	root := e.route("/", "read")
	root.Exempt = []string{"/docs"}
	root.AllowSemicolon = true
	admin := e.route("/admin", "admin")
	admin.CaseInsensitive = true
	jsession := e.route("/jsession", "read")
	jsession.AllowSemicolon, jsession.AllowBackslash = true, true
	return []gateway.Route{root, admin, e.route("/files", "read"), jsession}
}

// bypasses are paths by which a key without admin reached /admin on
// upstreams that fold case, decode twice, cut ";params", take '\' for '/'
// or stop at NUL, and what the gateway and forward-auth now answer.
var bypasses = []struct {
	name, path string
	status     int
}{
	{"upper case", "/ADMIN", 403},
	{"mixed case below", "/Admin/users", 403},
	{"encoded letter", "/%41dmin/x", 403},
	{"encoded lower-case letter", "/%61dmin/x", 403},
	{"path parameter", "/admin;x", 400},
	{"encoded path parameter", "/admin%3bx/users", 400},
	{"encoded backslash", "/admin%5cx", 400},
	{"dot-dot with a path parameter", "/x/..;/admin/users", 400},
	{"encoded dot-dot", "/x/%2e%2e/admin", 400},
	{"encoded slash", "/admin%2fusers", 400},
	{"double encoding", "/%2561dmin", 400},
	{"double encoding in parts", "/%25%36%31dmin", 400},
	{"encoded NUL", "/admin%00.json", 400},
	{"overlong UTF-8 slash", "/x%C0%AF..%C0%AFadmin", 400},
	{"parameter on a route without the opt-in", "/files;x/y", 400},
	{"opted-in route: dot-dot parameter", "/jsession/..;/admin", 400},
	{"opted-in route: backslash dot-dot", "/jsession%5c..%5cadmin", 400},
	{"opted-in route: parameter hiding another route", "/jsession;x/../admin", 400},
}

func TestGatewayRefusesPathBypasses(t *testing.T) {
	e := newEnv(t)
	reader := e.userKey("read")
	gw := e.gateway(gateway.Config{Routes: normaliseRoutes(e)})
	for _, tc := range bypasses {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, call{url: gw.URL + tc.path, header: bearer(reader.Secret)})
			if r.status != tc.status {
				t.Fatalf("GET %s: status %d, want %d: %s", tc.path, r.status, tc.status, r.body)
			}
			code, _ := r.problem(t)
			if want := map[int]string{400: keyward.EINVALID, 403: keyward.EFORBIDDEN}[tc.status]; code != want {
				t.Errorf("code %s, want %s", code, want)
			}
			if n := len(e.up.requests()); n != 0 {
				t.Errorf("the upstream got %d requests", n)
			}
		})
	}
}

func TestGatewayForwardsTheCheckedPath(t *testing.T) {
	e := newEnv(t)
	reader := e.userKey("read")
	admin := e.userKey("read", "admin")
	gw := e.gateway(gateway.Config{Routes: normaliseRoutes(e)})
	for _, tc := range []struct {
		name, url string
		key       string
		path, uri string // what the upstream got: decoded path, and as sent
	}{
		{"ordinary", "/notes/1", reader.Secret, "/notes/1", "/notes/1"},
		{"trailing slash", "/files/x/", reader.Secret, "/files/x/", "/files/x/"},
		{"query with encoded characters", "/notes/1?a=%2F%3B%5C%2e&b=%C3%A9&c=..", reader.Secret, "/notes/1", "/notes/1?a=%2F%3B%5C%2e&b=%C3%A9&c=.."},
		{"encoded space and unicode", "/files/a%20b/%C3%A9t%C3%A9", reader.Secret, "/files/a b/été", "/files/a%20b/%C3%A9t%C3%A9"},
		{"lower-case hex", "/files/%c3%a9", reader.Secret, "/files/é", "/files/%C3%A9"},
		{"encoded unreserved characters are decoded", "/files/%7euser/%41%2D%5f", reader.Secret, "/files/~user/A-_", "/files/~user/A-_"},
		{"sub-delimiters", "/files/a!$&'()*+,=:@b", reader.Secret, "/files/a!$&'()*+,=:@b", "/files/a!$&'()*+,=:@b"},
		{"exempt path spelled encoded", "/%64ocs", "", "/docs", "/docs"},
		{"path parameter on an opted-in route", "/jsession/x;jsessionid=1", reader.Secret, "/jsession/x;jsessionid=1", "/jsession/x;jsessionid=1"},
		{"encoded parameter on an opted-in route", "/jsession/x%3bv=1", reader.Secret, "/jsession/x;v=1", "/jsession/x%3Bv=1"},
		{"backslash on an opted-in route", "/jsession/a%5Cb", reader.Secret, `/jsession/a\b`, "/jsession/a%5Cb"},
		{"parameter on / that routes nowhere else", "/notes;v=2/1", reader.Secret, "/notes;v=2/1", "/notes;v=2/1"},
		{"admin in another case", "/ADMIN/x", admin.Secret, "/ADMIN/x", "/ADMIN/x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := len(e.up.requests())
			var h http.Header
			if tc.key != "" {
				h = bearer(tc.key)
			}
			r := do(t, call{url: gw.URL + tc.url, header: h})
			if r.status != http.StatusOK {
				t.Fatalf("GET %s: status %d: %s", tc.url, r.status, r.body)
			}
			got := e.up.last(t, n)
			if got.path != tc.path || got.uri != tc.uri {
				t.Errorf("upstream got path %q as %q, want %q as %q", got.path, got.uri, tc.path, tc.uri)
			}
		})
	}
	// A ';' in the query is not the path's business: the request passes
	// (the proxy drops the parameter it cannot parse, as documented).
	n := len(e.up.requests())
	r := do(t, call{url: gw.URL + "/notes?x=1;y=2&z=3", header: bearer(reader.Secret)})
	if r.status != http.StatusOK {
		t.Fatalf("query with ';': status %d: %s", r.status, r.body)
	}
	if got := e.up.last(t, n).uri; got != "/notes?z=3" {
		t.Errorf("query with ';': the upstream got %q, want /notes?z=3", got)
	}
}

func TestGatewayRefusesLowerCaseMethods(t *testing.T) {
	e := newEnv(t)
	k := e.userKey()
	r := e.route("/")
	r.StampField = "created_by"
	gw := e.gateway(gateway.Config{Routes: []gateway.Route{r}})
	js := with(bearer(k.Secret), "Content-Type", "application/json")
	for _, m := range []string{"post", "Post", "delete", "pUT"} {
		t.Run(m, func(t *testing.T) {
			r := do(t, call{method: m, url: gw.URL + "/notes", header: js, body: `{"created_by":"mallory"}`})
			if r.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", r.status, r.body)
			}
			if code, _ := r.problem(t); code != keyward.EINVALID {
				t.Errorf("code %s", code)
			}
			if n := len(e.up.requests()); n != 0 {
				t.Errorf("the upstream got %d requests", n)
			}
		})
	}
}

func TestStampEveryMethodWithABody(t *testing.T) {
	e := newEnv(t)
	k := e.userKey()
	r := e.route("/")
	r.StampField = "created_by"
	gw := e.gateway(gateway.Config{Routes: []gateway.Route{r}})
	js := with(bearer(k.Secret), "Content-Type", "application/json")
	for _, m := range []string{"DELETE", "GET", "OPTIONS", "PURGE", "POST"} {
		t.Run(m, func(t *testing.T) {
			n := len(e.up.requests())
			r := do(t, call{method: m, url: gw.URL + "/notes/1", header: js, body: `{"created_by":"mallory","x":1}`})
			if r.status != http.StatusOK {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			got := e.up.last(t, n)
			var body map[string]any
			if err := json.Unmarshal(got.body, &body); err != nil {
				t.Fatalf("upstream body %q: %v", got.body, err)
			}
			if got.method != m || body["created_by"] != k.ID || body["x"] != 1.0 {
				t.Errorf("upstream got %s %s, want %s with created_by %s", got.method, got.body, m, k.ID)
			}
		})
	}
	// Without a body nothing changes, whatever the method.
	for _, m := range []string{"GET", "DELETE", "HEAD"} {
		n := len(e.up.requests())
		if r := do(t, call{method: m, url: gw.URL + "/notes/1", header: bearer(k.Secret)}); r.status != http.StatusOK {
			t.Fatalf("%s without a body: status %d: %s", m, r.status, r.body)
		}
		got := e.up.last(t, n)
		if got.method != m || len(got.body) != 0 || got.header.Get("Content-Type") != "" {
			t.Errorf("%s without a body reached the upstream as %s with %q, Content-Type %q", m, got.method, got.body, got.header.Get("Content-Type"))
		}
	}
}

func TestPathOverrideHeadersNotForwarded(t *testing.T) {
	e := newEnv(t)
	k := e.userKey("read")
	gw := e.gateway(gateway.Config{Routes: normaliseRoutes(e)})
	overrides := http.Header{
		"X-Original-Url": {"/admin/users"}, "X-Rewrite-Url": {"/admin/users"},
		"X_original_url": {"/admin/users"}, "X-Rewrite.URL": {"/admin/users"},
	}
	for _, path := range []string{"/docs", "/notes/1"} {
		n := len(e.up.requests())
		if r := do(t, call{url: gw.URL + path, header: with(overrides, "Authorization", "Bearer "+k.Secret)}); r.status != http.StatusOK {
			t.Fatalf("GET %s: status %d: %s", path, r.status, r.body)
		}
		for name, vs := range e.up.last(t, n).header {
			for _, v := range vs {
				if v == "/admin/users" {
					t.Errorf("GET %s: the upstream got %s: %s", path, name, v)
				}
			}
		}
	}
}

func TestForwardAuthRefusesPathBypasses(t *testing.T) {
	e := newEnv(t)
	reader := e.userKey("read")
	fa := e.forwardAuth(gateway.Config{Routes: normaliseRoutes(e), TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	for _, tc := range bypasses {
		for _, via := range []string{"X-Original-URI", "X-Forwarded-Uri", "envoy"} {
			t.Run(tc.name+"/"+via, func(t *testing.T) {
				c := call{url: fa.URL + "/v1/forward-auth", header: bearer(reader.Secret)}
				if via == "envoy" {
					if strings.Contains(tc.path, "/../") {
						t.Skip("the mux in front redirects to the cleaned path")
					}
					c.url += tc.path
				} else {
					c.header = with(c.header, via, tc.path)
				}
				r := do(t, c)
				if r.status != tc.status {
					t.Fatalf("%s %s: status %d, want %d: %s", via, tc.path, r.status, tc.status, r.body)
				}
			})
		}
	}
}

func TestForwardAuthURIHeaderAndPathMustAgree(t *testing.T) {
	e := newEnv(t)
	reader := e.userKey("read")
	fa := e.forwardAuth(gateway.Config{Routes: normaliseRoutes(e)})
	for _, tc := range []struct {
		name, path, uri, key string
		status               int
	}{
		{"client names an exempt path", "/admin/users", "/docs", "", 400},
		{"client names a weaker route", "/admin/users", "/notes/1", reader.Secret, 400},
		{"exempt path, other URI", "/docs", "/admin/users", "", 400},
		{"agreeing, with a query", "/notes/1", "/notes/1?q=1", reader.Secret, 200},
		{"agreeing in another spelling", "/%64ocs", "/docs", "", 200},
		{"exempt path spelled encoded", "", "/%64ocs", "", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{"X-Original-Uri": {tc.uri}}
			if tc.key != "" {
				h = with(h, "Authorization", "Bearer "+tc.key)
			}
			r := do(t, call{url: fa.URL + "/v1/forward-auth" + tc.path, header: h})
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if r.status != 200 {
				if code, _ := r.problem(t); code != keyward.EINVALID {
					t.Errorf("code %s", code)
				}
			}
		})
	}
}

func TestRouteOptInsValidated(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name   string
		routes func() []gateway.Route
		field  string
	}{
		{"semicolon in a prefix", func() []gateway.Route { return []gateway.Route{e.route("/a;b")} }, "routes[0].prefix"},
		{"backslash in a prefix", func() []gateway.Route { return []gateway.Route{e.route(`/a\b`)} }, "routes[0].prefix"},
		{"escape in an exempt path", func() []gateway.Route {
			r := e.route("/")
			r.Exempt = []string{"/%41"}
			return []gateway.Route{r}
		}, "routes[0].exempt"},
		{"case-sensitive route under a case-insensitive one", func() []gateway.Route {
			api := e.route("/api")
			api.CaseInsensitive = true
			return []gateway.Route{api, e.route("/API/admin")}
		}, "routes[1].prefix"},
		{"two case-insensitive routes equal ignoring case", func() []gateway.Route {
			a, b := e.route("/api"), e.route("/API")
			a.CaseInsensitive, b.CaseInsensitive = true, true
			return []gateway.Route{a, b}
		}, "routes[1].prefix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := gateway.Validate(gateway.Config{Verifier: e.engine, Routes: tc.routes()}, true)
			var ce *gateway.ConfigError
			if !errors.As(err, &ce) || len(ce.Errors) == 0 || ce.Errors[0].Field != tc.field {
				t.Fatalf("Validate: %v, want an error for %s", err, tc.field)
			}
		})
	}
	// Nested case-insensitive routes, and a case-sensitive route beside
	// one, are fine.
	api, admin := e.route("/api"), e.route("/api/admin")
	api.CaseInsensitive, admin.CaseInsensitive = true, true
	if err := gateway.Validate(gateway.Config{Verifier: e.engine, Routes: []gateway.Route{api, admin, e.route("/apix")}}, true); err != nil {
		t.Errorf("Validate: %v", err)
	}
}
