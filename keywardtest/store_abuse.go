package keywardtest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// accountLimits are default rate limits of an account.
var accountLimits = []keyward.RateLimit{{Name: "default", Limit: 600, Window: keyward.Duration(time.Minute)}}

// creditKey returns a root key with credits: remaining, a refill of amount
// every interval when amount > 0, the period starting at fixedTime.
func creditKey(remaining, amount int64, interval time.Duration) *keyward.Key {
	k := minimalKey()
	k.Credits = &keyward.Credits{Remaining: remaining, RefilledAt: fixedTime, Version: 1}
	if amount > 0 {
		k.Credits.Refill = &keyward.CreditRefill{Amount: amount, Interval: keyward.Duration(interval)}
	}
	return k
}

func testRateLimits(t *testing.T, open func(*testing.T) keyward.Store) {
	t.Run("manual limits are kept on keys, accounts and meters", func(t *testing.T) {
		f := newFixture(t, open)
		limits := []keyward.RateLimit{{Name: "requests", Limit: 10, Window: keyward.Duration(time.Minute)},
			{Name: "tokens", Limit: 1000, Window: keyward.Duration(time.Hour), Manual: true}}
		a := &keyward.Account{ID: apikey.NewID("acc"), Name: "acme", RateLimits: limits, CreatedAt: fixedTime, UpdatedAt: fixedTime}
		must(t, f.s.CreateAccount(f.ctx, keyward.Change{}, a))
		u := f.user(a.ID, "alice")
		m := newMeter(keyward.LevelUser, u.ID, a.ID, -1)
		m.RateLimits = limits
		must(t, f.s.SetMeter(f.ctx, keyward.Change{}, m))
		k := NewKey(t, f.s, f.h, keyward.Key{Role: keyward.RoleUser, AccountID: a.ID, UserID: u.ID, RateLimits: limits})
		byHash, err := f.s.KeyByHash(f.ctx, k.Hash)
		must(t, err)
		for _, got := range []*keyward.Key{byHash, f.key(k.ID)} {
			if !slices.Equal(got.RateLimits, limits) || !slices.Equal(got.AccountRateLimits, limits) ||
				got.UserMeter == nil || !slices.Equal(got.UserMeter.RateLimits, limits) {
				t.Fatalf("key read back with limits %+v, account's %+v, user's %+v; want %+v", got.RateLimits, got.AccountRateLimits, got.UserMeter, limits)
			}
		}
	})

	t.Run("keys mirror their account's limits on every read", func(t *testing.T) {
		f := newFixture(t, open)
		a := &keyward.Account{ID: apikey.NewID("acc"), Name: "acme", RateLimits: accountLimits,
			CreatedAt: fixedTime, UpdatedAt: fixedTime}
		must(t, f.s.CreateAccount(f.ctx, keyward.Change{}, a))
		u := f.user(a.ID, "alice")
		k := fullKey(a.ID, u.ID)
		must(t, f.s.CreateKey(f.ctx, keyward.Change{}, k))
		if !slices.Equal(k.AccountRateLimits, accountLimits) {
			t.Fatalf("CreateKey filled AccountRateLimits %v, want the account's %v", k.AccountRateLimits, accountLimits)
		}
		batch := batchKeys(a.ID, u.ID, 3)
		must(t, f.s.CreateKeys(f.ctx, keyward.Change{}, batch))
		for _, b := range batch {
			want := slices.Clone(accountLimits)
			if b.Role == keyward.RoleRoot {
				want = nil
			}
			if !slices.Equal(b.AccountRateLimits, want) {
				t.Fatalf("CreateKeys filled AccountRateLimits %v of a %s key, want %v", b.AccountRateLimits, b.Role, want)
			}
		}
		check := func(want []keyward.RateLimit) {
			t.Helper()
			byHash, err := f.s.KeyByHash(f.ctx, k.Hash)
			must(t, err)
			list, _, err := f.s.Keys(f.ctx, keyward.KeyFilter{UserID: u.ID}, keyward.Page{})
			must(t, err)
			for _, got := range append(list, byHash, f.key(k.ID)) {
				if got.ID == k.ID && !slices.Equal(got.RateLimits, k.RateLimits) {
					t.Fatalf("key's own RateLimits = %v, want %v", got.RateLimits, k.RateLimits)
				}
				if !slices.Equal(got.AccountRateLimits, want) {
					t.Fatalf("key %s: AccountRateLimits = %v, want %v", got.ID, got.AccountRateLimits, want)
				}
			}
		}
		check(accountLimits)
		other := []keyward.RateLimit{
			{Name: "burst", Limit: 5, Window: keyward.Duration(time.Second)},
			{Name: "hourly", Limit: 1000, Window: keyward.Duration(time.Hour)},
		}
		_, err := f.s.UpdateAccount(f.ctx, keyward.Change{}, a.ID, func(a *keyward.Account) error { a.RateLimits = other; return nil })
		must(t, err)
		check(other)
		updated, err := f.s.UpdateKey(f.ctx, keyward.Change{}, k.ID, func(k *keyward.Key) error { k.Name = "renamed"; return nil })
		must(t, err)
		if !slices.Equal(updated.AccountRateLimits, other) {
			t.Fatalf("UpdateKey returned AccountRateLimits %v, want %v", updated.AccountRateLimits, other)
		}
		_, err = f.s.UpdateAccount(f.ctx, keyward.Change{}, a.ID, func(a *keyward.Account) error { a.RateLimits = nil; return nil })
		must(t, err)
		check(nil)
		root, err := f.s.KeyByHash(f.ctx, f.rootKey().Hash)
		must(t, err)
		if root.AccountRateLimits != nil {
			t.Fatalf("root key AccountRateLimits = %v, want none", root.AccountRateLimits)
		}
	})
	t.Run("update sets and clears a key's limits", func(t *testing.T) {
		f := newFixture(t, open)
		k := f.rootKey()
		limits := []keyward.RateLimit{{Name: "a.b_c-1", Limit: 10_000, Window: keyward.Duration(time.Second)}}
		got, err := f.s.UpdateKey(f.ctx, keyward.Change{}, k.ID, func(k *keyward.Key) error { k.RateLimits = limits; return nil })
		must(t, err)
		want := k.Clone()
		want.RateLimits = limits
		wantKey(t, got, want)
		wantKey(t, f.key(k.ID), want)
		got, err = f.s.UpdateKey(f.ctx, keyward.Change{}, k.ID, func(k *keyward.Key) error { k.RateLimits = []keyward.RateLimit{}; return nil })
		must(t, err)
		if got.RateLimits != nil || f.key(k.ID).RateLimits != nil {
			t.Fatalf("RateLimits after clearing = %v, want nil", got.RateLimits)
		}
	})
	t.Run("invalid limits are refused", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		k := f.adminKey(a.ID)
		for name, bad := range map[string][]keyward.RateLimit{
			"a zero limit":    {{Name: "x", Limit: 0, Window: keyward.Duration(time.Second)}},
			"a short window":  {{Name: "x", Limit: 1, Window: keyward.Duration(time.Millisecond)}},
			"a bad name":      {{Name: "no spaces", Limit: 1, Window: keyward.Duration(time.Second)}},
			"a repeated name": {accountLimits[0], accountLimits[0]},
		} {
			t.Run(name, func(t *testing.T) {
				nk := minimalKey()
				nk.RateLimits = bad
				wantCode(t, f.s.CreateKey(f.ctx, keyward.Change{}, nk), keyward.EINVALID)
				_, err := f.s.UpdateKey(f.ctx, keyward.Change{}, k.ID, func(k *keyward.Key) error { k.RateLimits = bad; return nil })
				wantCode(t, err, keyward.EINVALID)
				wantKey(t, f.key(k.ID), k)
				na := &keyward.Account{ID: apikey.NewID("acc"), Name: "bad " + name, RateLimits: bad, CreatedAt: fixedTime, UpdatedAt: fixedTime}
				wantCode(t, f.s.CreateAccount(f.ctx, keyward.Change{}, na), keyward.EINVALID)
				_, err = f.s.UpdateAccount(f.ctx, keyward.Change{}, a.ID, func(a *keyward.Account) error { a.RateLimits = bad; return nil })
				wantCode(t, err, keyward.EINVALID)
				got, err := f.s.Account(f.ctx, a.ID)
				must(t, err)
				wantAccount(t, got, a)
			})
		}
	})
}

