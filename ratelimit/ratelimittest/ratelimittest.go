// Package ratelimittest is the contract of ratelimit.Limiter, run against
// every engine (ratelimit.Local, redislimit.Limiter) by their tests.
package ratelimittest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/ratelimit"
)

// Epoch is the injected "now" the contract starts from.
var Epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// perSecond is 10 per second: one unit every 100ms, exact in every unit.
var perSecond = keyward.RateLimit{Name: "per-second", Limit: 10, Window: keyward.Duration(time.Second)}

// Run runs the contract. newLimiter returns a limiter whose buckets no other
// test sees (a fresh Local, or a Redis prefix of the test's own).
func Run(t *testing.T, newLimiter func(t *testing.T) ratelimit.Limiter) {
	t.Run("BurstThenDeny", func(t *testing.T) {
		c := checker{t, newLimiter(t)}
		for i := range perSecond.Limit {
			c.want(c.allow("k", perSecond, 1, Epoch), ratelimit.Decision{
				Limit: perSecond, Allowed: true, Remaining: 9 - i,
				ResetAfter: time.Duration(i+1) * 100 * time.Millisecond,
			})
		}
		c.want(c.allow("k", perSecond, 1, Epoch), ratelimit.Decision{
			Limit: perSecond, Remaining: 0, ResetAfter: time.Second, RetryAfter: 100 * time.Millisecond,
		})
	})

	t.Run("RefillsOnTime", func(t *testing.T) {
		c := checker{t, newLimiter(t)}
		c.admit("k", perSecond, 1, Epoch, 10)
		// 99ms: not yet a unit back.
		c.want(c.allow("k", perSecond, 1, Epoch.Add(99*time.Millisecond)), ratelimit.Decision{
			Limit: perSecond, ResetAfter: 901 * time.Millisecond, RetryAfter: time.Millisecond,
		})
		// Smooth: one unit per 100ms, not the whole window at once.
		c.admit("k", perSecond, 1, Epoch.Add(100*time.Millisecond), 1)
		c.admit("k", perSecond, 1, Epoch.Add(350*time.Millisecond), 2)
		// A whole window later the full burst is back, and no more.
		c.admit("k", perSecond, 1, Epoch.Add(2*time.Second), 10)
		c.admit("k", perSecond, 1, Epoch.Add(time.Hour), 10)
	})

	t.Run("DeniedConsumesNothing", func(t *testing.T) {
		c := checker{t, newLimiter(t)}
		c.admit("k", perSecond, 1, Epoch, 10)
		for range 100 {
			c.allow("k", perSecond, 1, Epoch.Add(50*time.Millisecond))
		}
		c.admit("k", perSecond, 1, Epoch.Add(100*time.Millisecond), 1)
	})

	t.Run("Cost", func(t *testing.T) {
		c := checker{t, newLimiter(t)}
		for i := range int64(3) {
			c.want(c.allow("k", perSecond, 3, Epoch), ratelimit.Decision{
				Limit: perSecond, Allowed: true, Remaining: 7 - 3*i,
				ResetAfter: time.Duration(3*(i+1)) * 100 * time.Millisecond,
			})
		}
		// One unit left: a cost of 3 waits for two more; nothing spent.
		c.want(c.allow("k", perSecond, 3, Epoch), ratelimit.Decision{
			Limit: perSecond, Remaining: 1, ResetAfter: 900 * time.Millisecond, RetryAfter: 200 * time.Millisecond,
		})
		c.admit("k", perSecond, 1, Epoch, 1)
		c.admit("k", perSecond, 10, Epoch.Add(time.Second), 1)
	})

	t.Run("Invalid", func(t *testing.T) {
		c := checker{t, newLimiter(t)}
		for _, tc := range []struct {
			name  string
			limit keyward.RateLimit
			cost  int64
		}{
			{"cost 0", perSecond, 0},
			{"cost above the limit", perSecond, 11},
			{"limit 0", keyward.RateLimit{Name: "x", Limit: 0, Window: keyward.Duration(time.Second)}, 1},
			{"window 0", keyward.RateLimit{Name: "x", Limit: 1}, 1},
			{"interval under 1µs", keyward.RateLimit{Name: "x", Limit: 2_000_000, Window: keyward.Duration(time.Second)}, 1},
		} {
			_, err := c.l.Allow(t.Context(), "k", tc.limit, tc.cost, Epoch)
			if code := keyward.ErrorCode(err); code != keyward.EINVALID {
				t.Errorf("%s: Allow error %v (code %q), want EINVALID", tc.name, err, code)
			}
			_, ok, err := c.l.AllowAll(t.Context(), "k", []keyward.RateLimit{perSecond, tc.limit}, tc.cost, Epoch, nil)
			if code := keyward.ErrorCode(err); code != keyward.EINVALID || ok {
				t.Errorf("%s: AllowAll = %v, %v (code %q), want EINVALID", tc.name, ok, err, code)
			}
		}
		// Nothing was spent by the invalid calls.
		c.admit("k", perSecond, 1, Epoch, 10)
	})

	t.Run("IndependentBuckets", func(t *testing.T) {
		c := checker{t, newLimiter(t)}
		c.admit("a", perSecond, 1, Epoch, 10)
		c.admit("b", perSecond, 1, Epoch, 10)
		other := perSecond
		other.Name = "other"
		c.admit("a", other, 1, Epoch, 10)
		// Same name, new numbers: the same bucket, read with the new limit.
		bigger := perSecond
		bigger.Limit = 20
		bigger.Window = keyward.Duration(2 * time.Second)
		c.want(c.allow("a", bigger, 1, Epoch), ratelimit.Decision{
			Limit: bigger, Allowed: true, Remaining: 9, ResetAfter: 1100 * time.Millisecond,
		})
	})

	t.Run("LongWindow", func(t *testing.T) {
		c := checker{t, newLimiter(t)}
		day := keyward.RateLimit{Name: "day", Limit: 1000, Window: keyward.Duration(24 * time.Hour)}
		c.admit("k", day, 10, Epoch, 100)
		c.want(c.allow("k", day, 1, Epoch), ratelimit.Decision{
			Limit: day, ResetAfter: 24 * time.Hour, RetryAfter: 86400 * time.Second / 1000,
		})
	})

	t.Run("ClockGoesBack", func(t *testing.T) {
		c := checker{t, newLimiter(t)}
		c.admit("k", perSecond, 1, Epoch.Add(time.Hour), 10)
		d := c.allow("k", perSecond, 1, Epoch)
		if d.Allowed || d.Remaining != 0 || d.ResetAfter != time.Second || d.RetryAfter != 100*time.Millisecond {
			t.Errorf("an hour earlier: %+v, want denied with Remaining 0, ResetAfter 1s", d)
		}
	})

	t.Run("AllowAllIsAllOrNothing", func(t *testing.T) {
		c := checker{t, newLimiter(t)}
		two := keyward.RateLimit{Name: "two", Limit: 2, Window: keyward.Duration(time.Second)}
		limits := []keyward.RateLimit{perSecond, two}
		for i := range int64(2) {
			ds, ok, err := c.l.AllowAll(t.Context(), "k", limits, 1, Epoch, nil)
			if err != nil || !ok || len(ds) != 2 {
				t.Fatalf("call %d: AllowAll = %v, %v, %v", i, ds, ok, err)
			}
			c.want(ds[0], ratelimit.Decision{Limit: perSecond, Allowed: true, Remaining: 9 - i, ResetAfter: time.Duration(i+1) * 100 * time.Millisecond})
			c.want(ds[1], ratelimit.Decision{Limit: two, Allowed: true, Remaining: 1 - i, ResetAfter: time.Duration(i+1) * 500 * time.Millisecond})
		}
		prefix := []ratelimit.Decision{{}}
		ds, ok, err := c.l.AllowAll(t.Context(), "k", limits, 1, Epoch, prefix)
		if err != nil || ok || len(ds) != 3 {
			t.Fatalf("third call: AllowAll = %v, %v, %v; want denied, appended after the one given", ds, ok, err)
		}
		// per-second admits but two denies: nothing spent from either.
		c.want(ds[1], ratelimit.Decision{Limit: perSecond, Allowed: true, Remaining: 8, ResetAfter: 200 * time.Millisecond})
		c.want(ds[2], ratelimit.Decision{Limit: two, Remaining: 0, ResetAfter: time.Second, RetryAfter: 500 * time.Millisecond})
		if d, denied := ratelimit.Denied(ds[1:]); !denied || d.Limit != two {
			t.Errorf("Denied = %+v, %v; want the limit two", d, denied)
		}
		c.admit("k", perSecond, 1, Epoch, 8)
		if ds, ok, err := c.l.AllowAll(t.Context(), "k", nil, 1, Epoch, nil); err != nil || !ok || len(ds) != 0 {
			t.Errorf("no limits: AllowAll = %v, %v, %v; want allowed", ds, ok, err)
		}
	})

	t.Run("AllowLevelsIsAllOrNothingAcrossLevels", func(t *testing.T) {
		c := checker{t, newLimiter(t)}
		two := keyward.RateLimit{Name: "shared", Limit: 2, Window: keyward.Duration(time.Second)}
		// Keys of one user: each its own per-second, the user two per
		// second across them, the account ten.
		levels := func(key string) []ratelimit.Level {
			return []ratelimit.Level{
				{Level: keyward.LevelKey, Key: key, Limits: []keyward.RateLimit{perSecond}},
				{Level: keyward.LevelUser, Key: "usr_1", Limits: []keyward.RateLimit{two}},
				{Level: keyward.LevelAccount, Key: "acc_1", Limits: []keyward.RateLimit{perSecond}},
			}
		}
		for i, key := range []string{"k1", "k2"} {
			ds, refused, err := c.l.AllowLevels(t.Context(), "acc_1", levels(key), 1, Epoch, nil)
			if err != nil || refused != -1 || len(ds) != 3 {
				t.Fatalf("call %d: AllowLevels = %v, %d, %v; want admitted", i, ds, refused, err)
			}
			c.want(ds[0], ratelimit.Decision{Limit: perSecond, Level: keyward.LevelKey, Allowed: true, Remaining: 9, ResetAfter: 100 * time.Millisecond})
			c.want(ds[1], ratelimit.Decision{Limit: two, Level: keyward.LevelUser, Allowed: true, Remaining: int64(1 - i), ResetAfter: time.Duration(i+1) * 500 * time.Millisecond})
		}
		prefix := []ratelimit.Decision{{}}
		ds, refused, err := c.l.AllowLevels(t.Context(), "acc_1", levels("k3"), 1, Epoch, prefix)
		if err != nil || refused != 1 || len(ds) != 4 {
			t.Fatalf("third call: AllowLevels = %v, %d, %v; want refused by level 1 (the user), appended after the one given", ds, refused, err)
		}
		// The key and the account admit but the user refuses: nothing is
		// consumed from any level.
		c.want(ds[1], ratelimit.Decision{Limit: perSecond, Level: keyward.LevelKey, Allowed: true, Remaining: 10})
		c.want(ds[2], ratelimit.Decision{Limit: two, Level: keyward.LevelUser, Remaining: 0, ResetAfter: time.Second, RetryAfter: 500 * time.Millisecond})
		c.want(ds[3], ratelimit.Decision{Limit: perSecond, Level: keyward.LevelAccount, Allowed: true, Remaining: 8, ResetAfter: 200 * time.Millisecond})
		for range 20 {
			if _, refused, _ := c.l.AllowLevels(t.Context(), "acc_1", levels("k1"), 1, Epoch, nil); refused != 1 {
				t.Fatalf("refused by level %d, want the user's", refused)
			}
		}
		// Another user's key of the account still has the account's eight.
		other := func() []ratelimit.Level {
			return []ratelimit.Level{{Level: keyward.LevelKey, Key: "k4", Limits: []keyward.RateLimit{perSecond}},
				{Level: keyward.LevelAccount, Key: "acc_1", Limits: []keyward.RateLimit{perSecond}}}
		}
		for i := range 8 {
			if _, refused, err := c.l.AllowLevels(t.Context(), "acc_1", other(), 1, Epoch, nil); err != nil || refused != -1 {
				t.Fatalf("other user's call %d: refused %d, %v; want admitted", i, refused, err)
			}
		}
		ds, refused, err = c.l.AllowLevels(t.Context(), "acc_1", other(), 1, Epoch, nil)
		if err != nil || refused != 1 || !ds[0].Allowed || ds[0].Remaining != 2 {
			t.Fatalf("ninth call: %v, refused %d, %v; want refused by the account, the key's own bucket untouched (2 left)", ds, refused, err)
		}
		// Levels without limits admit; invalid limits consume nothing.
		if ds, refused, err := c.l.AllowLevels(t.Context(), "acc_1", nil, 1, Epoch, nil); err != nil || refused != -1 || len(ds) != 0 {
			t.Errorf("no levels: %v, %d, %v; want admitted", ds, refused, err)
		}
		_, _, err = c.l.AllowLevels(t.Context(), "acc_2", []ratelimit.Level{
			{Level: keyward.LevelKey, Key: "k5", Limits: []keyward.RateLimit{perSecond}},
			{Level: keyward.LevelUser, Key: "usr_2", Limits: []keyward.RateLimit{perSecond}}}, 11, Epoch, nil)
		if code := keyward.ErrorCode(err); code != keyward.EINVALID {
			t.Errorf("cost above a limit: %v, want EINVALID", err)
		}
		// A whole window later the user's two are back.
		for i, key := range []string{"k1", "k3"} {
			if _, refused, err := c.l.AllowLevels(t.Context(), "acc_1", levels(key), 1, Epoch.Add(time.Second), nil); err != nil || refused != -1 {
				t.Fatalf("a second later, call %d: refused %d, %v", i, refused, err)
			}
		}
	})

	t.Run("ConcurrentSharedLevelNeverOverAdmits", func(t *testing.T) {
		l := newLimiter(t)
		hundred := keyward.RateLimit{Name: "hundred", Limit: 100, Window: keyward.Duration(time.Minute)}
		var admitted atomic.Int64
		var wg sync.WaitGroup
		for g := range 32 {
			key := []string{"k1", "k2", "k3"}[g%3]
			wg.Go(func() {
				for range 20 {
					_, refused, err := l.AllowLevels(t.Context(), "acc_1", []ratelimit.Level{
						{Level: keyward.LevelKey, Key: key, Limits: []keyward.RateLimit{hundred}},
						{Level: keyward.LevelUser, Key: "usr_1", Limits: []keyward.RateLimit{hundred}},
					}, 1, Epoch, nil)
					if err != nil {
						t.Error(err)
						return
					}
					if refused == -1 {
						admitted.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if n := admitted.Load(); n != 100 {
			t.Errorf("640 concurrent calls over 3 keys of a user limited to 100 admitted %d", n)
		}
	})

	t.Run("ConcurrentNeverOverAdmits", func(t *testing.T) {
		l := newLimiter(t)
		hundred := keyward.RateLimit{Name: "hundred", Limit: 100, Window: keyward.Duration(time.Minute)}
		var admitted, admittedAll atomic.Int64
		var wg sync.WaitGroup
		for range 32 {
			wg.Go(func() {
				for range 20 {
					d, err := l.Allow(t.Context(), "k", hundred, 1, Epoch)
					if err != nil {
						t.Error(err)
						return
					}
					if d.Allowed {
						admitted.Add(1)
					}
					if d.Remaining < 0 {
						t.Errorf("Remaining %d", d.Remaining)
					}
					_, ok, err := l.AllowAll(t.Context(), "k2", []keyward.RateLimit{hundred, perSecond}, 1, Epoch, nil)
					if err != nil {
						t.Error(err)
						return
					}
					if ok {
						admittedAll.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if n := admitted.Load(); n != 100 {
			t.Errorf("640 concurrent calls on a limit of 100 admitted %d", n)
		}
		if n := admittedAll.Load(); n != 10 {
			t.Errorf("640 concurrent calls on limits of 100 and 10 admitted %d, want 10", n)
		}
		c := checker{t, l}
		c.admit("k2", hundred, 1, Epoch, 90)
	})
}

type checker struct {
	t *testing.T
	l ratelimit.Limiter
}

func (c checker) allow(key string, limit keyward.RateLimit, cost int64, now time.Time) ratelimit.Decision {
	c.t.Helper()
	d, err := c.l.Allow(c.t.Context(), key, limit, cost, now)
	if err != nil {
		c.t.Fatalf("Allow(%q, %v, %d): %v", key, limit, cost, err)
	}
	if d.Remaining < 0 || d.Remaining > limit.Limit {
		c.t.Errorf("Allow(%q, %v, %d): Remaining %d out of [0, %d]", key, limit, cost, d.Remaining, limit.Limit)
	}
	return d
}

// admit checks that exactly n calls of cost are admitted at now.
func (c checker) admit(key string, limit keyward.RateLimit, cost int64, now time.Time, n int) {
	c.t.Helper()
	for i := range n {
		if d := c.allow(key, limit, cost, now); !d.Allowed {
			c.t.Fatalf("%s: call %d of %d was denied: %+v", now.Sub(Epoch), i+1, n, d)
		}
	}
	if d := c.allow(key, limit, cost, now); d.Allowed {
		c.t.Fatalf("%s: call %d was admitted, want only %d: %+v", now.Sub(Epoch), n+1, n, d)
	}
}

func (c checker) want(got, want ratelimit.Decision) {
	c.t.Helper()
	if got != want {
		c.t.Errorf("decision\n got %+v\nwant %+v", got, want)
	}
}
