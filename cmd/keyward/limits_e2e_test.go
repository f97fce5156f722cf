package main

// End-to-end test of shared limits with the real binary: two instances
// sharing PostgreSQL and Redis (limits, credits and the invalidation bus).

import (
	"net/http"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/client"
)

// TestClusterSharedLimits: a user's limit of 10 per hour holds across its
// three keys and two instances, refusals name the user's level; then the
// account's 6 credits, set on the other instance while the keys are cached
// on both, hold likewise and are refused at the account's level.
func TestClusterSharedLimits(t *testing.T) {
	c := newCluster(t, true)
	env := c.env()
	a := c.start(t, env)
	root := rootKey(t, a)
	b := c.start(t, env)
	ca, cb := client.New(a.url, keyward.Secret(root)), client.New(b.url, keyward.Secret(root))
	acc, err := ca.CreateAccount(t.Context(), keyward.AccountCreate{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	u, err := ca.CreateUser(t.Context(), acc.ID, keyward.UserCreate{Name: "ann"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.SetMeter(t.Context(), acc.ID, u.ID, keyward.MeterSet{RateLimits: []keyward.RateLimit{{Name: "hourly", Limit: 10, Window: keyward.Duration(time.Hour)}}}); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for range 3 {
		k, err := ca.CreateKey(t.Context(), keyward.KeyCreate{AccountID: acc.ID, UserID: u.ID, Role: keyward.RoleUser})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.Secret)
	}
	bases := []string{a.url, b.url}
	count := func(n int) (admitted int, refused map[keyward.LimitLevel]int) {
		t.Helper()
		refused = map[keyward.LimitLevel]int{}
		for i := range n {
			status, res, code := verifyAt(t, bases[i%2], root, keys[i%3])
			switch {
			case status != http.StatusOK:
				t.Fatalf("verify %d: HTTP %d %s", i, status, code)
			case res.Valid:
				admitted++
			default:
				refused[res.LimitLevel]++
			}
		}
		return admitted, refused
	}
	// 10 per hour refills one call every 6 minutes: nothing refills during
	// the test unless it runs for minutes.
	if admitted, refused := count(30); admitted != 10 || refused[keyward.LevelUser] != 20 {
		t.Errorf("a user limit of 10 across 3 keys and 2 instances: %d admitted, refused %v; want 10, and 20 by the user", admitted, refused)
	}

	if err := cb.DeleteMeter(t.Context(), acc.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := cb.SetMeter(t.Context(), acc.ID, "", keyward.MeterSet{Credits: &keyward.Credits{Remaining: 6}}); err != nil {
		t.Fatal(err)
	}
	// A hears of the change through the bus.
	eventually(t, propagation, "the account's credits applied on A", func() string {
		_, res, _ := verifyAt(t, a.url, root, keys[0])
		if res.CreditsRemaining == nil {
			return "no credits_remaining: " + string(res.Code)
		}
		return ""
	})
	if admitted, refused := count(20); admitted != 5 || refused[keyward.LevelAccount] != 15 {
		t.Errorf("the account's 6 credits (one spent while waiting): %d admitted, refused %v; want 5, and 15 by the account", admitted, refused)
	}
	m, err := ca.Meter(t.Context(), acc.ID, "")
	if err != nil || m.Credits == nil || m.Credits.Remaining != 0 {
		t.Errorf("the account's credits read on A: %+v, %v; want 0 left", m, err)
	}
}