func testKeyCredits(t *testing.T, open func(*testing.T) keyward.Store) {
	t.Run("update sets, changes and removes credits", func(t *testing.T) {
		f := newFixture(t, open)
		k := f.rootKey()
		c := &keyward.Credits{Remaining: 0, RefilledAt: fixedTime, Version: 3}
		got, err := f.s.UpdateKey(f.ctx, keyward.Change{}, k.ID, func(k *keyward.Key) error { k.Credits = c; return nil })
		must(t, err)
		want := k.Clone()
		want.Credits = c
		wantKey(t, got, want)
		wantKey(t, f.key(k.ID), want)

		c = &keyward.Credits{Remaining: keyward.MaxCredits, RefilledAt: fixedTime.Add(time.Hour), Version: 4,
			Refill: &keyward.CreditRefill{Amount: 1, Interval: keyward.Duration(time.Second)}}
		got, err = f.s.UpdateKey(f.ctx, keyward.Change{}, k.ID, func(k *keyward.Key) error { k.Credits = c; return nil })
		must(t, err)
		want.Credits = c
		wantKey(t, got, want)

		// A monthly refill: a day and no interval.
		c = &keyward.Credits{Remaining: 2, RefilledAt: fixedTime, Version: 5, Refill: &keyward.CreditRefill{Amount: 9, Day: 31}}
		got, err = f.s.UpdateKey(f.ctx, keyward.Change{}, k.ID, func(k *keyward.Key) error { k.Credits = c; return nil })
		must(t, err)
		want.Credits = c
		wantKey(t, got, want)
		wantKey(t, f.key(k.ID), want)
		byHash, err := f.s.KeyByHash(f.ctx, k.Hash)
		must(t, err)
		if !creditsEqual(byHash.Credits, c) {
			t.Fatalf("KeyByHash credits %s, want %s", fmtCredits(byHash.Credits), fmtCredits(c))
		}

		got, err = f.s.UpdateKey(f.ctx, keyward.Change{}, k.ID, func(k *keyward.Key) error { k.Credits = nil; return nil })
		must(t, err)
		want.Credits = nil
		wantKey(t, got, want)
		wantKey(t, f.key(k.ID), want)
	})
	t.Run("invalid credits are refused", func(t *testing.T) {
		f := newFixture(t, open)
		k := f.rootKey()
		for name, bad := range map[string]*keyward.Credits{
			"negative":           {Remaining: -1, RefilledAt: fixedTime},
			"beyond the maximum": {Remaining: keyward.MaxCredits + 1, RefilledAt: fixedTime},
			"a zero refill":      {Remaining: 1, RefilledAt: fixedTime, Refill: &keyward.CreditRefill{Amount: 0, Interval: keyward.Duration(time.Hour)}},
			"a short interval":   {Remaining: 1, RefilledAt: fixedTime, Refill: &keyward.CreditRefill{Amount: 1, Interval: keyward.Duration(time.Millisecond)}},
		} {
			t.Run(name, func(t *testing.T) {
				nk := minimalKey()
				nk.Credits = bad
				wantCode(t, f.s.CreateKey(f.ctx, keyward.Change{}, nk), keyward.EINVALID)
				_, err := f.s.UpdateKey(f.ctx, keyward.Change{}, k.ID, func(k *keyward.Key) error { k.Credits = bad; return nil })
				wantCode(t, err, keyward.EINVALID)
				wantKey(t, f.key(k.ID), k)
			})
		}
	})
	t.Run("a rotation's new key carries its own limits and credits", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		old := fullKey(a.ID, f.user(a.ID, "alice").ID)
		must(t, f.s.CreateKey(f.ctx, keyward.Change{}, old))
		var next *keyward.Key
		gotOld, gotNext, err := f.s.RotateKey(f.ctx, keyward.Change{}, old.ID, func(o *keyward.Key) (*keyward.Key, error) {
			n, err := rotation(fixedTime.Add(time.Hour), &next)(o)
			n.RateLimits = []keyward.RateLimit{{Name: "rotated", Limit: 3, Window: keyward.Duration(time.Minute)}}
			n.Credits = &keyward.Credits{Remaining: 99, RefilledAt: fixedTime.Add(time.Minute), Version: 1}
			return n, err
		})
		must(t, err)
		wantKey(t, gotNext, next)
		wantKey(t, f.key(next.ID), next)
		if !slices.Equal(gotOld.RateLimits, old.RateLimits) || !creditsEqual(gotOld.Credits, old.Credits) {
			t.Fatalf("rotation changed the old key's limits or credits: %v, %s", gotOld.RateLimits, fmtCredits(gotOld.Credits))
		}
	})
	t.Run("delete returns the key with its limits and credits", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		k := fullKey(a.ID, f.user(a.ID, "alice").ID)
		must(t, f.s.CreateKey(f.ctx, keyward.Change{}, k))
		got, err := f.s.DeleteKey(f.ctx, keyward.Change{}, k.ID)
		must(t, err)
		wantKey(t, got, k)
	})
	t.Run("bootstrap keeps the root key's credits", func(t *testing.T) {
		f := newFixture(t, open)
		k := creditKey(5, 10, time.Hour)
		k.RateLimits = accountLimits
		must(t, f.s.BootstrapRootKey(f.ctx, keyward.Change{}, k))
		wantKey(t, f.key(k.ID), k)
	})
}

