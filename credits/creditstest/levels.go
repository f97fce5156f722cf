package creditstest

import (
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/keywardtest"
)

// SharedKeys creates an account with a user, sets the user's shared
// credits to user and the account's to account (none if nil) through l,
// and creates n user keys of that user with credits own each (none if
// nil). It returns the keys as the store reads them, their meters
// mirrored.
func SharedKeys(t testing.TB, s keyward.Store, l keyward.CreditLedger, n int, own, user, account *keyward.Credits) []*keyward.Key {
	t.Helper()
	a := keywardtest.NewAccount(t, s, "shared")
	u := keywardtest.NewUser(t, s, a.ID, "ann")
	for _, m := range []*keyward.Meter{
		{ID: u.ID, Level: keyward.LevelUser, AccountID: a.ID, Credits: user},
		{ID: a.ID, Level: keyward.LevelAccount, AccountID: a.ID, Credits: account},
	} {
		if m.Credits == nil {
			continue
		}
		if _, err := l.SetMeter(t.Context(), keyward.Change{}, m, Epoch); err != nil {
			t.Fatalf("SetMeter(%s): %v", m.ID, err)
		}
	}
	h := keywardtest.NewHasher(t)
	keys := make([]*keyward.Key, n)
	for i := range keys {
		k := keywardtest.NewKey(t, s, h, keyward.Key{Role: keyward.RoleUser, AccountID: a.ID, UserID: u.ID, Credits: own}).Key
		keys[i] = &k
	}
	return keys
}

// spendLevels spends cost of k through l at now and fails t unless it is
// refused by want ("" for spent) leaving remaining at each level with
// credits.
func spendLevels(t *testing.T, l keyward.CreditLedger, k *keyward.Key, cost int64, now time.Time, want keyward.LimitLevel, remaining ...int64) {
	t.Helper()
	got, err := l.SpendLevels(t.Context(), k, cost, now)
	if err != nil {
		t.Fatalf("SpendLevels: %v", err)
	}
	ok := got.Refused == want && len(got.Remaining) == len(remaining)
	for i := 0; ok && i < len(remaining); i++ {
		ok = got.Remaining[i].Remaining == remaining[i]
	}
	if !ok {
		t.Fatalf("SpendLevels(%d) at %v = %+v; want refused by %q with %v remaining", cost, now.Sub(Epoch), got, want, remaining)
	}
}

// testLevels: a spend takes cost from every level or from none, and the
// refusal names the level.
func testLevels(t *testing.T, open Open) {
	s, l := open(t)
	keys := SharedKeys(t, s, l, 3, Credits(10, 0, 0), Credits(4, 4, time.Hour), Credits(100, 0, 0))
	for i := range 4 {
		k := keys[i%3]
		spendLevels(t, l, k, 1, Epoch, "", int64(9-i/3), int64(3-i), int64(99-i))
	}
	// The user has none left: refused by the user, and neither the key's
	// own credits nor the account's are spent.
	for _, k := range keys {
		spendLevels(t, l, k, 1, Epoch, keyward.LevelUser, k.Credits.Remaining-map[bool]int64{true: 2, false: 1}[k == keys[0]], 0, 96)
	}
	live(t, l, keys[1].ID, Epoch, 9, Epoch)
	if c, err := l.MeterCredits(t.Context(), keys[0].UserID, Epoch); err != nil || c == nil || c.Remaining != 0 {
		t.Fatalf("MeterCredits of the user = %+v, %v; want 0 remaining", c, err)
	}
	if c, err := l.MeterCredits(t.Context(), keys[0].AccountID, Epoch); err != nil || c == nil || c.Remaining != 96 {
		t.Fatalf("MeterCredits of the account = %+v, %v; want 96 remaining", c, err)
	}
	// The key's own credits refuse a cost of 9 (8 left): the user's refill
	// is applied, nothing is spent.
	spendLevels(t, l, keys[0], 9, Epoch.Add(time.Hour), keyward.LevelKey, 8, 4, 96)
	spendLevels(t, l, keys[0], 4, Epoch.Add(time.Hour), "", 4, 0, 92)
	// A key without credits of its own draws on the shared ones alone.
	bare := keys[1].Clone()
	bare.Credits = nil
	spendLevels(t, l, bare, 1, Epoch.Add(time.Hour), keyward.LevelUser, 0, 92)
	// A removed meter is left out, though the snapshot still names it.
	if err := l.DeleteMeter(t.Context(), keyward.Change{}, keys[0].UserMeter); err != nil {
		t.Fatal(err)
	}
	spendLevels(t, l, keys[2], 1, Epoch.Add(time.Hour), "", 8, 91)
	if _, err := l.MeterCredits(t.Context(), keys[0].UserID, Epoch); keyward.ErrorCode(err) != keyward.ENOTFOUND {
		t.Fatalf("MeterCredits after DeleteMeter: %v, want ENOTFOUND", err)
	}
	// No credits at any level: nothing to spend, nothing refused.
	if got, err := l.SpendLevels(t.Context(), NewKey(t, s, nil), 1, Epoch); err != nil || got.Refused != "" || len(got.Remaining) != 0 {
		t.Fatalf("a key without credits: %+v, %v", got, err)
	}
	_, err := l.SpendLevels(t.Context(), keys[2], 0, Epoch)
	wantCode(t, "cost 0", err, keyward.EINVALID)
}

