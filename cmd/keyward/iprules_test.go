package main

import (
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

// TestIPRulesCLI drives ip-rules and --ip-allow against an in-process
// server; the CLI connects from 127.0.0.1.
func TestIPRulesCLI(t *testing.T) {
	s := startServer(t, nil)
	root := s.rootKey
	var acme keyward.Account
	s.okJSON(t, root, &acme, "accounts", "create", "--name", "acme")
	var admin keyward.CreatedKey
	s.okJSON(t, root, &admin, "keys", "create", "--account", acme.ID, "--role", "account_admin")

	var r keyward.IPRule
	s.okJSON(t, root, &r, "ip-rules", "create", "--action", "block", "--cidr", "127.0.0.1",
		"--account", acme.ID, "--reason", "test", "--expires", "1d")
	if r.CIDR.String() != "127.0.0.1/32" || r.AccountID != acme.ID || r.ExpiresAt == nil || r.Reason != "test" {
		t.Fatalf("created rule = %+v", r)
	}
	s.fails(t, ExitForbidden, admin.Secret, "whoami")
	out := s.ok(t, root, "ip-rules", "list")
	if !strings.Contains(out, r.ID) || !strings.Contains(out, "CIDR") || !strings.Contains(out, "127.0.0.1/32") {
		t.Errorf("ip-rules list:\n%s", out)
	}
	var l keyward.IPRuleList
	s.okJSON(t, root, &l, "ip-rules", "list", "--global")
	if len(l.Items) != 0 {
		t.Errorf("global rules = %+v, want none", l.Items)
	}
	s.ok(t, root, "ip-rules", "delete", r.ID)
	s.ok(t, admin.Secret, "whoami")

	msg := s.fails(t, ExitUsage, root, "ip-rules", "create", "--action", "block", "--cidr", "10.0.0.0/33")
	if !strings.Contains(msg, `"10.0.0.0/33"`) {
		t.Errorf("bad CIDR message %q does not name it", msg)
	}
	s.fails(t, ExitUsage, root, "ip-rules", "create", "--action", "deny", "--cidr", "10.0.0.0/8")
	s.fails(t, ExitUsage, root, "ip-rules", "create", "--action", "block")

	// Keys' allow lists.
	var k keyward.CreatedKey
	s.okJSON(t, root, &k, "keys", "create", "--account", acme.ID, "--role", "account_admin",
		"--ip-allow", "10.0.0.0/8", "--ip-allow", "2001:db8::/32")
	if len(k.IPAllow) != 2 {
		t.Fatalf("created key ip_allow = %v", k.IPAllow)
	}
	s.fails(t, ExitForbidden, k.Secret, "whoami")
	var up keyward.Key
	s.okJSON(t, root, &up, "keys", "update", k.ID, "--ip-allow", "127.0.0.0/8")
	if len(up.IPAllow) != 1 || up.IPAllow[0].String() != "127.0.0.0/8" {
		t.Fatalf("updated ip_allow = %v", up.IPAllow)
	}
	s.ok(t, k.Secret, "whoami")
	if out := s.ok(t, root, "keys", "get", k.ID); !strings.Contains(out, "127.0.0.0/8") {
		t.Errorf("keys get does not show the allow list:\n%s", out)
	}
	var cleared keyward.Key
	s.okJSON(t, root, &cleared, "keys", "update", k.ID, "--clear-ip-allow")
	if cleared.ID != k.ID || len(cleared.IPAllow) != 0 {
		t.Fatalf("cleared key = %+v", cleared)
	}
	s.fails(t, ExitUsage, root, "keys", "update", k.ID, "--ip-allow", "x", "--clear-ip-allow")
}