// spend calls SpendCredits, failing the test on an error.
func (f *fixture) spend(id string, cost int64, now time.Time) (*keyward.Credits, bool) {
	f.t.Helper()
	c, ok, err := f.s.SpendCredits(f.ctx, id, cost, now)
	must(f.t, err)
	return c, ok
}

func testSpendCredits(t *testing.T, open func(*testing.T) keyward.Store) {
	t.Run("spends, denies and refills", func(t *testing.T) {
		f := newFixture(t, open)
		k := creditKey(10, 10, time.Hour)
		must(t, f.s.CreateKey(f.ctx, keyward.Change{}, k))
		step := func(cost int64, now time.Time, wantOK bool, want keyward.Credits) {
			t.Helper()
			c, ok := f.spend(k.ID, cost, now)
			if ok != wantOK || !creditsEqual(c, &want) {
				t.Fatalf("spend %d at %v = %s, %v; want %s, %v", cost, now, fmtCredits(c), ok, fmtCredits(&want), wantOK)
			}
			if stored := f.key(k.ID).Credits; !creditsEqual(stored, &want) {
				t.Fatalf("after spend %d at %v the store holds %s, want %s", cost, now, fmtCredits(stored), fmtCredits(&want))
			}
		}
		refill := k.Credits.Refill
		at := func(remaining int64, refilledAt time.Time, version int64) keyward.Credits {
			return keyward.Credits{Remaining: remaining, Refill: refill, RefilledAt: refilledAt, Version: version}
		}
		step(3, fixedTime.Add(time.Minute), true, at(7, fixedTime, 2))
		step(8, fixedTime.Add(time.Minute), false, at(7, fixedTime, 2)) // more than remains: nothing spent
		step(7, fixedTime.Add(time.Minute), true, at(0, fixedTime, 3))
		step(1, fixedTime.Add(time.Hour-time.Microsecond), false, at(0, fixedTime, 3)) // not yet due
		step(1, fixedTime.Add(time.Hour), true, at(9, fixedTime.Add(time.Hour), 4))    // refilled, then spent
		// Two periods later, a denied spend still stores the refill.
		step(11, fixedTime.Add(3*time.Hour+time.Minute), false, at(10, fixedTime.Add(3*time.Hour), 5))
		// A clock that went backwards refills nothing.
		step(10, fixedTime, true, at(0, fixedTime.Add(3*time.Hour), 6))
	})
	t.Run("credits without a refill never refill", func(t *testing.T) {
		f := newFixture(t, open)
		k := creditKey(2, 0, 0)
		must(t, f.s.CreateKey(f.ctx, keyward.Change{}, k))
		if c, ok := f.spend(k.ID, 2, fixedTime); !ok || c.Remaining != 0 || c.Refill != nil {
			t.Fatalf("spend 2 of 2 = %s, %v; want 0 left", fmtCredits(c), ok)
		}
		if c, ok := f.spend(k.ID, 1, fixedTime.Add(400*24*time.Hour)); ok || c.Remaining != 0 {
			t.Fatalf("spend 1 of 0 a year later = %s, %v; want denied", fmtCredits(c), ok)
		}
	})
	t.Run("a key without credits spends nothing", func(t *testing.T) {
		f := newFixture(t, open)
		k := f.rootKey()
		c, ok := f.spend(k.ID, 1000, fixedTime)
		if c != nil || !ok {
			t.Fatalf("SpendCredits on a key without credits = %s, %v; want none, true", fmtCredits(c), ok)
		}
		wantKey(t, f.key(k.ID), k)
	})
	t.Run("errors", func(t *testing.T) {
		f := newFixture(t, open)
		_, _, err := f.s.SpendCredits(f.ctx, "key_missing", 1, fixedTime)
		wantCode(t, err, keyward.ENOTFOUND)
		k := creditKey(5, 0, 0)
		must(t, f.s.CreateKey(f.ctx, keyward.Change{}, k))
		for _, cost := range []int64{0, -1} {
			_, _, err = f.s.SpendCredits(f.ctx, k.ID, cost, fixedTime)
			wantCode(t, err, keyward.EINVALID)
		}
		wantKey(t, f.key(k.ID), k)
	})
	t.Run("concurrent spends admit exactly what there is", func(t *testing.T) {
		f := newFixture(t, open)
		const credits, spends = 500, 1000
		k := creditKey(credits, 0, 0)
		must(t, f.s.CreateKey(f.ctx, keyward.Change{}, k))
		var admitted atomic.Int64
		var wg sync.WaitGroup
		for range spends {
			wg.Go(func() {
				c, ok, err := f.s.SpendCredits(f.ctx, k.ID, 1, fixedTime)
				if err != nil {
					t.Errorf("SpendCredits: %v", err)
					return
				}
				if c.Remaining < 0 {
					t.Errorf("SpendCredits left %d credits", c.Remaining)
				}
				if ok {
					admitted.Add(1)
				}
			})
		}
		wg.Wait()
		if n := admitted.Load(); n != credits {
			t.Fatalf("%d concurrent spends of 1 on %d credits admitted %d", spends, credits, n)
		}
		c := f.key(k.ID).Credits
		if c.Remaining != 0 || c.Version != k.Credits.Version+credits {
			t.Fatalf("after the spends the store holds %s, want 0 left at version %d", fmtCredits(c), k.Credits.Version+credits)
		}
	})
}

