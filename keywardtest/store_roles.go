package keywardtest

import (
	"errors"
	"slices"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// namedRole returns a role of account accountID holding perms.
func namedRole(accountID, name string, perms ...string) *keyward.NamedRole {
	now := Now()
	return &keyward.NamedRole{AccountID: accountID, Name: name, Permissions: perms, CreatedAt: now, UpdatedAt: now}
}

// testRoles: named roles are kept per account, listed by name, updated and
// deleted; a key holds its roles' permissions (RolePermissions) from every
// read, a role change reaches every key holding it, and deleting a role,
// a key or an account detaches what it must.
func testRoles(t *testing.T, open func(*testing.T) keyward.Store) {
	f := newFixture(t, open)
	acc, other := f.account("roles"), f.account("other")
	reader := namedRole(acc.ID, "reader", "memories:read", "search:*")
	if err := f.s.CreateRole(f.ctx, keyward.Change{}, reader); err != nil {
		t.Fatalf("CreateRole: %v", err)
	}
	for _, r := range []*keyward.NamedRole{namedRole(acc.ID, "writer", "memories:write"), namedRole(other.ID, "reader", "billing:read")} {
		if err := f.s.CreateRole(f.ctx, keyward.Change{}, r); err != nil {
			t.Fatalf("CreateRole(%s/%s): %v", r.AccountID, r.Name, err)
		}
	}
	wantCode(t, f.s.CreateRole(f.ctx, keyward.Change{}, namedRole(acc.ID, "reader")), keyward.ECONFLICT)
	wantCode(t, f.s.CreateRole(f.ctx, keyward.Change{}, namedRole(apikey.NewID("acc"), "reader")), keyward.ENOTFOUND)
	wantCode(t, f.s.CreateRole(f.ctx, keyward.Change{}, namedRole(acc.ID, "user")), keyward.EINVALID)
	wantCode(t, f.s.CreateRole(f.ctx, keyward.Change{}, namedRole(acc.ID, "Bad Name")), keyward.EINVALID)

	got, err := f.s.Role(f.ctx, acc.ID, "reader")
	if err != nil || !slices.Equal(got.Permissions, reader.Permissions) || !got.CreatedAt.Equal(reader.CreatedAt) || got.AccountID != acc.ID {
		t.Fatalf("Role = %+v, %v; want %+v", got, err, reader)
	}
	_, err = f.s.Role(f.ctx, other.ID, "writer")
	wantCode(t, err, keyward.ENOTFOUND)
	page1, next, err := f.s.Roles(f.ctx, acc.ID, keyward.Page{Limit: 1})
	if err != nil || len(page1) != 1 || page1[0].Name != "reader" || next != "reader" {
		t.Fatalf("Roles page 1 = %v, %q, %v", page1, next, err)
	}
	page2, next, err := f.s.Roles(f.ctx, acc.ID, keyward.Page{After: next, Limit: 1})
	if err != nil || len(page2) != 1 || page2[0].Name != "writer" || next != "" {
		t.Fatalf("Roles page 2 = %v, %q, %v", page2, next, err)
	}

	// A key with roles holds their permissions on every read.
	u := f.user(acc.ID, "u")
	k := NewKey(t, f.s, f.h, keyward.Key{Role: keyward.RoleUser, AccountID: acc.ID, UserID: u.ID, Permissions: []string{"notes:read"},
		Roles: []string{"reader", "writer"}}).Key
	wantRoles := func(k *keyward.Key, roles []string, perms ...string) {
		t.Helper()
		if !slices.Equal(k.Roles, roles) || !slices.Equal(k.RolePermissions, perms) {
			t.Fatalf("key %s: roles %q, role permissions %q; want %q, %q", k.ID, k.Roles, k.RolePermissions, roles, perms)
		}
	}
	wantRoles(&k, []string{"reader", "writer"}, "memories:read", "memories:write", "search:*")
	byHash, err := f.s.KeyByHash(f.ctx, k.Hash)
	if err != nil {
		t.Fatalf("KeyByHash: %v", err)
	}
	wantRoles(byHash, []string{"reader", "writer"}, "memories:read", "memories:write", "search:*")
	listed, _, err := f.s.Keys(f.ctx, keyward.KeyFilter{AccountID: acc.ID}, keyward.Page{})
	if err != nil || len(listed) != 1 {
		t.Fatalf("Keys = %v, %v", listed, err)
	}
	wantRoles(listed[0], []string{"reader", "writer"}, "memories:read", "memories:write", "search:*")
	if !listed[0].HasPermissions([]string{"search:run", "notes:read"}) || listed[0].HasPermissions([]string{"billing:read"}) {
		t.Fatalf("effective permissions %q", listed[0].EffectivePermissions())
	}
	// A key without roles has none.
	plain := f.userKey(acc.ID, u.ID, "notes:read")
	wantRoles(plain, nil)
	// A page of many keys reads every key's own roles, more keys than one
	// query of roles takes, mixed with keys without roles.
	many := f.account("many")
	for _, r := range []*keyward.NamedRole{namedRole(many.ID, "a", "a:read"), namedRole(many.ID, "b", "b:read")} {
		if err := f.s.CreateRole(f.ctx, keyward.Change{}, r); err != nil {
			t.Fatal(err)
		}
	}
	mu := f.user(many.ID, "m")
	want := map[string][]string{}
	for i := range 150 {
		roles := [][]string{{"a"}, {"b"}, {"a", "b"}, nil}[i%4]
		mk := NewKey(t, f.s, f.h, keyward.Key{Role: keyward.RoleUser, AccountID: many.ID, UserID: mu.ID, Roles: roles}).Key
		want[mk.ID] = roles
	}
	page, _, err := f.s.Keys(f.ctx, keyward.KeyFilter{AccountID: many.ID}, keyward.Page{Limit: 200})
	if err != nil || len(page) != 150 {
		t.Fatalf("Keys of 150 = %d keys, %v", len(page), err)
	}
	for _, pk := range page {
		var perms []string
		for _, r := range want[pk.ID] {
			perms = append(perms, r+":read")
		}
		wantRoles(pk, want[pk.ID], perms...)
	}

	// A role of another account, or none, cannot be attached.
	bad := keyward.Key{ID: apikey.NewID("key"), Hash: randomHash(), PepperVersion: 1, Role: keyward.RoleUser,
		AccountID: other.ID, UserID: f.user(other.ID, "o").ID, Roles: []string{"writer"}, CreatedAt: Now(), UpdatedAt: Now()}
	wantCode(t, f.s.CreateKey(f.ctx, keyward.Change{}, &bad), keyward.ENOTFOUND)
	_, err = f.s.UpdateKey(f.ctx, keyward.Change{}, k.ID, func(k *keyward.Key) error { k.Roles = []string{"nosuch"}; return nil })
	wantCode(t, err, keyward.ENOTFOUND)
	// A root key takes no roles; a role is not named twice.
	root := keyward.Key{ID: apikey.NewID("key"), Hash: randomHash(), PepperVersion: 1, Role: keyward.RoleRoot, Roles: []string{"reader"}, CreatedAt: Now(), UpdatedAt: Now()}
	wantCode(t, f.s.CreateKey(f.ctx, keyward.Change{}, &root), keyward.EINVALID)
	_, err = f.s.UpdateKey(f.ctx, keyward.Change{}, k.ID, func(k *keyward.Key) error { k.Roles = []string{"reader", "reader"}; return nil })
	wantCode(t, err, keyward.EINVALID)
	wantRoles(f.key(k.ID), []string{"reader", "writer"}, "memories:read", "memories:write", "search:*")

	// Updating a key's roles replaces them.
	updated, err := f.s.UpdateKey(f.ctx, keyward.Change{}, k.ID, func(k *keyward.Key) error { k.Roles = []string{"writer"}; return nil })
	if err != nil {
		t.Fatalf("UpdateKey roles: %v", err)
	}
	wantRoles(updated, []string{"writer"}, "memories:write")
	if _, err := f.s.UpdateKey(f.ctx, keyward.Change{}, k.ID, func(k *keyward.Key) error { k.Roles = []string{"reader", "writer"}; return nil }); err != nil {
		t.Fatalf("UpdateKey roles back: %v", err)
	}

	// A role change reaches the key at once.
	changed, err := f.s.UpdateRole(f.ctx, keyward.Change{}, acc.ID, "reader", func(r *keyward.NamedRole) error {
		r.Permissions, r.UpdatedAt = []string{"memories:read"}, fixedTime
		return nil
	})
	if err != nil || !slices.Equal(changed.Permissions, []string{"memories:read"}) || !changed.UpdatedAt.Equal(fixedTime) {
		t.Fatalf("UpdateRole = %+v, %v", changed, err)
	}
	_, err = f.s.UpdateRole(f.ctx, keyward.Change{}, acc.ID, "reader", func(r *keyward.NamedRole) error { r.Name = "renamed"; return nil })
	wantCode(t, err, keyward.EINVALID)
	_, err = f.s.UpdateRole(f.ctx, keyward.Change{}, acc.ID, "reader", func(r *keyward.NamedRole) error { r.Permissions = nil; return errAbort })
	if !errors.Is(err, errAbort) {
		t.Fatalf("UpdateRole with a failing fn: %v", err)
	}
	_, err = f.s.UpdateRole(f.ctx, keyward.Change{}, acc.ID, "nosuch", func(*keyward.NamedRole) error { return nil })
	wantCode(t, err, keyward.ENOTFOUND)
	byHash, err = f.s.KeyByHash(f.ctx, k.Hash)
	if err != nil {
		t.Fatalf("KeyByHash: %v", err)
	}
	wantRoles(byHash, []string{"reader", "writer"}, "memories:read", "memories:write")

	// Deleting a role detaches it from every key; the other account's
	// role of the same name stays.
	deleted, err := f.s.DeleteRole(f.ctx, keyward.Change{}, acc.ID, "reader")
	if err != nil || deleted.Name != "reader" {
		t.Fatalf("DeleteRole = %+v, %v", deleted, err)
	}
	_, err = f.s.DeleteRole(f.ctx, keyward.Change{}, acc.ID, "reader")
	wantCode(t, err, keyward.ENOTFOUND)
	wantRoles(f.key(k.ID), []string{"writer"}, "memories:write")
	if _, err := f.s.Role(f.ctx, other.ID, "reader"); err != nil {
		t.Fatalf("the other account's role: %v", err)
	}

	// KeyByHash reads the roles of a key only while it is flagged as
	// having some (keys.has_roles): the flag follows a role's deletion and
	// every detach and attach.
	keyByHash := func() *keyward.Key {
		t.Helper()
		k, err := f.s.KeyByHash(f.ctx, k.Hash)
		if err != nil {
			t.Fatalf("KeyByHash: %v", err)
		}
		return k
	}
	wantRoles(keyByHash(), []string{"writer"}, "memories:write")
	for _, roles := range [][]string{nil, {"writer"}} {
		if _, err := f.s.UpdateKey(f.ctx, keyward.Change{}, k.ID, func(k *keyward.Key) error { k.Roles = roles; return nil }); err != nil {
			t.Fatalf("UpdateKey roles %q: %v", roles, err)
		}
		if roles == nil {
			wantRoles(keyByHash(), nil)
		} else {
			wantRoles(keyByHash(), roles, "memories:write")
		}
	}

	// Deleting the key, then the account, deletes what hangs on them.
	if _, err := f.s.DeleteKey(f.ctx, keyward.Change{}, k.ID); err != nil {
		t.Fatalf("DeleteKey: %v", err)
	}
	if _, err := f.s.DeleteRole(f.ctx, keyward.Change{}, acc.ID, "writer"); err != nil {
		t.Fatalf("DeleteRole of a role of a deleted key: %v", err)
	}
	if _, err := f.s.DeleteAccount(f.ctx, keyward.Change{}, other.ID); err != nil {
		t.Fatalf("DeleteAccount: %v", err)
	}
	_, err = f.s.Role(f.ctx, other.ID, "reader")
	wantCode(t, err, keyward.ENOTFOUND)
}