// testLevelsConcurrent: spends of three keys at once on a user's shared
// credits admit exactly those credits, and the refused ones take nothing
// from the keys.
func testLevelsConcurrent(t *testing.T, open Open) {
	s, l := open(t)
	keys := SharedKeys(t, s, l, 3, Credits(1000, 0, 0), Credits(50, 0, 0), nil)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		admitted int
	)
	for i := range 150 {
		k := keys[i%3]
		wg.Go(func() {
			got, err := l.SpendLevels(t.Context(), k, 1, Epoch)
			if err != nil {
				t.Error(err)
				return
			}
			if got.Refused == "" {
				mu.Lock()
				admitted++
				mu.Unlock()
			} else if got.Refused != keyward.LevelUser {
				t.Errorf("refused by %q, want the user", got.Refused)
			}
		})
	}
	wg.Wait()
	if admitted != 50 {
		t.Fatalf("150 concurrent spends on 50 shared credits admitted %d", admitted)
	}
	var spent int64
	for _, k := range keys {
		c, err := l.Credits(t.Context(), k.ID, Epoch)
		if err != nil {
			t.Fatal(err)
		}
		spent += 1000 - c.Remaining
	}
	if spent != 50 {
		t.Fatalf("the keys' own credits lost %d, want 50", spent)
	}
}

// testMeters: SetMeter stores limits and credits, a new set restarts the
// credits, and removing the credits keeps the limits.
func testMeters(t *testing.T, open Open) {
	s, l := open(t)
	a := keywardtest.NewAccount(t, s, "meters")
	limits := []keyward.RateLimit{{Name: "per-minute", Limit: 100, Window: keyward.Duration(time.Minute)}}
	m := &keyward.Meter{ID: a.ID, Level: keyward.LevelAccount, AccountID: a.ID, RateLimits: limits, Credits: Credits(5, 0, 0)}
	set, err := l.SetMeter(t.Context(), keyward.Change{}, m, Epoch)
	if err != nil || set.Credits.Remaining != 5 || len(set.RateLimits) != 1 || !set.UpdatedAt.Equal(Epoch) {
		t.Fatalf("SetMeter = %+v, %v", set, err)
	}
	k := keywardtest.NewKey(t, s, keywardtest.NewHasher(t), keyward.Key{Role: keyward.RoleAccountAdmin, AccountID: a.ID}).Key
	spendLevels(t, l, &k, 2, Epoch, "", 3)
	again, err := l.SetMeter(t.Context(), keyward.Change{}, m, Epoch.Add(time.Minute))
	if err != nil || again.Credits.Version <= set.Credits.Version {
		t.Fatalf("SetMeter again = %+v, %v; want a higher version than %d", again, err, set.Credits.Version)
	}
	spendLevels(t, l, &k, 5, Epoch.Add(time.Minute), "", 0)
	noCredits := m.Clone()
	noCredits.Credits = nil
	if _, err := l.SetMeter(t.Context(), keyward.Change{}, noCredits, Epoch); err != nil {
		t.Fatal(err)
	}
	if c, err := l.MeterCredits(t.Context(), a.ID, Epoch); err != nil || c != nil {
		t.Fatalf("MeterCredits without credits = %+v, %v; want none", c, err)
	}
	stored, err := s.Meter(t.Context(), a.ID)
	if err != nil || len(stored.RateLimits) != 1 {
		t.Fatalf("the meter's limits after removing its credits: %+v, %v", stored, err)
	}
	bad := m.Clone()
	bad.Credits = Credits(-1, 0, 0)
	_, err = l.SetMeter(t.Context(), keyward.Change{}, bad, Epoch)
	wantCode(t, "negative credits", err, keyward.EINVALID)
	missing := &keyward.Meter{ID: "usr_missing", Level: keyward.LevelUser, AccountID: a.ID, Credits: Credits(1, 0, 0)}
	_, err = l.SetMeter(t.Context(), keyward.Change{}, missing, Epoch)
	wantCode(t, "unknown user", err, keyward.ENOTFOUND)
}