func testWriteCredits(t *testing.T, open func(*testing.T) keyward.Store) {
	f := newFixture(t, open)
	k := creditKey(100, 100, time.Hour)
	k.Credits.Version = 5
	bare := f.rootKey()
	must(t, f.s.CreateKey(f.ctx, keyward.Change{}, k))
	later := fixedTime.Add(2 * time.Hour)
	write := func(ws ...keyward.CreditWrite) {
		t.Helper()
		must(t, f.s.WriteCredits(f.ctx, ws))
	}
	want := func(remaining int64, refilledAt time.Time, version int64) {
		t.Helper()
		w := &keyward.Credits{Remaining: remaining, Refill: k.Credits.Refill, RefilledAt: refilledAt, Version: version}
		if got := f.key(k.ID).Credits; !creditsEqual(got, w) {
			t.Fatalf("stored credits = %s, want %s", fmtCredits(got), fmtCredits(w))
		}
	}

	write()
	write(keyward.CreditWrite{KeyID: k.ID, Remaining: 1, RefilledAt: later, Version: 4})
	write(keyward.CreditWrite{KeyID: k.ID, Remaining: 1, RefilledAt: later, Version: 5})
	want(100, fixedTime, 5) // older and equal versions are ignored
	write(keyward.CreditWrite{KeyID: k.ID, Remaining: 42, RefilledAt: later, Version: 6},
		keyward.CreditWrite{KeyID: bare.ID, Remaining: 7, RefilledAt: later, Version: 100},
		keyward.CreditWrite{KeyID: "key_missing", Remaining: 7, RefilledAt: later, Version: 100})
	want(42, later, 6)
	if got := f.key(bare.ID); got.Credits != nil {
		t.Fatalf("WriteCredits gave credits %s to a key without any", fmtCredits(got.Credits))
	}
	// Within a batch, the newest write of a key wins whatever its place.
	write(keyward.CreditWrite{KeyID: k.ID, Remaining: 8, RefilledAt: later, Version: 8},
		keyward.CreditWrite{KeyID: k.ID, Remaining: 7, RefilledAt: later, Version: 7})
	want(8, later, 8)
	// A spend in the store continues from the written version.
	if c, ok := f.spend(k.ID, 1, later); !ok || c.Remaining != 7 || c.Version != 9 {
		t.Fatalf("spend after a write-back = %s, %v; want 7 left at version 9", fmtCredits(c), ok)
	}
	wantCode(t, f.s.WriteCredits(f.ctx, []keyward.CreditWrite{{KeyID: k.ID, Remaining: -1, RefilledAt: later, Version: 50}}), keyward.EINVALID)
	want(7, later, 9)
}

