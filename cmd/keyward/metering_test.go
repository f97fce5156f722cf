package main

import (
	"encoding/json"
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

	// A monthly refill: on the 31st, the month's last day when shorter.
	var monthly keyward.CreatedKey
	s.okJSON(t, root, &monthly, "keys", "create", "--account", acme.ID, "--role", "account_admin", "--credits", "7", "--refill", "7/monthly:31")
	if r := monthly.Credits.Refill; r == nil || r.Amount != 7 || r.Day != 31 || r.Interval != 0 {
		t.Fatalf("created key refill %+v", r)
	}
	if out := s.ok(t, root, "keys", "get", monthly.ID); !strings.Contains(out, "7 (refill to 7 monthly on day 31)") {
		t.Errorf("keys get does not show the monthly refill:\n%s", out)
	}

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
		{"keys", "create", "--role", "root", "--credits", "5", "--refill", "5/monthly:first"},
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

// TestLimitsCLI sets, reads and removes a user's and an account's shared
// limits through the CLI, and keyward verify names the level that refused.
func TestLimitsCLI(t *testing.T) {
	s := startServer(t, nil)
	root := s.rootKey
	var acme keyward.Account
	s.okJSON(t, root, &acme, "accounts", "create", "--name", "acme")
	var ann keyward.User
	s.okJSON(t, root, &ann, "users", "create", "--account", acme.ID, "--name", "ann")
	keys := make([]keyward.CreatedKey, 3)
	for i := range keys {
		s.okJSON(t, root, &keys[i], "keys", "create", "--account", acme.ID, "--user", ann.ID)
	}
	var m keyward.Meter
	s.okJSON(t, root, &m, "limits", "set", "--account", acme.ID, "--user", ann.ID, "--rate-limit", "per-minute=2/1m", "--credits", "50", "--refill", "50/1d")
	if m.Level != keyward.LevelUser || m.ID != ann.ID || len(m.RateLimits) != 1 || m.Credits == nil || m.Credits.Remaining != 50 {
		t.Fatalf("limits set = %+v", m)
	}
	if out := s.ok(t, root, "limits", "get", "--account", acme.ID, "--user", ann.ID); !strings.Contains(out, "per-minute=2/1m0s") || !strings.Contains(out, "50 every 24h0m0s") {
		t.Errorf("limits get does not show the limits and credits:\n%s", out)
	}
	for _, k := range keys[:2] {
		s.ok(t, root, "verify", k.Secret)
	}
	r := s.cli(t, root, "verify", keys[2].Secret, "-o", "json")
	var res keyward.VerifyResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != ExitKeyInvalid {
		t.Fatalf("verify of the third key: exit %d, %v\n%s", r.code, err, r.stdout)
	}
	if res.Code != keyward.DecisionRateLimited || res.LimitLevel != keyward.LevelUser {
		t.Fatalf("the third key's request: %s at level %q, want RATE_LIMITED at user", res.Code, res.LimitLevel)
	}
	if r := s.cli(t, root, "verify", keys[2].Secret); !strings.Contains(r.stdout, "user limits") {
		t.Errorf("keyward verify does not name the level:\n%s", r.stdout)
	}
	s.fails(t, ExitForbidden, keys[0].Secret, "limits", "set", "--account", acme.ID, "--user", ann.ID, "--credits", "1000")
	s.ok(t, root, "limits", "remove", "--account", acme.ID, "--user", ann.ID)
	s.fails(t, ExitNotFound, root, "limits", "get", "--account", acme.ID, "--user", ann.ID)

	s.okJSON(t, root, &m, "limits", "set", "--account", acme.ID, "--credits", "7")
	if m.Level != keyward.LevelAccount || m.ID != acme.ID {
		t.Fatalf("account limits set = %+v", m)
	}
	for _, args := range [][]string{
		{"limits", "set", "--user", ann.ID, "--credits", "5"},
		{"limits", "set", "--account", acme.ID},
		{"limits", "set", "--account", acme.ID, "--rate-limit", "m=0/1m"},
		{"limits", "set", "--account", acme.ID, "--refill", "10/1d"},
		{"limits", "get"},
		{"limits", "remove", "extra"},
	} {
		s.fails(t, ExitUsage, root, args...)
	}
}
