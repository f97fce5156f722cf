package lifecycle_test

import (
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/credits/redisledger"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/lifecycle"
)

var _ lifecycle.Refiller = (*redisledger.Ledger)(nil)

// TestRefillWithRedisLedger: with the credits counted in Redis, the refill
// job refills the counter and writes it back; it neither gives back credits
// spent in Redis and not yet written back, nor refills twice, and a later
// write-back of older spends cannot undo it.
func TestRefillWithRedisLedger(t *testing.T) {
	s := keywardtest.NewSQLiteStore(t)
	l, err := redisledger.New(keywardtest.NewRedisClient(t, ""), s, redisledger.Options{Prefix: "keyward:test:" + apikey.NewID("p") + ":", FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	c := &clock{t: t0}
	in := newInstance(t, s, c, lifecycle.Config{Credits: l})
	acct := keywardtest.NewAccount(t, s, "acme")
	k := &keywardtest.NewKey(t, s, keywardtest.NewHasher(t), keyward.Key{Role: keyward.RoleAccountAdmin, AccountID: acct.ID,
		Credits: &keyward.Credits{Remaining: 10, RefilledAt: t0, Refill: &keyward.CreditRefill{Amount: 10, Interval: keyward.Duration(time.Hour)}}}).Key
	ctx := t.Context()
	spend := func(cost int64, at time.Time) {
		t.Helper()
		if _, ok, err := l.Spend(ctx, k, cost, at); err != nil || !ok {
			t.Fatalf("Spend(%d) = %v, %v", cost, ok, err)
		}
	}
	stored := func() keyward.Credits {
		t.Helper()
		got, err := s.Key(ctx, k.ID)
		if err != nil {
			t.Fatal(err)
		}
		return *got.Credits
	}

	spend(8, t0.Add(10*time.Minute)) // in Redis only: 2 left
	c.Add(90 * time.Minute)
	res, err := in.runner.RunJob(ctx, lifecycle.JobRefill)
	if err != nil || res.Changes["credits_refilled"] != 1 {
		t.Fatalf("refill job = %+v, %v; want one refill", res, err)
	}
	if got := stored(); got.Remaining != 10 || !got.RefilledAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("stored after the refill: %d refilled at %v, want 10 at 1h", got.Remaining, got.RefilledAt)
	}
	// Not due again within the hour; a spend after the refill counts from it.
	res, err = in.runner.RunJob(ctx, lifecycle.JobRefill)
	if err != nil || len(res.Changes) != 0 {
		t.Fatalf("second refill job in the same period = %+v, %v; want nothing", res, err)
	}
	spend(4, c.Now())
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := stored(); got.Remaining != 6 {
		t.Fatalf("stored after a spend of 4 and the write-back: %d, want 6 (refilled once, nothing spent given back)", got.Remaining)
	}
	live, err := l.Credits(ctx, k.ID, c.Now())
	if err != nil || live.Remaining != 6 {
		t.Fatalf("live credits = %+v, %v; want 6", live, err)
	}
}

// TestMonthlyRefillJob: the refill job refills a monthly refill on its
// day (April's 30th for day 31), once, through the Redis ledger.
func TestMonthlyRefillJob(t *testing.T) {
	s := keywardtest.NewSQLiteStore(t)
	l, err := redisledger.New(keywardtest.NewRedisClient(t, ""), s, redisledger.Options{Prefix: "keyward:test:" + apikey.NewID("p") + ":", FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	t0 := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	c := &clock{t: t0}
	in := newInstance(t, s, c, lifecycle.Config{Credits: l})
	acct := keywardtest.NewAccount(t, s, "acme")
	k := &keywardtest.NewKey(t, s, keywardtest.NewHasher(t), keyward.Key{Role: keyward.RoleAccountAdmin, AccountID: acct.ID,
		Credits: &keyward.Credits{Remaining: 10, RefilledAt: t0, Refill: &keyward.CreditRefill{Amount: 10, Day: 31}}}).Key
	ctx := t.Context()
	if _, ok, err := l.Spend(ctx, k, 7, t0.Add(time.Hour)); err != nil || !ok {
		t.Fatalf("Spend = %v, %v", ok, err)
	}
	run := func(at time.Time, want int) {
		t.Helper()
		c.mu.Lock()
		c.t = at
		c.mu.Unlock()
		res, err := in.runner.RunJob(ctx, lifecycle.JobRefill)
		if err != nil || res.Changes["credits_refilled"] != want {
			t.Fatalf("refill job at %v = %+v, %v; want %d refills", at, res, err, want)
		}
	}
	run(time.Date(2026, 4, 29, 23, 59, 59, 0, time.UTC), 0)
	day := time.Date(2026, 4, 30, 0, 0, 0, 0, time.UTC)
	run(day, 1)
	got, err := s.Key(ctx, k.ID)
	if err != nil || got.Credits.Remaining != 10 || !got.Credits.RefilledAt.Equal(day) {
		t.Fatalf("stored after the refill: %+v, %v; want 10 refilled on April 30th", got.Credits, err)
	}
	run(day.Add(time.Hour), 0)
}
