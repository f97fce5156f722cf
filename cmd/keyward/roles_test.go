package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

// TestRolesCLI manages named roles and attaches them to keys against an
// in-process server: a key holds its roles' permissions, a role change
// reaches it, an admin cannot grant through a role what it lacks, and bad
// input is one line with a non-zero exit.
func TestRolesCLI(t *testing.T) {
	s := startServer(t, nil)
	root := s.rootKey
	var acme keyward.Account
	s.okJSON(t, root, &acme, "accounts", "create", "--name", "acme")
	var u keyward.User
	s.okJSON(t, root, &u, "users", "create", "--account", acme.ID, "--name", "alice")
	var admin keyward.CreatedKey
	s.okJSON(t, root, &admin, "keys", "create", "--account", acme.ID, "--role", "account_admin", "--permission", "memories:*", "--permission", "keys:verify")

	var r keyward.NamedRole
	s.okJSON(t, admin.Secret, &r, "roles", "create", "--account", acme.ID, "--name", "reader", "--permission", "memories:read", "--permission", "memories:notes:*")
	if r.Name != "reader" || !slices.Equal(r.Permissions, []string{"memories:notes:*", "memories:read"}) {
		t.Fatalf("roles create = %+v", r)
	}
	s.fails(t, ExitForbidden, admin.Secret, "roles", "create", "--account", acme.ID, "--name", "searcher", "--permission", "search:*")
	s.fails(t, ExitUsage, admin.Secret, "roles", "create", "--account", acme.ID, "--name", "account_admin")
	s.fails(t, ExitConflict, admin.Secret, "roles", "create", "--account", acme.ID, "--name", "reader")
	s.okJSON(t, root, &r, "roles", "create", "--account", acme.ID, "--name", "searcher", "--permission", "search:*")
	if out := s.ok(t, admin.Secret, "roles", "list", "--account", acme.ID); !strings.Contains(out, "reader") || !strings.Contains(out, "searcher") {
		t.Errorf("roles list:\n%s", out)
	}

	// --named-role attaches a role; the tier flag --role is unchanged.
	var k keyward.CreatedKey
	s.okJSON(t, admin.Secret, &k, "keys", "create", "--account", acme.ID, "--user", u.ID, "--named-role", "reader")
	if !slices.Equal(k.Roles, []string{"reader"}) || k.Role != keyward.RoleUser {
		t.Fatalf("keys create --named-role = %+v", k.Key)
	}
	s.fails(t, ExitForbidden, admin.Secret, "keys", "create", "--account", acme.ID, "--user", u.ID, "--named-role", "searcher")
	s.fails(t, ExitForbidden, admin.Secret, "keys", "update", k.ID, "--named-role", "searcher")
	if out := s.ok(t, admin.Secret, "keys", "get", k.ID); !strings.Contains(out, "named roles:") || !strings.Contains(out, "reader") {
		t.Errorf("keys get:\n%s", out)
	}
	s.ok(t, admin.Secret, "verify", k.Secret, "--permission", "memories:notes:read", "--require-role", "reader")
	s.fails(t, ExitKeyInvalid, admin.Secret, "verify", k.Secret, "--require-role", "searcher")

	// A role change reaches the key at once.
	s.ok(t, admin.Secret, "roles", "update", "--account", acme.ID, "reader", "--permission", "memories:read")
	s.fails(t, ExitKeyInvalid, admin.Secret, "verify", k.Secret, "--permission", "memories:notes:read")
	s.ok(t, admin.Secret, "verify", k.Secret, "--permission", "memories:read")
	s.fails(t, ExitUsage, admin.Secret, "roles", "update", "--account", acme.ID, "reader")

	var updated keyward.Key
	s.okJSON(t, admin.Secret, &updated, "keys", "update", k.ID, "--clear-named-roles")
	if updated.Roles != nil {
		t.Fatalf("keys update --clear-named-roles = %q", updated.Roles)
	}
	s.ok(t, admin.Secret, "roles", "delete", "--account", acme.ID, "reader")
	s.fails(t, ExitNotFound, admin.Secret, "roles", "get", "--account", acme.ID, "reader")
}
