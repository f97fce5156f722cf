package gateway_test

import (
	"net/http"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/gateway"
)

// TestRouteRequiresNamedRole: a route's require_role may name a named role:
// the gateway and forward-auth admit the keys holding it (their permissions
// coming from it too), and refuse the others, root included (a root key
// holds no named role), and a key whose role was deleted.
func TestRouteRequiresNamedRole(t *testing.T) {
	e := newEnv(t)
	reports := e.route("/reports")
	reports.RequireRole = "reader"
	reports.Permissions = []string{"memories:read"}
	ts := e.gateway(gateway.Config{Routes: []gateway.Route{reports}})
	fa := e.forwardAuth(gateway.Config{Routes: []gateway.Route{reports}})

	ctx := e.rootCtx()
	acc, err := e.svc.Tenancy.CreateAccount(ctx, keyward.AccountCreate{Name: "readers"})
	if err != nil {
		t.Fatal(err)
	}
	u, err := e.svc.Tenancy.CreateUser(ctx, acc.ID, keyward.UserCreate{Name: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Roles.CreateRole(ctx, acc.ID, keyward.RoleCreate{Name: "reader", Permissions: []string{"memories:*"}}); err != nil {
		t.Fatal(err)
	}
	holder, err := e.svc.Keys.CreateKey(ctx, keyward.KeyCreate{AccountID: acc.ID, UserID: u.ID, Roles: []string{"reader"}})
	if err != nil {
		t.Fatal(err)
	}
	e.secrets = append(e.secrets, holder.Secret)
	// Holding the permission without the role is not enough.
	other := e.userKey("memories:read")
	root := e.secrets[0]
	for _, c := range []struct {
		name, key string
		status    int
	}{
		{"the role's holder", holder.Secret, 200},
		{"a key with the permission but not the role", other.Secret, 403},
		{"root holds no named role", root, 403},
	} {
		t.Run(c.name, func(t *testing.T) {
			if r := do(t, call{method: "GET", url: ts.URL + "/reports/1", header: bearer(c.key)}); r.status != c.status {
				t.Fatalf("gateway: status %d, want %d: %s", r.status, c.status, r.body)
			}
			h := with(bearer(c.key), "X-Forwarded-Uri", "/reports/1")
			if r := do(t, call{method: "GET", url: fa.URL + "/v1/forward-auth", header: h}); r.status != c.status {
				t.Fatalf("forward-auth: status %d, want %d: %s", r.status, c.status, r.body)
			}
		})
	}
	// Deleting the role refuses its former holder at once (this instance's
	// cache is told by the admin service).
	if err := e.svc.Roles.DeleteRole(ctx, acc.ID, "reader"); err != nil {
		t.Fatal(err)
	}
	if r := do(t, call{method: "GET", url: ts.URL + "/reports/1", header: bearer(holder.Secret)}); r.status != http.StatusForbidden {
		t.Fatalf("after the role was deleted: status %d, want 403", r.status)
	}
}
