// Package creditstest is the contract suite of keyward.CreditLedger: Run
// checks a ledger against the behaviour every implementation shares, on a
// real store. Import it only from tests.
package creditstest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/keywardtest"
)

// Epoch is the clock of the suite, a fixed time the tests move from.
var Epoch = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// Open returns a store and a ledger on it for test t, both released when t
// ends.
type Open func(t *testing.T) (keyward.Store, keyward.CreditLedger)

// NewKey creates a root key with credits c (none if nil) in s and returns it
// as stored.
func NewKey(t testing.TB, s keyward.Store, c *keyward.Credits) *keyward.Key {
	t.Helper()
	return &keywardtest.NewKey(t, s, keywardtest.NewHasher(t), keyward.Key{Role: keyward.RoleRoot, Name: "credits", Credits: c}).Key
}

// Credits returns credits of remaining at Epoch, refilled to amount every
// interval if amount > 0.
func Credits(remaining, amount int64, interval time.Duration) *keyward.Credits {
	c := &keyward.Credits{Remaining: remaining, RefilledAt: Epoch}
	if amount > 0 {
		c.Refill = &keyward.CreditRefill{Amount: amount, Interval: keyward.Duration(interval)}
	}
	return c
}

// SpendConcurrently spends 1 of k n times at once, each through the next of
// ledgers in turn, and returns the remaining counts the admitted spends
// reported, sorted.
func SpendConcurrently(t testing.TB, k *keyward.Key, n int, ledgers ...keyward.CreditLedger) []int64 {
	t.Helper()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		admitted []int64
		start    = make(chan struct{})
	)
	for i := range n {
		l := ledgers[i%len(ledgers)]
		wg.Go(func() {
			<-start
			left, ok, err := l.Spend(t.Context(), k, 1, Epoch)
			if err != nil {
				t.Errorf("spend: %v", err)
				return
			}
			if ok {
				mu.Lock()
				admitted = append(admitted, left)
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	slices.Sort(admitted)
	return admitted
}

// WantExactly fails t unless admitted, the sorted remaining counts of
// SpendConcurrently, are 0 to n-1 once each: n spends admitted, one per
// credit.
func WantExactly(t testing.TB, admitted []int64, n int) {
	t.Helper()
	if len(admitted) != n {
		t.Fatalf("admitted %d spends of 1, want exactly %d", len(admitted), n)
	}
	for i, left := range admitted {
		if left != int64(i) {
			t.Fatalf("admitted spends left %v, want each of 0 to %d once", admitted, n-1)
		}
	}
}

// Run runs the contract suite on the ledgers open returns.
func Run(t *testing.T, open Open) {
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, open) })
	t.Run("Spend", func(t *testing.T) { testSpend(t, open) })
	t.Run("Refill", func(t *testing.T) { testRefill(t, open) })
	t.Run("MonthlyRefill", func(t *testing.T) { testMonthlyRefill(t, open) })
	t.Run("NoCredits", func(t *testing.T) { testNoCredits(t, open) })
	t.Run("NotFound", func(t *testing.T) { testNotFound(t, open) })
	t.Run("Set", func(t *testing.T) { testSet(t, open) })
	t.Run("TopUp", func(t *testing.T) { testTopUp(t, open) })
	t.Run("Decrement", func(t *testing.T) { testDecrement(t, open) })
	t.Run("Levels", func(t *testing.T) { testLevels(t, open) })
	t.Run("LevelsConcurrent", func(t *testing.T) { testLevelsConcurrent(t, open) })
	t.Run("Meters", func(t *testing.T) { testMeters(t, open) })
}

// spend spends cost of k at now and fails t unless the result is want.
func spend(t *testing.T, l keyward.CreditLedger, k *keyward.Key, cost int64, now time.Time, wantLeft int64, wantOK bool) {
	t.Helper()
	left, ok, err := l.Spend(t.Context(), k, cost, now)
	if err != nil || left != wantLeft || ok != wantOK {
		t.Fatalf("Spend(%d) at %v = %d, %v, %v; want %d, %v", cost, now.Sub(Epoch), left, ok, err, wantLeft, wantOK)
	}
}

// live fails t unless the ledger's credits of k at now have remaining and
// refilledAt.
func live(t *testing.T, l keyward.CreditLedger, keyID string, now time.Time, remaining int64, refilledAt time.Time) *keyward.Credits {
	t.Helper()
	c, err := l.Credits(t.Context(), keyID, now)
	if err != nil {
		t.Fatalf("Credits: %v", err)
	}
	if c == nil || c.Remaining != remaining || !c.RefilledAt.Equal(refilledAt) {
		t.Fatalf("Credits at %v = %+v; want %d remaining, refilled at %v", now.Sub(Epoch), c, remaining, refilledAt.Sub(Epoch))
	}
	return c
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := keyward.ErrorCode(err); got != code {
		t.Fatalf("%s: %v (code %q), want %s", what, err, got, code)
	}
}

