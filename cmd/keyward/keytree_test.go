package main

import (
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

// TestRevokeCascadeCLI revokes a key with the keys it minted, two levels
// deep, and sets an account's minting policy, through the CLI.
func TestRevokeCascadeCLI(t *testing.T) {
	s := startServer(t, nil)
	root := s.rootKey
	var acme keyward.Account
	s.okJSON(t, root, &acme, "accounts", "create", "--name", "acme")
	var alice keyward.User
	s.okJSON(t, root, &alice, "users", "create", "--account", acme.ID, "--name", "alice")
	var admin, child, grandchild, bystander keyward.CreatedKey
	s.okJSON(t, root, &admin, "keys", "create", "--account", acme.ID, "--role", "account_admin")
	s.okJSON(t, root, &bystander, "keys", "create", "--account", acme.ID, "--user", alice.ID)
	// The default policy lets an admin and a user mint keys.
	s.okJSON(t, admin.Secret, &child, "keys", "create", "--account", acme.ID, "--user", alice.ID)
	s.okJSON(t, child.Secret, &grandchild, "keys", "create", "--account", acme.ID, "--user", alice.ID)

	out := s.ok(t, root, "keys", "revoke", admin.ID, "--cascade")
	if !strings.Contains(out, "cascaded") || !strings.Contains(out, child.ID+" "+grandchild.ID) {
		t.Errorf("revoke --cascade printed:\n%s", out)
	}
	for _, k := range []keyward.CreatedKey{admin, child, grandchild} {
		if r := s.cli(t, k.Secret, "whoami"); r.code != ExitUnauthorized {
			t.Errorf("whoami with %s after the cascade: exit %d, want %d", k.ID, r.code, ExitUnauthorized)
		}
	}
	s.ok(t, bystander.Secret, "whoami")
	var me keyward.Identity
	s.okJSON(t, root, &me, "whoami")
	s.fails(t, ExitUsage, root, "keys", "revoke", "--cascade", me.KeyID)

	// Root closes the policy: the user key may no longer mint keys.
	out = s.ok(t, root, "accounts", "update", acme.ID, "--users-may-mint-keys=false")
	found := false
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(line, "users may mint keys:") {
			found = f[len(f)-1] == "no"
		}
	}
	if !found {
		t.Errorf("accounts update printed no \"users may mint keys: no\":\n%s", out)
	}
	if msg := s.fails(t, ExitForbidden, bystander.Secret, "keys", "create", "--account", acme.ID, "--user", alice.ID); !strings.Contains(msg, "users_may_mint_keys") {
		t.Errorf("refusal by the policy says %q; want it to name the setting", msg)
	}
	s.ok(t, root, "accounts", "update", acme.ID, "--users-may-mint-keys=true")
	var again keyward.CreatedKey
	s.okJSON(t, bystander.Secret, &again, "keys", "create", "--account", acme.ID, "--user", alice.ID)
}
