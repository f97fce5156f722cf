package keywardtest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

// perMinute is a shared limit of the meter tests.
var perMinute = []keyward.RateLimit{{Name: "per-minute", Limit: 100, Window: keyward.Duration(time.Minute)}}

// newMeter returns a meter of level for id in account accountID, with
// perMinute and, if remaining >= 0, credits of remaining.
func newMeter(level keyward.LimitLevel, id, accountID string, remaining int64) *keyward.Meter {
	m := &keyward.Meter{ID: id, Level: level, AccountID: accountID, RateLimits: perMinute, UpdatedAt: fixedTime}
	if remaining >= 0 {
		m.Credits = &keyward.Credits{Remaining: remaining, RefilledAt: fixedTime, Version: 1}
	}
	return m
}

// meterEqual compares two meters, ignoring UpdatedAt.
func meterEqual(a, b *keyward.Meter) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.ID == b.ID && a.Level == b.Level && a.AccountID == b.AccountID &&
		slices.Equal(a.RateLimits, b.RateLimits) && creditsEqual(a.Credits, b.Credits)
}

func testMeters(t *testing.T, open func(*testing.T) keyward.Store) {
	t.Run("set, read, replace and remove", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		u := f.user(a.ID, "ann")
		for _, m := range []*keyward.Meter{newMeter(keyward.LevelUser, u.ID, a.ID, 10), newMeter(keyward.LevelAccount, a.ID, a.ID, -1)} {
			wantCode(t, func() error { _, err := f.s.Meter(f.ctx, m.ID); return err }(), keyward.ENOTFOUND)
			must(t, f.s.SetMeter(f.ctx, keyward.Change{}, m))
			got, err := f.s.Meter(f.ctx, m.ID)
			must(t, err)
			if !meterEqual(got, m) || !got.UpdatedAt.Equal(fixedTime) {
				t.Fatalf("Meter(%s) = %+v, want %+v", m.ID, got, m)
			}
			m2 := m.Clone()
			m2.RateLimits, m2.Credits = nil, &keyward.Credits{Remaining: 3, RefilledAt: fixedTime, Version: 7,
				Refill: &keyward.CreditRefill{Amount: 9, Day: 28}}
			must(t, f.s.SetMeter(f.ctx, keyward.Change{}, m2))
			if got, err := f.s.Meter(f.ctx, m.ID); err != nil || !meterEqual(got, m2) {
				t.Fatalf("after replacing: Meter = %+v, %v; want %+v", got, err, m2)
			}
			must(t, f.s.DeleteMeter(f.ctx, keyward.Change{}, m.ID))
			wantCode(t, f.s.DeleteMeter(f.ctx, keyward.Change{}, m.ID), keyward.ENOTFOUND)
			wantCode(t, func() error { _, err := f.s.Meter(f.ctx, m.ID); return err }(), keyward.ENOTFOUND)
		}
	})

	t.Run("refuses unknown owners and invalid meters", func(t *testing.T) {
		f := newFixture(t, open)
		a, b := f.account("acme"), f.account("other")
		u := f.user(a.ID, "ann")
		wantCode(t, f.s.SetMeter(f.ctx, keyward.Change{}, newMeter(keyward.LevelUser, u.ID, b.ID, 1)), keyward.ENOTFOUND)
		wantCode(t, f.s.SetMeter(f.ctx, keyward.Change{}, newMeter(keyward.LevelUser, "usr_missing", a.ID, 1)), keyward.ENOTFOUND)
		wantCode(t, f.s.SetMeter(f.ctx, keyward.Change{}, newMeter(keyward.LevelAccount, "acc_missing", "acc_missing", 1)), keyward.ENOTFOUND)
		wantCode(t, f.s.SetMeter(f.ctx, keyward.Change{}, newMeter(keyward.LevelAccount, a.ID, b.ID, 1)), keyward.EINVALID)
		wantCode(t, f.s.SetMeter(f.ctx, keyward.Change{}, newMeter(keyward.LevelKey, a.ID, a.ID, 1)), keyward.EINVALID)
		bad := newMeter(keyward.LevelUser, u.ID, a.ID, -1)
		bad.RateLimits = []keyward.RateLimit{{Name: "x", Limit: 0, Window: keyward.Duration(time.Minute)}}
		wantCode(t, f.s.SetMeter(f.ctx, keyward.Change{}, bad), keyward.EINVALID)
		neg := newMeter(keyward.LevelUser, u.ID, a.ID, 1)
		neg.Credits.Remaining = -1
		wantCode(t, f.s.SetMeter(f.ctx, keyward.Change{}, neg), keyward.EINVALID)
	})

	t.Run("keys mirror their user's and account's meters on every read", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		ann, bob := f.user(a.ID, "ann"), f.user(a.ID, "bob")
		um, am := newMeter(keyward.LevelUser, ann.ID, a.ID, 5), newMeter(keyward.LevelAccount, a.ID, a.ID, -1)
		um.Credits.Refill = &keyward.CreditRefill{Amount: 5, Day: 1} // read back by the key lookup
		must(t, f.s.SetMeter(f.ctx, keyward.Change{}, um))
		must(t, f.s.SetMeter(f.ctx, keyward.Change{}, am))
		annKey := NewKey(t, f.s, f.h, keyward.Key{Role: keyward.RoleUser, AccountID: a.ID, UserID: ann.ID})
		if !meterEqual(annKey.UserMeter, um) || !meterEqual(annKey.AccountMeter, am) {
			t.Fatalf("CreateKey filled meters %+v, %+v; want %+v, %+v", annKey.UserMeter, annKey.AccountMeter, um, am)
		}
		bobKey := f.userKey(a.ID, bob.ID)
		admin := f.adminKey(a.ID)
		root := f.rootKey()
		for _, c := range []struct {
			id          string
			user, accnt *keyward.Meter
		}{{annKey.ID, um, am}, {bobKey.ID, nil, am}, {admin.ID, nil, am}, {root.ID, nil, nil}} {
			k := f.key(c.id)
			if !meterEqual(k.UserMeter, c.user) || !meterEqual(k.AccountMeter, c.accnt) {
				t.Fatalf("key %s mirrors %+v, %+v; want %+v, %+v", c.id, k.UserMeter, k.AccountMeter, c.user, c.accnt)
			}
			byHash, err := f.s.KeyByHash(f.ctx, k.Hash)
			must(t, err)
			if !meterEqual(byHash.UserMeter, c.user) || !meterEqual(byHash.AccountMeter, c.accnt) {
				t.Fatalf("KeyByHash of %s mirrors %+v, %+v", c.id, byHash.UserMeter, byHash.AccountMeter)
			}
		}
		batch := []*keyward.Key{minimalKey(), minimalKey()}
		for _, k := range batch {
			k.Role, k.AccountID, k.UserID = keyward.RoleUser, a.ID, ann.ID
		}
		must(t, f.s.CreateKeys(f.ctx, keyward.Change{}, batch))
		for _, k := range batch {
			if !meterEqual(k.UserMeter, um) || !meterEqual(k.AccountMeter, am) {
				t.Fatalf("CreateKeys filled meters %+v, %+v", k.UserMeter, k.AccountMeter)
			}
		}
		must(t, f.s.DeleteMeter(f.ctx, keyward.Change{}, ann.ID))
		if k := f.key(annKey.ID); k.UserMeter != nil || !meterEqual(k.AccountMeter, am) {
			t.Fatalf("after removing the user's meter the key mirrors %+v, %+v", k.UserMeter, k.AccountMeter)
		}
		// KeyByHash reads the meters of a key's user and account only while
		// the user or account is flagged as having one (users.has_meter,
		// accounts.has_meter): the flags follow each meter's removal and
		// return.
		for _, set := range []bool{false, true} {
			if set {
				must(t, f.s.SetMeter(f.ctx, keyward.Change{}, um))
				must(t, f.s.SetMeter(f.ctx, keyward.Change{}, am))
			} else {
				must(t, f.s.DeleteMeter(f.ctx, keyward.Change{}, a.ID)) // the user's went above
			}
			want := map[bool][2]*keyward.Meter{true: {um, am}}[set]
			for _, c := range []struct {
				k           *keyward.Key
				user, accnt *keyward.Meter
			}{{&annKey.Key, want[0], want[1]}, {admin, nil, want[1]}} {
				byHash, err := f.s.KeyByHash(f.ctx, c.k.Hash)
				must(t, err)
				if !meterEqual(byHash.UserMeter, c.user) || !meterEqual(byHash.AccountMeter, c.accnt) {
					t.Fatalf("meters set %v: KeyByHash of %s mirrors %+v, %+v; want %+v, %+v", set, c.k.ID, byHash.UserMeter, byHash.AccountMeter, c.user, c.accnt)
				}
			}
		}
	})

	t.Run("deleting the user or account deletes its meter", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		u := f.user(a.ID, "ann")
		must(t, f.s.SetMeter(f.ctx, keyward.Change{}, newMeter(keyward.LevelUser, u.ID, a.ID, 1)))
		must(t, f.s.SetMeter(f.ctx, keyward.Change{}, newMeter(keyward.LevelAccount, a.ID, a.ID, 1)))
		_, err := f.s.DeleteUser(f.ctx, keyward.Change{}, u.ID)
		must(t, err)
		wantCode(t, func() error { _, err := f.s.Meter(f.ctx, u.ID); return err }(), keyward.ENOTFOUND)
		_, err = f.s.DeleteAccount(f.ctx, keyward.Change{}, a.ID)
		must(t, err)
		wantCode(t, func() error { _, err := f.s.Meter(f.ctx, a.ID); return err }(), keyward.ENOTFOUND)
	})

	t.Run("spends every level or none", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		u := f.user(a.ID, "ann")
		must(t, f.s.SetMeter(f.ctx, keyward.Change{}, newMeter(keyward.LevelUser, u.ID, a.ID, 2)))
		must(t, f.s.SetMeter(f.ctx, keyward.Change{}, newMeter(keyward.LevelAccount, a.ID, a.ID, 5)))
		k := minimalKey()
		k.Role, k.AccountID, k.UserID = keyward.RoleUser, a.ID, u.ID
		k.Credits = &keyward.Credits{Remaining: 10, RefilledAt: fixedTime, Version: 1}
		must(t, f.s.CreateKey(f.ctx, keyward.Change{}, k))
		refs := k.CreditLevels()
		if want := []keyward.LevelRef{{Level: keyward.LevelKey, ID: k.ID}, {Level: keyward.LevelUser, ID: u.ID}, {Level: keyward.LevelAccount, ID: a.ID}}; !slices.Equal(refs, want) {
			t.Fatalf("CreditLevels = %v, want %v", refs, want)
		}
		remaining := func() [3]int64 {
			t.Helper()
			um, err := f.s.Meter(f.ctx, u.ID)
			must(t, err)
			am, err := f.s.Meter(f.ctx, a.ID)
			must(t, err)
			return [3]int64{f.key(k.ID).Credits.Remaining, um.Credits.Remaining, am.Credits.Remaining}
		}
		for i := range 2 {
			cs, refused, err := f.s.SpendLevelCredits(f.ctx, refs, 1, fixedTime)
			must(t, err)
			if refused != -1 || cs[0].Remaining != int64(9-i) || cs[1].Remaining != int64(1-i) || cs[2].Remaining != int64(4-i) {
				t.Fatalf("spend %d = %s %s %s, refused %d", i, fmtCredits(cs[0]), fmtCredits(cs[1]), fmtCredits(cs[2]), refused)
			}
		}
		cs, refused, err := f.s.SpendLevelCredits(f.ctx, refs, 1, fixedTime)
		must(t, err)
		if refused != 1 || cs[1].Remaining != 0 {
			t.Fatalf("third spend refused at %d (%v), want 1, the user's", refused, cs)
		}
		if got := remaining(); got != [3]int64{8, 0, 3} {
			t.Fatalf("after the user refused: remaining %v, want [8 0 3]: nothing spent from the key or account", got)
		}
		// The account alone refuses a cost of 4.
		cs, refused, err = f.s.SpendLevelCredits(f.ctx, []keyward.LevelRef{refs[0], refs[2]}, 4, fixedTime)
		must(t, err)
		if refused != 1 || cs[0].Remaining != 8 {
			t.Fatalf("cost 4 refused at %d with the key at %s; want 1 and 8", refused, fmtCredits(cs[0]))
		}
		// A removed meter spends nothing and refuses nothing.
		must(t, f.s.DeleteMeter(f.ctx, keyward.Change{}, u.ID))
		cs, refused, err = f.s.SpendLevelCredits(f.ctx, refs, 1, fixedTime)
		must(t, err)
		if refused != -1 || cs[1] != nil || cs[0].Remaining != 7 || cs[2].Remaining != 2 {
			t.Fatalf("without the user's meter: %v, refused %d", cs, refused)
		}
		_, _, err = f.s.SpendLevelCredits(f.ctx, []keyward.LevelRef{{Level: keyward.LevelKey, ID: "key_missing"}}, 1, fixedTime)
		wantCode(t, err, keyward.ENOTFOUND)
		_, _, err = f.s.SpendLevelCredits(f.ctx, refs, 0, fixedTime)
		wantCode(t, err, keyward.EINVALID)
	})

	t.Run("concurrent spends of a shared meter never overspend", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		u := f.user(a.ID, "ann")
		must(t, f.s.SetMeter(f.ctx, keyward.Change{}, newMeter(keyward.LevelUser, u.ID, a.ID, 5)))
		var keys []*keyward.Key
		for range 3 {
			k := minimalKey()
			k.Role, k.AccountID, k.UserID = keyward.RoleUser, a.ID, u.ID
			k.Credits = &keyward.Credits{Remaining: 100, RefilledAt: fixedTime, Version: 1}
			must(t, f.s.CreateKey(f.ctx, keyward.Change{}, k))
			keys = append(keys, k)
		}
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			admitted int
		)
		for i := range 24 {
			k := keys[i%len(keys)]
			wg.Go(func() {
				_, refused, err := f.s.SpendLevelCredits(f.ctx, k.CreditLevels(), 1, fixedTime)
				if err != nil {
					t.Error(err)
					return
				}
				if refused == -1 {
					mu.Lock()
					admitted++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if admitted != 5 {
			t.Fatalf("24 concurrent spends over 3 keys of a user with 5 shared credits admitted %d", admitted)
		}
		var keySpent int64
		for _, k := range keys {
			keySpent += 100 - f.key(k.ID).Credits.Remaining
		}
		if keySpent != 5 {
			t.Fatalf("the keys' own credits lost %d, want 5: a refused spend must take nothing", keySpent)
		}
	})

	t.Run("write-backs of shared credits keep the newest version", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		must(t, f.s.SetMeter(f.ctx, keyward.Change{}, newMeter(keyward.LevelAccount, a.ID, a.ID, 10)))
		w := keyward.CreditWrite{Level: keyward.LevelAccount, KeyID: a.ID, Remaining: 4, RefilledAt: fixedTime, Version: 5}
		must(t, f.s.WriteCredits(f.ctx, []keyward.CreditWrite{w}))
		old := w
		old.Remaining, old.Version = 9, 3
		must(t, f.s.WriteCredits(f.ctx, []keyward.CreditWrite{old}))
		m, err := f.s.Meter(f.ctx, a.ID)
		must(t, err)
		if m.Credits.Remaining != 4 || m.Credits.Version != 5 {
			t.Fatalf("after write-backs the account has %s, want 4 at version 5", fmtCredits(m.Credits))
		}
	})
}