// testConcurrent: 1000 spends of 1 at once on 500 credits admit exactly 500.
func testConcurrent(t *testing.T, open Open) {
	s, l := open(t)
	k := NewKey(t, s, Credits(500, 0, 0))
	WantExactly(t, SpendConcurrently(t, k, 1000, l), 500)
	live(t, l, k.ID, Epoch, 0, Epoch)
}

// testSpend: a spend takes the live count, never the snapshot's, and one
// that does not fit spends nothing.
func testSpend(t *testing.T, open Open) {
	s, l := open(t)
	k := NewKey(t, s, Credits(5, 0, 0))
	spend(t, l, k, 3, Epoch, 2, true)
	// k still says 5: the ledger must not believe it.
	spend(t, l, k, 3, Epoch, 2, false)
	spend(t, l, k, 2, Epoch, 0, true)
	spend(t, l, k, 1, Epoch.Add(time.Hour), 0, false)
	live(t, l, k.ID, Epoch, 0, Epoch)
	for _, cost := range []int64{0, -1, keyward.MaxVerificationCost + 1} {
		_, ok, err := l.Spend(t.Context(), k, cost, Epoch)
		wantCode(t, "Spend of an invalid cost", err, keyward.EINVALID)
		if ok {
			t.Fatalf("Spend(%d) admitted", cost)
		}
	}
}

// testRefill: due refills raise the count to the amount (never lower it)
// and advance the period by whole intervals.
func testRefill(t *testing.T, open Open) {
	s, l := open(t)
	k := NewKey(t, s, Credits(2, 5, time.Minute))
	spend(t, l, k, 2, Epoch, 0, true)
	spend(t, l, k, 1, Epoch.Add(59*time.Second), 0, false)
	spend(t, l, k, 1, Epoch.Add(time.Minute), 4, true)
	// A clock gone backwards refills nothing.
	spend(t, l, k, 1, Epoch.Add(-time.Hour), 3, true)
	live(t, l, k.ID, Epoch.Add(90*time.Second), 3, Epoch.Add(time.Minute))
	// Three more intervals: one refill, the period advanced by three.
	live(t, l, k.ID, Epoch.Add(4*time.Minute+30*time.Second), 5, Epoch.Add(4*time.Minute))
	// The refill that Credits showed is applied by the next spend.
	spend(t, l, k, 5, Epoch.Add(4*time.Minute+30*time.Second), 0, true)
	// A denied spend applies the refill all the same.
	spend(t, l, k, 6, Epoch.Add(5*time.Minute), 5, false)
	live(t, l, k.ID, Epoch.Add(5*time.Minute), 5, Epoch.Add(5*time.Minute))
	// Credits topped up beyond the amount are kept through a refill.
	if _, err := l.TopUpCredits(t.Context(), k.ID, 10, Epoch.Add(5*time.Minute)); err != nil {
		t.Fatalf("TopUpCredits: %v", err)
	}
	spend(t, l, k, 1, Epoch.Add(7*time.Minute), 14, true)
	live(t, l, k.ID, Epoch.Add(7*time.Minute), 14, Epoch.Add(7*time.Minute))
}

// Monthly returns credits of remaining at Epoch, refilled to amount every
// month on day.
func Monthly(remaining, amount int64, day int) *keyward.Credits {
	return &keyward.Credits{Remaining: remaining, RefilledAt: Epoch, Refill: &keyward.CreditRefill{Amount: amount, Day: day}}
}

// testMonthlyRefill: a monthly refill is due at midnight UTC of its day,
// the month's last when it is shorter, once a month; for a key's credits
// and for a user's shared ones.
func testMonthlyRefill(t *testing.T, open Open) {
	s, l := open(t)
	at := func(month time.Month, day int) time.Time { return time.Date(2030, month, day, 0, 0, 0, 0, time.UTC) }
	k := NewKey(t, s, Monthly(2, 5, 31))
	spend(t, l, k, 2, Epoch, 0, true)
	spend(t, l, k, 1, at(1, 31).Add(-time.Second), 0, false)
	spend(t, l, k, 1, at(1, 31), 4, true)
	spend(t, l, k, 1, at(2, 27).Add(23*time.Hour), 3, true)
	// February 2030 has 28 days.
	spend(t, l, k, 1, at(2, 28), 4, true)
	// A clock gone backwards refills nothing.
	spend(t, l, k, 1, at(2, 1), 3, true)
	// Read months later: one refill, at the latest day passed (April's 30th).
	live(t, l, k.ID, at(5, 20), 5, at(4, 30))

	keys := SharedKeys(t, s, l, 1, nil, Monthly(1, 3, 1), nil)
	spendLevels(t, l, keys[0], 1, Epoch, "", 0)
	spendLevels(t, l, keys[0], 1, at(2, 1).Add(-time.Second), keyward.LevelUser, 0)
	spendLevels(t, l, keys[0], 1, at(2, 1), "", 2)
	if c, err := l.MeterCredits(t.Context(), keys[0].UserID, at(2, 1)); err != nil || c == nil || c.Remaining != 2 || !c.RefilledAt.Equal(at(2, 1)) {
		t.Fatalf("MeterCredits of the user = %+v, %v; want 2 remaining, refilled on February 1st", c, err)
	}
}