// anomaly returns an anomaly of type typ created at, about an account and
// key.
func anomaly(typ keyward.AnomalyType, accountID, keyID string, at time.Time) *keyward.Anomaly {
	return &keyward.Anomaly{ID: apikey.NewID("anm"), Type: typ, Severity: keyward.SeverityMedium,
		AccountID: accountID, KeyID: keyID, CreatedAt: at}
}

func wantAnomaly(t testing.TB, got, want *keyward.Anomaly) {
	t.Helper()
	if got.ID != want.ID || got.Type != want.Type || got.Severity != want.Severity || got.AccountID != want.AccountID ||
		got.KeyID != want.KeyID || got.IP != want.IP || !jsonEqual(got.Details, want.Details) ||
		got.Action != want.Action || got.ActionError != want.ActionError || !got.CreatedAt.Equal(want.CreatedAt) {
		t.Fatalf("anomaly differs:\n got %+v\nwant %+v", got, want)
	}
	isUTC(t, "CreatedAt", got.CreatedAt)
}

// newestFirst returns the ids of as by descending id: the order of
// Store.Anomalies.
func newestFirst(as ...*keyward.Anomaly) []string {
	ids := make([]string, len(as))
	for i, a := range as {
		ids[i] = a.ID
	}
	slices.Sort(ids)
	slices.Reverse(ids)
	return ids
}

