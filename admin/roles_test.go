package admin_test

import (
	"slices"
	"testing"

	"github.com/keyward/keyward"
)

// TestRolesNoEscalation: nobody puts in a role, or attaches to a key
// through a role, a permission they do not hold (wildcards included), an
// account admin manages only its own account's roles, and what the caller
// does hold is allowed.
func TestRolesNoEscalation(t *testing.T) {
	e := newEnv(t)
	a, u, adminKey, userKey := e.tenant(t, "acme", "memories:*", "search:run")
	b, _, adminB, _ := e.tenant(t, "other", "memories:*")
	asAdmin, asUser := as(t, &adminKey.Key), as(t, &userKey.Key)
	roleCases := []struct {
		name  string
		ctx   *keyward.CreatedKey
		acc   string
		perms []string
		code  string
	}{
		{"admin, narrower than a held wildcard", adminKey, a.ID, []string{"memories:read", "memories:notes:*"}, ""},
		{"admin, the held wildcard itself", adminKey, a.ID, []string{"memories:*", "search:run"}, ""},
		{"admin, a permission it lacks", adminKey, a.ID, []string{"billing:read"}, keyward.EFORBIDDEN},
		{"admin, a wildcard broader than held", adminKey, a.ID, []string{"search:*"}, keyward.EFORBIDDEN},
		{"admin, everything", adminKey, a.ID, []string{"*"}, keyward.EFORBIDDEN},
		{"admin, another account", adminKey, b.ID, []string{"memories:read"}, keyward.ENOTFOUND},
		{"user key", userKey, a.ID, []string{"memories:read"}, keyward.EFORBIDDEN},
	}
	for i, c := range roleCases {
		name := "r" + string(rune('a'+i))
		_, err := e.svc.Roles.CreateRole(as(t, &c.ctx.Key), c.acc, keyward.RoleCreate{Name: name, Permissions: c.perms})
		if got := keyward.ErrorCode(err); got != c.code {
			t.Errorf("%s: error = %v, want code %q", c.name, err, c.code)
		}
	}
	// Root may put any permission but "*" in a role.
	must(e.svc.Roles.CreateRole(e.root, a.ID, keyward.RoleCreate{Name: "billing", Permissions: []string{"billing:*"}}))
	_, err := e.svc.Roles.CreateRole(e.root, a.ID, keyward.RoleCreate{Name: "all", Permissions: []string{"*"}})
	wantCode(t, err, keyward.EFORBIDDEN)
	for _, bad := range []string{"", "User", "user", "account_admin", "has space", "x*"} {
		_, err := e.svc.Roles.CreateRole(e.root, a.ID, keyward.RoleCreate{Name: bad})
		wantCode(t, err, keyward.EINVALID)
	}
	_, err = e.svc.Roles.CreateRole(e.root, a.ID, keyward.RoleCreate{Name: "ra"})
	wantCode(t, err, keyward.ECONFLICT)

	// Updating a role is held to the same rule; a refused update changes
	// nothing.
	wider := []string{"memories:read", "billing:read"}
	_, err = e.svc.Roles.UpdateRole(asAdmin, a.ID, "ra", keyward.RoleUpdate{Permissions: &wider})
	wantCode(t, err, keyward.EFORBIDDEN)
	if r := must(e.svc.Roles.Role(asAdmin, a.ID, "ra")); !slices.Equal(r.Permissions, []string{"memories:notes:*", "memories:read"}) {
		t.Fatalf("a refused update changed the role: %q", r.Permissions)
	}
	narrower := []string{"memories:read"}
	must(e.svc.Roles.UpdateRole(asAdmin, a.ID, "ra", keyward.RoleUpdate{Permissions: &narrower}))
	_, err = e.svc.Roles.UpdateRole(as(t, &adminB.Key), a.ID, "ra", keyward.RoleUpdate{Permissions: &narrower})
	wantCode(t, err, keyward.ENOTFOUND)
	wantCode(t, e.svc.Roles.DeleteRole(as(t, &adminB.Key), a.ID, "ra"), keyward.ENOTFOUND)
	_, err = e.svc.Roles.Roles(asUser, a.ID, keyward.Page{})
	wantCode(t, err, keyward.EFORBIDDEN)

	// Attaching a role is granting its permissions: the admin may attach
	// "ra" (memories:read), not "billing" (billing:*), at creation or by
	// update.
	k := must(e.svc.Keys.CreateKey(asAdmin, keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Roles: []string{"ra"}}))
	if !slices.Equal(k.Roles, []string{"ra"}) {
		t.Fatalf("created key roles = %q", k.Roles)
	}
	_, err = e.svc.Keys.CreateKey(asAdmin, keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Roles: []string{"billing"}})
	wantCode(t, err, keyward.EFORBIDDEN)
	billing := []string{"ra", "billing"}
	_, err = e.svc.Keys.UpdateKey(asAdmin, k.ID, keyward.KeyUpdate{Roles: &billing})
	wantCode(t, err, keyward.EFORBIDDEN)
	_, err = e.svc.Keys.CreateKey(asAdmin, keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Roles: []string{"nosuch"}})
	wantCode(t, err, keyward.ENOTFOUND)
	_, err = e.svc.Keys.CreateKey(e.root, keyward.KeyCreate{Role: keyward.RoleRoot, Roles: []string{"ra"}})
	wantCode(t, err, keyward.EINVALID)
	// The other account's admin cannot attach this account's role.
	_, err = e.svc.Keys.CreateKey(as(t, &adminB.Key), keyward.KeyCreate{AccountID: b.ID, Role: keyward.RoleAccountAdmin, Roles: []string{"ra"}})
	wantCode(t, err, keyward.ENOTFOUND)
	// Root attaches any role.
	must(e.svc.Keys.UpdateKey(e.root, k.ID, keyward.KeyUpdate{Roles: &billing}))

	// Rotating a key re-grants its roles' permissions: the admin may not
	// rotate a key holding "billing", root may, and the replacement keeps
	// the roles.
	_, err = e.svc.Keys.RotateKey(asAdmin, k.ID, keyward.KeyRotate{})
	wantCode(t, err, keyward.EFORBIDDEN)
	next := must(e.svc.Keys.RotateKey(e.root, k.ID, keyward.KeyRotate{}))
	if got := must(e.svc.Keys.Key(e.root, next.ID)); !slices.Equal(got.Roles, []string{"billing", "ra"}) {
		t.Fatalf("the replacement's roles = %q", got.Roles)
	}

	// A key holding a role may grant what the role gives it.
	roleHolder := must(e.svc.Keys.CreateKey(e.root, keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Roles: []string{"billing"}}))
	must(e.svc.Keys.CreateKey(as(t, &roleHolder.Key), keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Permissions: []string{"billing:read"}}))
}