// testNoCredits: a key without credits spends nothing and cannot be topped
// up; a snapshot that still shows removed credits spends nothing either.
func testNoCredits(t *testing.T, open Open) {
	s, l := open(t)
	k := NewKey(t, s, nil)
	spend(t, l, k, 1, Epoch, 0, true)
	if c, err := l.Credits(t.Context(), k.ID, Epoch); c != nil || err != nil {
		t.Fatalf("Credits of a key without = %+v, %v; want nil", c, err)
	}
	_, err := l.TopUpCredits(t.Context(), k.ID, 1, Epoch)
	wantCode(t, "TopUpCredits of a key without credits", err, keyward.EINVALID)

	k = NewKey(t, s, Credits(1, 0, 0))
	spend(t, l, k, 1, Epoch, 0, true)
	got, err := l.SetCredits(t.Context(), keyward.Change{}, k.ID, nil, Epoch)
	if err != nil || got.Credits != nil {
		t.Fatalf("SetCredits(nil) = %+v, %v; want a key without credits", got, err)
	}
	spend(t, l, k, 1, Epoch, 0, true) // k is a stale snapshot with credits
	if c, err := l.Credits(t.Context(), k.ID, Epoch); c != nil || err != nil {
		t.Fatalf("Credits after removal = %+v, %v; want nil", c, err)
	}
}

// testNotFound: every method but Spend names an unknown key ENOTFOUND.
func testNotFound(t *testing.T, open Open) {
	_, l := open(t)
	_, err := l.Credits(t.Context(), "key_missing", Epoch)
	wantCode(t, "Credits", err, keyward.ENOTFOUND)
	_, err = l.SetCredits(t.Context(), keyward.Change{}, "key_missing", Credits(1, 0, 0), Epoch)
	wantCode(t, "SetCredits", err, keyward.ENOTFOUND)
	_, err = l.TopUpCredits(t.Context(), "key_missing", 1, Epoch)
	wantCode(t, "TopUpCredits", err, keyward.ENOTFOUND)
	_, err = l.DecrementCredits(t.Context(), "key_missing", 1, Epoch)
	wantCode(t, "DecrementCredits", err, keyward.ENOTFOUND)
}

// testSet: SetCredits replaces the live count and the refill, starting the
// period at now, with a newer version.
func testSet(t *testing.T, open Open) {
	s, l := open(t)
	k := NewKey(t, s, Credits(10, 0, 0))
	spend(t, l, k, 4, Epoch, 6, true)
	at := Epoch.Add(30 * time.Second)
	got, err := l.SetCredits(t.Context(), keyward.Change{}, k.ID, Credits(3, 8, time.Minute), at)
	if err != nil {
		t.Fatalf("SetCredits: %v", err)
	}
	c := got.Credits
	if c == nil || c.Remaining != 3 || !c.RefilledAt.Equal(at) || c.Refill == nil || c.Refill.Amount != 8 || time.Duration(c.Refill.Interval) != time.Minute {
		t.Fatalf("SetCredits returned credits %+v; want 3 refilled to 8 every minute from %v", c, at)
	}
	if c.Version <= k.Credits.Version {
		t.Errorf("SetCredits version %d, not above the key's %d", c.Version, k.Credits.Version)
	}
	stored, err := s.Key(t.Context(), k.ID)
	if err != nil || stored.Credits == nil || stored.Credits.Remaining != 3 || stored.Credits.Version != c.Version {
		t.Fatalf("stored key after SetCredits: %+v, %v; want the credits returned", stored, err)
	}
	// The old snapshot k has no refill, but the count set is live.
	spend(t, l, k, 3, at, 0, true)
	spend(t, l, got, 1, at.Add(time.Minute), 7, true)
	live(t, l, k.ID, at.Add(time.Minute), 7, at.Add(time.Minute))

	_, err = l.SetCredits(t.Context(), keyward.Change{}, k.ID, &keyward.Credits{Remaining: -1}, Epoch)
	wantCode(t, "SetCredits of negative credits", err, keyward.EINVALID)
	live(t, l, k.ID, at.Add(time.Minute), 7, at.Add(time.Minute))

	// Credits removed and set again start afresh.
	if _, err := l.SetCredits(t.Context(), keyward.Change{}, k.ID, nil, at); err != nil {
		t.Fatal(err)
	}
	again := at.Add(time.Hour)
	if _, err := l.SetCredits(t.Context(), keyward.Change{}, k.ID, Credits(2, 0, 0), again); err != nil {
		t.Fatal(err)
	}
	spend(t, l, k, 1, again, 1, true)
	live(t, l, k.ID, again, 1, again)
}