// anomalyWalk lists every anomaly matching flt with page size limit,
// checking that each page but the last is full, that ids descend strictly
// and that next is "" exactly on the last page. It returns the ids in order.
func anomalyWalk(f *fixture, flt keyward.AnomalyFilter, limit int) []string {
	f.t.Helper()
	var ids []string
	p := keyward.Page{Limit: limit}
	for range 1000 {
		items, next, err := f.s.Anomalies(f.ctx, flt, p)
		must(f.t, err)
		if items == nil {
			f.t.Fatal("Anomalies returned a nil list, want an empty one")
		}
		for _, a := range items {
			if n := len(ids); n > 0 && a.ID >= ids[n-1] {
				f.t.Fatalf("anomaly %s listed after %s: ids must descend", a.ID, ids[n-1])
			}
			ids = append(ids, a.ID)
		}
		if next == "" {
			return ids
		}
		if len(items) != limit || next != items[len(items)-1].ID {
			f.t.Fatalf("page after %q: %d items, next %q; want %d items and next their last id", p.After, len(items), next, limit)
		}
		p.After = next
	}
	f.t.Fatal("pagination does not end")
	return nil
}

func testAnomalies(t *testing.T, open func(*testing.T) keyward.Store) {
	f := newFixture(t, open)
	a := f.account("acme")
	k := f.adminKey(a.ID)
	full := &keyward.Anomaly{ID: apikey.NewID("anm"), Type: keyward.AnomalyIPSpread, Severity: keyward.SeverityHigh,
		AccountID: a.ID, KeyID: k.ID, IP: "2001:db8::7",
		Details: json.RawMessage(`{"networks": 12, "baseline": 2, "window": "1h0m0s"}`),
		Action:  keyward.AnomalyActionDisableKey, ActionError: "key already deleted",
		CreatedAt: fixedTime.In(time.FixedZone("UTC+2", 7200))}
	brute := &keyward.Anomaly{ID: apikey.NewID("anm"), Type: keyward.AnomalyBruteForce, Severity: keyward.SeverityLow,
		IP: "203.0.113.9", Action: keyward.AnomalyActionBlockIP, CreatedAt: fixedTime.Add(time.Minute)}
	// Anomalies about keys and accounts that no longer (or never) exist.
	gone := anomaly(keyward.AnomalyRevokedKeyUse, "acc_gone", "key_gone", fixedTime.Add(2*time.Minute))
	spike := anomaly(keyward.AnomalyUsageSpike, a.ID, "key_other", fixedTime.Add(3*time.Minute))
	burst := anomaly(keyward.AnomalyFailureBurst, a.ID, "", fixedTime.Add(4*time.Minute))
	all := []*keyward.Anomaly{full, brute, gone, spike, burst}
	for _, an := range all {
		must(t, f.s.CreateAnomaly(f.ctx, keyward.Change{}, an))
	}

	t.Run("list returns every field, newest first", func(t *testing.T) {
		got, next, err := f.s.Anomalies(f.ctx, keyward.AnomalyFilter{}, keyward.Page{})
		must(t, err)
		if next != "" || len(got) != len(all) {
			t.Fatalf("Anomalies = %d items, next %q; want %d, no next", len(got), next, len(all))
		}
		byID := map[string]*keyward.Anomaly{}
		for _, an := range all {
			byID[an.ID] = an
		}
		var ids []string
		for _, g := range got {
			wantAnomaly(t, g, byID[g.ID])
			ids = append(ids, g.ID)
		}
		if want := newestFirst(all...); !slices.Equal(ids, want) {
			t.Fatalf("ids = %v, want %v", ids, want)
		}
	})
	t.Run("filters", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			flt  keyward.AnomalyFilter
			want []*keyward.Anomaly
		}{
			{"by account", keyward.AnomalyFilter{AccountID: a.ID}, []*keyward.Anomaly{full, spike, burst}},
			{"by a deleted account", keyward.AnomalyFilter{AccountID: "acc_gone"}, []*keyward.Anomaly{gone}},
			{"by key", keyward.AnomalyFilter{KeyID: k.ID}, []*keyward.Anomaly{full}},
			{"by type", keyward.AnomalyFilter{Type: keyward.AnomalyBruteForce}, []*keyward.Anomaly{brute}},
			{"since, inclusive", keyward.AnomalyFilter{Since: spike.CreatedAt}, []*keyward.Anomaly{spike, burst}},
			{"since after the last", keyward.AnomalyFilter{Since: burst.CreatedAt.Add(time.Microsecond)}, nil},
			{"by account and type", keyward.AnomalyFilter{AccountID: a.ID, Type: keyward.AnomalyUsageSpike}, []*keyward.Anomaly{spike}},
			{"by account and since", keyward.AnomalyFilter{AccountID: a.ID, Since: fixedTime.Add(time.Second)}, []*keyward.Anomaly{spike, burst}},
			{"by account and another account's key", keyward.AnomalyFilter{AccountID: a.ID, KeyID: "key_gone"}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got := anomalyWalk(f, tc.flt, 2)
				if want := newestFirst(tc.want...); !slices.Equal(got, want) {
					t.Fatalf("ids = %v, want %v", got, want)
				}
			})
		}
	})
	for _, limit := range []int{1, 2, 5, 6} {
		t.Run(fmt.Sprintf("pages of %d walk every anomaly once", limit), func(t *testing.T) {
			if got, want := anomalyWalk(f, keyward.AnomalyFilter{}, limit), newestFirst(all...); !slices.Equal(got, want) {
				t.Fatalf("ids = %v, want %v", got, want)
			}
		})
	}
	t.Run("anomalies outlive their account", func(t *testing.T) {
		g := newFixture(t, open)
		acc := g.account("doomed")
		an := anomaly(keyward.AnomalyFailureBurst, acc.ID, "", fixedTime)
		must(t, g.s.CreateAnomaly(g.ctx, keyward.Change{}, an))
		_, err := g.s.DeleteAccount(g.ctx, keyward.Change{}, acc.ID)
		must(t, err)
		if got := anomalyWalk(g, keyward.AnomalyFilter{AccountID: acc.ID}, 10); !slices.Equal(got, []string{an.ID}) {
			t.Fatalf("anomalies of a deleted account = %v, want %v", got, []string{an.ID})
		}
	})
	t.Run("errors", func(t *testing.T) {
		dup := anomaly(keyward.AnomalyUsageSpike, "", "", fixedTime)
		dup.ID = full.ID
		wantCode(t, f.s.CreateAnomaly(f.ctx, keyward.Change{}, dup), keyward.ECONFLICT)
		for name, edit := range map[string]func(*keyward.Anomaly){
			"no id":                   func(an *keyward.Anomaly) { an.ID = "" },
			"an unknown type":         func(an *keyward.Anomaly) { an.Type = "weird" },
			"no type":                 func(an *keyward.Anomaly) { an.Type = "" },
			"an unknown severity":     func(an *keyward.Anomaly) { an.Severity = "critical" },
			"details that are a list": func(an *keyward.Anomaly) { an.Details = json.RawMessage(`[1, 2]`) },
			"details that are a string": func(an *keyward.Anomaly) {
				an.Details = json.RawMessage(`"x"`)
			},
			"details that are not JSON": func(an *keyward.Anomaly) { an.Details = json.RawMessage(`{"a":`) },
		} {
			t.Run(name, func(t *testing.T) {
				an := anomaly(keyward.AnomalyUsageSpike, a.ID, "", fixedTime)
				edit(an)
				wantCode(t, f.s.CreateAnomaly(f.ctx, keyward.Change{}, an), keyward.EINVALID)
			})
		}
		if got := anomalyWalk(f, keyward.AnomalyFilter{}, 100); len(got) != len(all) {
			t.Fatalf("%d anomalies after failed creates, want %d", len(got), len(all))
		}
	})
}

// AnomalyRecorder records anomalies straight into a store, without the
// audit entry the admin service adds: an abuse.Recorder for tests of the
// detector alone.
type AnomalyRecorder struct{ keyward.Store }

// RecordAnomaly inserts a with no change set.
func (r AnomalyRecorder) RecordAnomaly(ctx context.Context, a *keyward.Anomaly) error {
	return r.CreateAnomaly(ctx, keyward.Change{}, a)
}
