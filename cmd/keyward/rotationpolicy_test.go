package main

import (
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

// TestRotationPolicyCLI sets, reads and removes rotation policies of an
// account and a key against an in-process server.
func TestRotationPolicyCLI(t *testing.T) {
	s := startServer(t, nil)
	root := s.rootKey
	var acme keyward.Account
	s.okJSON(t, root, &acme, "accounts", "create", "--name", "acme")
	var admin keyward.CreatedKey
	s.okJSON(t, root, &admin, "keys", "create", "--account", acme.ID, "--role", "account_admin")

	var p keyward.RotationPolicy
	s.okJSON(t, root, &p, "rotation-policy", "set", "--account", acme.ID, "--max-age", "90d", "--expire-after", "14d")
	if p.AccountID != acme.ID || time.Duration(p.MaxAge) != 90*24*time.Hour || time.Duration(p.ExpireAfter) != 14*24*time.Hour {
		t.Fatalf("set policy = %+v", p)
	}
	out := s.ok(t, admin.Secret, "rotation-policy", "get", "--account", acme.ID)
	if !strings.Contains(out, "90d") || !strings.Contains(out, "14d after the announcement") || !strings.Contains(out, "account "+acme.ID) {
		t.Errorf("rotation-policy get:\n%s", out)
	}

	// A key's own policy, set by the account's admin.
	p = keyward.RotationPolicy{}
	s.okJSON(t, admin.Secret, &p, "rotation-policy", "set", "--key", admin.ID, "--max-age", "1d12h")
	if p.KeyID != admin.ID || time.Duration(p.MaxAge) != 36*time.Hour || p.ExpireAfter != 0 {
		t.Fatalf("set key policy = %+v", p)
	}
	if out := s.ok(t, root, "rotation-policy", "get", "--key", admin.ID); !strings.Contains(out, "36h0m0s") || !strings.Contains(out, "never") {
		t.Errorf("rotation-policy get --key:\n%s", out)
	}
	if out := s.ok(t, admin.Secret, "rotation-policy", "remove", "--key", admin.ID); !strings.Contains(out, "key "+admin.ID) {
		t.Errorf("rotation-policy remove: %q", out)
	}
	s.fails(t, ExitNotFound, root, "rotation-policy", "get", "--key", admin.ID)
	s.ok(t, root, "rotation-policy", "remove", "--account", acme.ID)
	s.fails(t, ExitNotFound, root, "rotation-policy", "remove", "--account", acme.ID)

	// Bad input is refused before any request.
	s.fails(t, ExitUsage, root, "rotation-policy", "set", "--max-age", "90d")
	s.fails(t, ExitUsage, root, "rotation-policy", "set", "--account", acme.ID, "--key", admin.ID, "--max-age", "90d")
	s.fails(t, ExitUsage, root, "rotation-policy", "set", "--account", acme.ID)
	s.fails(t, ExitUsage, root, "rotation-policy", "set", "--account", acme.ID, "--max-age", "0d")
	s.fails(t, ExitUsage, root, "rotation-policy", "set", "--account", acme.ID, "--max-age", "-5h")
	s.fails(t, ExitUsage, root, "rotation-policy", "set", "--account", acme.ID, "--max-age", "30m")
	s.fails(t, ExitUsage, root, "rotation-policy", "set", "--account", acme.ID, "--max-age", "90d", "--expire-after", "400d")
	s.fails(t, ExitUsage, root, "rotation-policy", "get")
}
