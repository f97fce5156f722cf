package gateway_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/gateway"
)

// TestRouteQueryMethodsAndRole: a route's query, its per-method queries
// and its role guard decide who reaches the upstream; a method the route
// does not admit is refused before the key is checked; HEAD takes GET's
// query; held wildcards cover what a route asks.
func TestRouteQueryMethodsAndRole(t *testing.T) {
	e := newEnv(t)
	memories := e.route("/memories")
	memories.Query = "memories:read OR admin:*"
	memories.Methods = map[string]string{"GET": "", "POST": "memories:write", "DELETE": "memories:delete AND admin:*"}
	admin := e.route("/admin")
	admin.RequireRole = keyward.RoleAccountAdmin
	ts := e.gateway(gateway.Config{Routes: []gateway.Route{memories, admin}})

	reader := e.userKey("memories:read")
	writer := e.userKey("memories:*")
	other := e.userKey("search:run")
	acct, err := e.svc.Tenancy.CreateAccount(e.rootCtx(), keyward.AccountCreate{Name: "admins"})
	if err != nil {
		t.Fatal(err)
	}
	acctAdmin, err := e.svc.Keys.CreateKey(e.rootCtx(), keyward.KeyCreate{AccountID: acct.ID, Role: keyward.RoleAccountAdmin})
	if err != nil {
		t.Fatal(err)
	}
	e.secrets = append(e.secrets, acctAdmin.Secret)
	root := e.secrets[0]
	for _, c := range []struct {
		name, method, path, key string
		status                  int
		code                    string
	}{
		{"GET with the route's query", "GET", "/memories/1", reader.Secret, 200, ""},
		{"HEAD takes GET's query", "HEAD", "/memories/1", reader.Secret, 200, ""},
		{"GET without the route's query", "GET", "/memories/1", other.Secret, 403, keyward.EFORBIDDEN},
		{"POST without the method's permission", "POST", "/memories", reader.Secret, 403, keyward.EFORBIDDEN},
		{"POST through a wildcard", "POST", "/memories", writer.Secret, 200, ""},
		{"DELETE without admin:*", "DELETE", "/memories/1", writer.Secret, 403, keyward.EFORBIDDEN},
		{"a method not listed", "PUT", "/memories/1", writer.Secret, 403, keyward.EFORBIDDEN},
		{"a method not listed, no key", "PUT", "/memories/1", "", 403, keyward.EFORBIDDEN},
		{"root holds every permission", "DELETE", "/memories/1", root, 200, ""},
		{"role guard refuses a user key", "GET", "/admin/x", writer.Secret, 403, keyward.EFORBIDDEN},
		{"role guard admits an account admin", "GET", "/admin/x", acctAdmin.Secret, 200, ""},
		{"role guard admits root", "GET", "/admin/x", root, 200, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var h http.Header
			if c.key != "" {
				h = bearer(c.key)
			}
			before := len(e.up.requests())
			r := do(t, call{method: c.method, url: ts.URL + c.path, header: h})
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			reached := len(e.up.requests()) > before
			if reached != (c.status == 200) {
				t.Errorf("upstream reached: %t, want %t", reached, c.status == 200)
			}
			if c.code != "" && c.method != "HEAD" {
				if code, _ := r.problem(t); code != c.code {
					t.Errorf("code %s, want %s", code, c.code)
				}
			}
		})
	}
}

// TestForwardAuthMethods: forward-auth reads the original method from the
// proxy's headers for routes with per-method queries, refuses (400) a
// subrequest naming none or two, and takes Envoy's own method.
func TestForwardAuthMethods(t *testing.T) {
	e := newEnv(t)
	routes := []gateway.Route{{PathPrefix: "/memories", Methods: map[string]string{"GET": "memories:read", "POST": "memories:write"}}}
	fa := e.forwardAuth(gateway.Config{Routes: routes})
	reader := e.userKey("memories:read")
	uri := func(method string) http.Header {
		h := with(bearer(reader.Secret), "X-Forwarded-Uri", "/memories/1")
		if method != "" {
			h = with(h, "X-Forwarded-Method", method)
		}
		return h
	}
	for _, c := range []struct {
		name, method, path string
		header             http.Header
		status             int
	}{
		{"GET admitted", "GET", "/v1/forward-auth", uri("GET"), 200},
		{"POST refused", "GET", "/v1/forward-auth", uri("POST"), 403},
		{"no method header", "GET", "/v1/forward-auth", uri(""), 400},
		{"disagreeing method headers", "GET", "/v1/forward-auth", with(uri("GET"), "X-Original-Method", "POST"), 400},
		{"lower-case method", "GET", "/v1/forward-auth", uri("get"), 400},
		{"envoy: its own method", "GET", "/v1/forward-auth/memories/1", bearer(reader.Secret), 200},
		{"envoy: its own method refused", "POST", "/v1/forward-auth/memories/1", bearer(reader.Secret), 403},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, call{method: c.method, url: fa.URL + c.path, header: c.header})
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
		})
	}
}

// TestValidateQueriesAndRoles: a query that does not parse is named with
// its field and position, as are bad methods and roles; good ones pass.
func TestValidateQueriesAndRoles(t *testing.T) {
	e := newEnv(t)
	good := gateway.Route{PathPrefix: "/", Query: "a AND (b OR c:*)", Methods: map[string]string{"GET": "", "*": "x"}, RequireRole: keyward.RoleUser}
	if err := gateway.Validate(gateway.Config{Verifier: e.engine, Routes: []gateway.Route{good}}, false); err != nil {
		t.Fatalf("a good route: %v", err)
	}
	bad := gateway.Route{PathPrefix: "/", Query: "a AND (b", Permissions: []string{"mem*"},
		Methods: map[string]string{"get": "", "POST": "a b"}, RequireRole: "Owner!"}
	err := gateway.Validate(gateway.Config{Verifier: e.engine, Routes: []gateway.Route{bad}}, false)
	var ce *gateway.ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("Validate = %v, want a *ConfigError", err)
	}
	got := map[string]string{}
	for _, f := range ce.Errors {
		got[f.Field] = f.Problem
	}
	for field, want := range map[string]string{
		"routes[0].query":        "at position 9",
		"routes[0].permissions":  "within a segment",
		"routes[0].methods":      `"get" is not a request method`,
		"routes[0].methods.POST": "at position 3",
		"routes[0].require_role": `"Owner!" is neither root, account_admin, user nor a role name`,
	} {
		if !strings.Contains(got[field], want) {
			t.Errorf("%s: %q, want it to say %q", field, got[field], want)
		}
	}
}
