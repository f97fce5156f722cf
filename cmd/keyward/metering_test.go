package main

import (
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

// TestMeteringCLI drives rate limits, credits and anomalies through the
// CLI against an in-process server.
func TestMeteringCLI(t *testing.T) {
	s := startServer(t, nil)
	root := s.rootKey
	var acme keyward.Account
	s.okJSON(t, root, &acme, "accounts", "create", "--name", "acme", "--rate-limit", "per-minute=100/1m")
	if len(acme.RateLimits) != 1 || acme.RateLimits[0].Limit != 100 || time.Duration(acme.RateLimits[0].Window) != time.Minute {
		t.Fatalf("account limits = %+v", acme.RateLimits)
	}
	var k keyward.CreatedKey
	s.okJSON(t, root, &k, "keys", "create", "--account", acme.ID, "--role", "account_admin",
		"--rate-limit", "per-day=1000/1d", "--credits", "10", "--refill", "10/1d")
	if len(k.RateLimits) != 1 || k.RateLimits[0].Name != "per-day" || time.Duration(k.RateLimits[0].Window) != 24*time.Hour ||
		k.Credits == nil || k.Credits.Remaining != 10 || k.Credits.Refill == nil || k.Credits.Refill.Amount != 10 {
		t.Fatalf("created key limits %+v credits %+v", k.RateLimits, k.Credits)
	}
	if out := s.ok(t, root, "keys", "get", k.ID); !strings.Contains(out, "per-day=1000/24h0m0s") || !strings.Contains(out, "10 (refill to 10 every 24h0m0s)") {
		t.Errorf("keys get does not show the limits and credits:\n%s", out)
	}

	var c keyward.Credits
	s.okJSON(t, root, &c, "credits", "top-up", k.ID, "5")
	if c.Remaining != 15 {
		t.Errorf("after top-up 5: %d, want 15", c.Remaining)
	}
	c = keyward.Credits{} // decoding keeps fields the answer leaves out
	s.okJSON(t, root, &c, "credits", "set", k.ID, "3")
	if c.Remaining != 3 || c.Refill != nil {
		t.Errorf("after set 3: %+v", c)
	}
	s.okJSON(t, k.Secret, &c, "credits", "get", k.ID)
	if c.Remaining != 3 {
		t.Errorf("credits get by the key itself: %d, want 3", c.Remaining)
	}
	s.fails(t, ExitForbidden, k.Secret, "credits", "top-up", k.ID, "5")
	s.ok(t, root, "credits", "remove", k.ID)
	s.fails(t, ExitNotFound, root, "credits", "get", k.ID)

	var updated keyward.Key
	s.okJSON(t, root, &updated, "keys", "update", k.ID, "--clear-rate-limits")
	if len(updated.RateLimits) != 0 {
		t.Errorf("after --clear-rate-limits: %+v", updated.RateLimits)
	}

	for _, args := range [][]string{
		{"keys", "create", "--role", "root", "--rate-limit", "per-minute"},
		{"keys", "create", "--role", "root", "--rate-limit", "m=0/1m"},
		{"keys", "create", "--role", "root", "--rate-limit", "m=5/1m", "--rate-limit", "m=6/1m"},
		{"keys", "create", "--role", "root", "--refill", "10/1d"},
		{"keys", "create", "--role", "root", "--credits", "5", "--refill", "ten/day"},
		{"keys", "update", k.ID, "--rate-limit", "m=5/1m", "--clear-rate-limits"},
		{"credits", "set", k.ID, "many"},
		{"credits", "top-up", k.ID, "0"},
		{"anomalies", "list", "--type", "weird"},
		{"anomalies", "list", "--since", "a while"},
	} {
		s.fails(t, ExitUsage, root, args...)
	}

	var l keyward.AnomalyList
	s.okJSON(t, root, &l, "anomalies", "list", "--since", "1h", "--type", "brute_force")
	if len(l.Items) != 0 {
		t.Errorf("anomalies on a quiet server: %+v", l.Items)
	}
}