// testTopUp: TopUpCredits adds to what remains after due refills, up to
// MaxCredits.
func testTopUp(t *testing.T, open Open) {
	s, l := open(t)
	k := NewKey(t, s, Credits(1, 5, time.Minute))
	spend(t, l, k, 1, Epoch, 0, true)
	at := Epoch.Add(time.Minute)
	got, err := l.TopUpCredits(t.Context(), k.ID, 3, at)
	if err != nil {
		t.Fatalf("TopUpCredits: %v", err)
	}
	if c := got.Credits; c == nil || c.Remaining != 8 || !c.RefilledAt.Equal(at) {
		t.Fatalf("TopUpCredits returned credits %+v; want 5 refilled + 3 = 8, refilled at %v", c, at)
	}
	spend(t, l, k, 8, at, 0, true)
	for _, n := range []int64{0, -1} {
		_, err = l.TopUpCredits(t.Context(), k.ID, n, at)
		wantCode(t, "TopUpCredits of less than 1", err, keyward.EINVALID)
	}

	if _, err := l.SetCredits(t.Context(), keyward.Change{}, k.ID, Credits(keyward.MaxCredits-1, 0, 0), at); err != nil {
		t.Fatal(err)
	}
	_, err = l.TopUpCredits(t.Context(), k.ID, 2, at)
	wantCode(t, "TopUpCredits beyond MaxCredits", err, keyward.EINVALID)
	live(t, l, k.ID, at, keyward.MaxCredits-1, at)
	if got, err := l.TopUpCredits(t.Context(), k.ID, 1, at); err != nil || got.Credits.Remaining != keyward.MaxCredits {
		t.Fatalf("TopUpCredits to MaxCredits = %+v, %v", got, err)
	}
}

// testDecrement: DecrementCredits takes from what remains after due
// refills, leaving zero (never less) when fewer remain; a key without
// credits and an amount below 1 are refused, changing nothing.
func testDecrement(t *testing.T, open Open) {
	s, l := open(t)
	k := NewKey(t, s, Credits(2, 10, time.Minute))
	spend(t, l, k, 2, Epoch, 0, true)
	at := Epoch.Add(time.Minute)
	got, err := l.DecrementCredits(t.Context(), k.ID, 3, at)
	if err != nil {
		t.Fatalf("DecrementCredits: %v", err)
	}
	if c := got.Credits; c == nil || c.Remaining != 7 || !c.RefilledAt.Equal(at) {
		t.Fatalf("DecrementCredits returned credits %+v; want 10 refilled - 3 = 7, refilled at %v", c, at)
	}
	spend(t, l, k, 7, at, 0, true)
	if _, err := l.TopUpCredits(t.Context(), k.ID, 4, at); err != nil {
		t.Fatal(err)
	}
	got, err = l.DecrementCredits(t.Context(), k.ID, 9, at)
	if err != nil || got.Credits == nil || got.Credits.Remaining != 0 {
		t.Fatalf("DecrementCredits of 9 from 4 = %+v, %v; want 0 remaining", got, err)
	}
	live(t, l, k.ID, at, 0, at)
	spend(t, l, k, 1, at, 0, false)
	stored, err := s.Key(t.Context(), k.ID)
	if err != nil || stored.Credits == nil || stored.Credits.Remaining != 0 {
		t.Fatalf("stored key after DecrementCredits: %+v, %v; want 0 remaining", stored, err)
	}
	for _, n := range []int64{0, -1} {
		_, err = l.DecrementCredits(t.Context(), k.ID, n, at)
		wantCode(t, "DecrementCredits of less than 1", err, keyward.EINVALID)
	}

	none := NewKey(t, s, nil)
	_, err = l.DecrementCredits(t.Context(), none.ID, 1, Epoch)
	wantCode(t, "DecrementCredits of a key without credits", err, keyward.EINVALID)
	if c, err := l.Credits(t.Context(), none.ID, Epoch); c != nil || err != nil {
		t.Fatalf("Credits after a refused decrement = %+v, %v; want none", c, err)
	}
}