// TestRoleChangesReachKeys: a key holds its roles' permissions, and a change
// or deletion of a role changes what the key may do at once, through the
// observer (the account's keys are invalidated) and the local cache.
func TestRoleChangesReachKeys(t *testing.T) {
	onEachStore(t, func(t *testing.T, e *env) {
		a, u, _, _ := e.tenant(t, "acme")
		must(e.svc.Roles.CreateRole(e.root, a.ID, keyward.RoleCreate{Name: "reader", Permissions: []string{"memories:read", "search:*"}}))
		k := must(e.svc.Keys.CreateKey(e.root, keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Permissions: []string{"notes:read"}, Roles: []string{"reader"}}))
		verify := func(role keyward.Role, perms ...string) *keyward.VerifyResult {
			return must(e.svc.Keys.VerifyKey(e.root, keyward.VerifyRequest{Key: k.Secret, Permissions: perms, RequireRole: role}))
		}
		res := verify("", "memories:read", "search:run", "notes:read")
		if !res.Valid || !slices.Equal(res.Identity.Roles, []string{"reader"}) ||
			!slices.Equal(res.Permissions, []string{"memories:read", "notes:read", "search:*"}) {
			t.Fatalf("verify with roles = %+v", res)
		}
		if res := verify("reader"); !res.Valid {
			t.Fatalf("require_role reader = %+v", res)
		}
		if res := verify("writer"); res.Valid || res.MissingRole != "writer" {
			t.Fatalf("require_role writer = %+v", res)
		}
		if res := verify(keyward.RoleAccountAdmin); res.Valid || res.MissingRole != keyward.RoleAccountAdmin {
			t.Fatalf("require_role account_admin on a user key = %+v", res)
		}

		e.obs.mu.Lock()
		before := len(e.obs.accounts)
		e.obs.mu.Unlock()
		narrower := []string{"memories:read"}
		must(e.svc.Roles.UpdateRole(e.root, a.ID, "reader", keyward.RoleUpdate{Permissions: &narrower}))
		e.obs.mu.Lock()
		told := slices.Contains(e.obs.accounts[before:], a.ID)
		e.obs.mu.Unlock()
		if !told {
			t.Fatal("a role update did not invalidate the account's keys")
		}
		// The observer is the test's recorder: drop the engine's entries
		// as the bus would on every instance.
		e.engine.InvalidateAccount(a.ID)
		if res := verify("", "search:run"); res.Valid || !slices.Equal(res.MissingPermissions, []string{"search:run"}) {
			t.Fatalf("after the role lost search:* = %+v", res)
		}
		if res := verify("", "memories:read"); !res.Valid {
			t.Fatalf("after the update, memories:read = %+v", res)
		}

		must(0, e.svc.Roles.DeleteRole(e.root, a.ID, "reader"))
		e.engine.InvalidateAccount(a.ID)
		if res := verify("", "memories:read"); res.Valid {
			t.Fatalf("after the role was deleted = %+v", res)
		}
		if res := verify("reader"); res.Valid {
			t.Fatalf("require_role of a deleted role = %+v", res)
		}
		if got := must(e.svc.Keys.Key(e.root, k.ID)); got.Roles != nil {
			t.Fatalf("the deleted role is still attached: %q", got.Roles)
		}
		if res := verify("", "notes:read"); !res.Valid {
			t.Fatalf("the key's own permission = %+v", res)
		}
	})
}
