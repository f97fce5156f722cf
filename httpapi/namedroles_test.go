package httpapi_test

import (
	"slices"
	"testing"

	"github.com/keyward/keyward"
)

// TestNamedRolesOverHTTP: the roles API through the Go client, keys' roles
// field, and the verify answer: the effective permissions, the key's roles,
// require_role naming a role, and a role change reaching the key. Bad input
// is a problem with a stable code.
func TestNamedRolesOverHTTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client(e.root)
	a := e.mustAccount("named roles")
	u := e.mustUser(a.ID, "alice")
	r, err := c.CreateRole(t.Context(), a.ID, keyward.RoleCreate{Name: "reader", Permissions: []string{"search:*", "memories:read", "memories:read"}})
	if err != nil || !slices.Equal(r.Permissions, []string{"memories:read", "search:*"}) || r.AccountID != a.ID {
		t.Fatalf("CreateRole = %+v, %v", r, err)
	}
	if _, err := c.CreateRole(t.Context(), a.ID, keyward.RoleCreate{Name: "writer", Permissions: []string{"memories:write"}}); err != nil {
		t.Fatal(err)
	}
	l, err := c.Roles(t.Context(), a.ID, keyward.Page{Limit: 1})
	if err != nil || len(l.Items) != 1 || l.Items[0].Name != "reader" || l.Next != "reader" {
		t.Fatalf("Roles = %+v, %v", l, err)
	}
	if got, err := c.Role(t.Context(), a.ID, "writer"); err != nil || got.Name != "writer" {
		t.Fatalf("Role = %+v, %v", got, err)
	}

	k := e.mustKey(keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Permissions: []string{"notes:read"}, Roles: []string{"reader"}})
	if got, err := c.Key(t.Context(), k.ID); err != nil || !slices.Equal(got.Roles, []string{"reader"}) || !slices.Equal(got.Permissions, []string{"notes:read"}) {
		t.Fatalf("Key = %+v, %v: want its own permissions and its roles", got, err)
	}
	res, err := c.VerifyKey(t.Context(), keyward.VerifyRequest{Key: k.Secret, Query: "notes:read AND search:run", RequireRole: "reader"})
	if err != nil || !res.Valid || !slices.Equal(res.Identity.Roles, []string{"reader"}) ||
		!slices.Equal(res.Permissions, []string{"memories:read", "notes:read", "search:*"}) {
		t.Fatalf("verify = %+v, %v", res, err)
	}
	res, err = c.VerifyKey(t.Context(), keyward.VerifyRequest{Key: k.Secret, RequireRole: "writer"})
	if err != nil || res.Valid || res.Code != keyward.DecisionInsufficientPermissions || res.MissingRole != "writer" {
		t.Fatalf("verify require_role writer = %+v, %v", res, err)
	}
	// The tiers still work as before.
	res, err = c.VerifyKey(t.Context(), keyward.VerifyRequest{Key: k.Secret, RequireRole: keyward.RoleUser})
	if err != nil || !res.Valid {
		t.Fatalf("verify require_role user = %+v, %v", res, err)
	}

	// A role update reaches the key at once.
	narrower := []string{"memories:read"}
	if _, err := c.UpdateRole(t.Context(), a.ID, "reader", keyward.RoleUpdate{Permissions: &narrower}); err != nil {
		t.Fatal(err)
	}
	res, err = c.VerifyKey(t.Context(), keyward.VerifyRequest{Key: k.Secret, Permissions: []string{"search:run"}})
	if err != nil || res.Valid || !slices.Equal(res.MissingPermissions, []string{"search:run"}) {
		t.Fatalf("verify after the role update = %+v, %v", res, err)
	}
	roles := []string{"reader", "writer"}
	if got, err := c.UpdateKey(t.Context(), k.ID, keyward.KeyUpdate{Roles: &roles}); err != nil || !slices.Equal(got.Roles, roles) {
		t.Fatalf("UpdateKey roles = %+v, %v", got, err)
	}
	if err := c.DeleteRole(t.Context(), a.ID, "writer"); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Key(t.Context(), k.ID); err != nil || !slices.Equal(got.Roles, []string{"reader"}) {
		t.Fatalf("Key after deleting a role = %+v, %v", got, err)
	}

	// Bad input: a problem with a stable code.
	for _, c := range []struct{ body, code string }{
		{`{"name":"root","permissions":[]}`, keyward.EINVALID},
		{`{"name":"Reader"}`, keyward.EINVALID},
		{`{"name":"x","permissions":["mem*"]}`, keyward.EINVALID},
		{`{"name":"x","unknown":1}`, keyward.EINVALID},
		{`{"name":"reader"}`, keyward.ECONFLICT},
	} {
		r := e.do("POST", "/v1/accounts/"+a.ID+"/roles", e.root, c.body)
		if p := r.problem(t); p.Code != c.code {
			t.Errorf("%s: code %q, want %q", c.body, p.Code, c.code)
		}
	}
	if r := e.do("POST", "/v1/keys/verify", e.root, `{"key":"`+k.Secret+`","require_role":"Not A Role"}`); r.problem(t).Code != keyward.EINVALID {
		t.Errorf("require_role that is not a role name: %s", r.body)
	}
	if r := e.do("GET", "/v1/accounts/"+a.ID+"/roles/nosuch", e.root, ""); r.problem(t).Code != keyward.ENOTFOUND {
		t.Errorf("unknown role: %s", r.body)
	}
}
