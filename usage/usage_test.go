package usage_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/usage"
)

// clock is an injected clock the test moves by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

var day = time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)

func newAggregator(t *testing.T, s keyward.Store, cfg usage.Config) (*usage.Aggregator, *clock) {
	t.Helper()
	c := &clock{now: day.Add(10 * time.Hour)}
	cfg.Now = c.Now
	return usage.New(s, cfg), c
}

func failure(at time.Time, d keyward.Decision, keyID, accountID string) keyward.Signal {
	return keyward.Signal{Kind: keyward.SignalFailure, At: at, Decision: d, KeyID: keyID, AccountID: accountID, Count: 1}
}

func uses(at time.Time, keyID, accountID string, n int64) keyward.Signal {
	return keyward.Signal{Kind: keyward.SignalUsage, At: at, Decision: keyward.DecisionValid,
		KeyID: keyID, AccountID: accountID, Count: n}
}

// rows lists the rows of granularity g, failing the test on an error.
func rows(t *testing.T, s keyward.Store, f keyward.UsageFilter) []keyward.UsageRow {
	t.Helper()
	rs, err := s.Usage(t.Context(), f)
	if err != nil {
		t.Fatalf("Usage(%+v): %v", f, err)
	}
	return rs
}

// total sums the counts of g, optionally of one code only.
func total(t *testing.T, s keyward.Store, g keyward.UsageGranularity, code keyward.Decision) int64 {
	t.Helper()
	var n int64
	for _, r := range rows(t, s, keyward.UsageFilter{Granularity: g}) {
		if code == "" || r.Code == code {
			n += r.Count
		}
	}
	return n
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestFlushAddsUpAcrossFlushes(t *testing.T) {
	s := keywardtest.NewSQLiteStore(t)
	a, clk := newAggregator(t, s, usage.Config{})
	ctx := t.Context()
	t0 := day.Add(10*time.Hour + 5*time.Second)

	a.Signal(uses(t0, "key_a", "acc_1", 5))
	a.Signal(uses(t0.Add(30*time.Second), "key_a", "acc_1", 2)) // same minute
	a.Signal(failure(t0, keyward.DecisionRateLimited, "key_a", "acc_1"))
	a.Signal(failure(t0, keyward.DecisionNotFound, "", ""))
	a.Signal(failure(time.Time{}, keyward.DecisionMalformed, "", "")) // timed by the clock
	a.Signal(keyward.Signal{Kind: keyward.SignalNetwork, At: t0, Decision: keyward.DecisionValid, KeyID: "key_a", Count: 1})
	a.Signal(uses(t0, "key_a", "acc_1", 0))
	if got := a.Pending(); got != 4 {
		t.Fatalf("Pending() = %d, want 4 counters", got)
	}
	must(t, a.Flush(ctx))
	if got := a.Pending(); got != 0 {
		t.Fatalf("Pending() after flush = %d, want 0", got)
	}
	must(t, a.Flush(ctx)) // nothing to write

	a.Signal(uses(t0, "key_a", "acc_1", 10))
	clk.Set(t0.Add(time.Minute))
	a.Signal(uses(time.Time{}, "key_b", "acc_1", 1))
	must(t, a.Flush(ctx))

	start := day.Add(10 * time.Hour)
	want := []keyward.UsageRow{
		{Start: start, Code: keyward.DecisionMalformed, Count: 1},
		{Start: start, Code: keyward.DecisionNotFound, Count: 1},
		{Start: start, KeyID: "key_a", AccountID: "acc_1", Code: keyward.DecisionRateLimited, Count: 1},
		{Start: start, KeyID: "key_a", AccountID: "acc_1", Code: keyward.DecisionValid, Count: 17},
		{Start: start.Add(time.Minute), KeyID: "key_b", AccountID: "acc_1", Code: keyward.DecisionValid, Count: 1},
	}
	got := rows(t, s, keyward.UsageFilter{Granularity: keyward.UsageMinute})
	if len(got) != len(want) {
		t.Fatalf("minute rows = %v, want %v", got, want)
	}
	for i := range want {
		want[i].Granularity = keyward.UsageMinute
		if !got[i].Start.Equal(want[i].Start) || got[i] != want[i] {
			t.Fatalf("minute row %d = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestMaintainRollsUpAndAppliesRetention(t *testing.T) {
	s := keywardtest.NewSQLiteStore(t)
	a, clk := newAggregator(t, s, usage.Config{Retention: usage.Retention{MinuteRetention: 48 * time.Hour, HourRetention: 96 * time.Hour, DayRetention: 5 * 24 * time.Hour}})
	ctx := t.Context()

	// 10 uses in each hour of day 0 and day 1.
	for h := range 48 {
		a.Signal(uses(day.Add(time.Duration(h)*time.Hour+17*time.Minute), "key_a", "acc_1", 10))
	}
	a.Signal(failure(day.Add(5*time.Hour), keyward.DecisionNotFound, "", ""))
	must(t, a.Flush(ctx))

	clk.Set(day.Add(48*time.Hour + 10*time.Minute)) // day 2, 00:10: no minute is 48h old yet
	for range 2 {                                   // idempotent: the second run changes nothing
		must(t, a.Maintain(ctx))
		for _, g := range keyward.UsageGranularities {
			if got := total(t, s, g, keyward.DecisionValid); got != 480 {
				t.Fatalf("%s total of VALID = %d, want 480", g, got)
			}
			if got := total(t, s, g, keyward.DecisionNotFound); got != 1 {
				t.Fatalf("%s total of NOT_FOUND = %d, want 1", g, got)
			}
		}
		if got := len(rows(t, s, keyward.UsageFilter{Granularity: keyward.UsageDay})); got != 3 {
			t.Fatalf("day rows = %d, want 3 (two days of key_a, one of NOT_FOUND)", got)
		}
	}

	// Day 3, 12:00: minutes before day 1 12:00 go, hours and days stay.
	clk.Set(day.Add(72*time.Hour + 12*time.Hour))
	must(t, a.Maintain(ctx))
	if got := total(t, s, keyward.UsageMinute, ""); got != 120 {
		t.Fatalf("minute total after retention = %d, want 120 (day 1 from 12:00)", got)
	}
	for _, g := range []keyward.UsageGranularity{keyward.UsageHour, keyward.UsageDay} {
		if got := total(t, s, g, ""); got != 481 {
			t.Fatalf("%s total after minute retention = %d, want 481", g, got)
		}
	}

	// Day 6: every hour (days 0 and 1) is older than 96h; days are kept 5 days, so day 0 goes.
	clk.Set(day.Add(6 * 24 * time.Hour))
	must(t, a.Maintain(ctx))
	if got := total(t, s, keyward.UsageHour, ""); got != 0 {
		t.Fatalf("hour total after hour retention = %d, want 0", got)
	}
	if got := total(t, s, keyward.UsageDay, ""); got != 240 {
		t.Fatalf("day total after day retention = %d, want 240 (day 1 only)", got)
	}
}

func TestRetentionNegativeKeepsForever(t *testing.T) {
	s := keywardtest.NewSQLiteStore(t)
	a, clk := newAggregator(t, s, usage.Config{Retention: usage.Retention{MinuteRetention: -1}})
	a.Signal(uses(day, "key_a", "acc_1", 3))
	must(t, a.Flush(t.Context()))
	clk.Set(day.Add(365 * 24 * time.Hour))
	must(t, a.Maintain(t.Context()))
	if got := total(t, s, keyward.UsageMinute, ""); got != 3 {
		t.Fatalf("minute total = %d, want 3: negative retention keeps rows", got)
	}
}

// failingStore fails AddUsage while fail is set.
type failingStore struct {
	keyward.Store
	fail  atomic.Bool
	calls atomic.Int64
}

func (s *failingStore) AddUsage(ctx context.Context, rows []keyward.UsageRow) error {
	s.calls.Add(1)
	if s.fail.Load() {
		return keyward.Errorf(keyward.EUNAVAILABLE, "database unavailable")
	}
	return s.Store.AddUsage(ctx, rows)
}

func TestFailedFlushKeepsCounts(t *testing.T) {
	s := &failingStore{Store: keywardtest.NewSQLiteStore(t)}
	a, _ := newAggregator(t, s, usage.Config{MaxPending: 3})
	ctx := t.Context()
	t0 := day.Add(10 * time.Hour)

	a.Signal(uses(t0, "key_a", "acc_1", 5))
	a.Signal(failure(t0, keyward.DecisionRevoked, "key_b", "acc_1"))
	s.fail.Store(true)
	err := a.Flush(ctx)
	if keyward.ErrorCode(err) != keyward.EUNAVAILABLE {
		t.Fatalf("Flush with a failing store = %v, want EUNAVAILABLE", err)
	}
	a.Signal(uses(t0, "key_a", "acc_1", 1))                  // adds to a kept counter
	a.Signal(uses(t0.Add(time.Minute), "key_c", "acc_1", 2)) // the third counter
	a.Signal(uses(t0.Add(time.Minute), "key_d", "acc_1", 4)) // over MaxPending: dropped
	if err := a.Flush(ctx); err == nil {
		t.Fatal("second Flush with a failing store succeeded")
	}
	if got := a.Pending(); got != 3 {
		t.Fatalf("Pending() = %d, want 3 (MaxPending)", got)
	}
	if got := a.Dropped(); got != 4 {
		t.Fatalf("Dropped() = %d, want 4", got)
	}
	if got := a.Dropped(); got != 0 {
		t.Fatalf("Dropped() after reset = %d, want 0", got)
	}

	s.fail.Store(false)
	must(t, a.Flush(ctx))
	if got := total(t, s, keyward.UsageMinute, ""); got != 9 {
		t.Fatalf("minute total after recovery = %d, want 9 (5+1 valid, 1 revoked, 2 valid)", got)
	}
	if got := s.calls.Load(); got != 3 {
		t.Fatalf("AddUsage called %d times, want one per flush (3)", got)
	}
}

// TestFloodOfKeysStaysBounded: signals of many distinct made-up keys and
// accounts between two flushes hold at most MaxPending counters; the rest
// are dropped and counted.
func TestFloodOfKeysStaysBounded(t *testing.T) {
	a, _ := newAggregator(t, keywardtest.NewSQLiteStore(t), usage.Config{MaxPending: 100})
	t0 := day.Add(10 * time.Hour)
	for i := range 5000 {
		a.Signal(uses(t0, fmt.Sprintf("key_%d", i), fmt.Sprintf("acc_%d", i), 1))
		a.Signal(failure(t0, keyward.DecisionRevoked, fmt.Sprintf("key_r%d", i), "acc_1"))
		if got := a.Pending(); got > 100 {
			t.Fatalf("after %d keys Pending() = %d, over MaxPending 100", i+1, got)
		}
	}
	if got := a.Dropped(); got != 2*5000-100 {
		t.Errorf("Dropped() = %d, want %d", got, 2*5000-100)
	}
}

func TestConcurrentSignalsAndFlushes(t *testing.T) {
	s := keywardtest.NewSQLiteStore(t)
	a, _ := newAggregator(t, s, usage.Config{})
	ctx := t.Context()
	const goroutines, perG = 16, 500
	t0 := day.Add(10 * time.Hour)

	var wg sync.WaitGroup
	done := make(chan struct{})
	flushed := make(chan error, 1)
	go func() {
		var err error
		for {
			select {
			case <-done:
				flushed <- err
				return
			default:
			}
			err = errors.Join(err, a.Flush(ctx))
		}
	}()
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := []string{"key_a", "key_b", "key_c"}[g%3]
			for i := range perG {
				at := t0.Add(time.Duration(i%5) * time.Minute)
				if i%2 == 0 {
					a.Signal(uses(at, key, "acc_1", 2))
				} else {
					a.Signal(failure(at, keyward.DecisionRateLimited, key, "acc_1"))
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	must(t, <-flushed)
	must(t, a.Flush(ctx))

	if got, want := total(t, s, keyward.UsageMinute, keyward.DecisionValid), int64(goroutines*perG/2*2); got != want {
		t.Fatalf("VALID total = %d, want %d", got, want)
	}
	if got, want := total(t, s, keyward.UsageMinute, keyward.DecisionRateLimited), int64(goroutines*perG/2); got != want {
		t.Fatalf("RATE_LIMITED total = %d, want %d", got, want)
	}
}

func TestRunFlushesAndFlushesOnStop(t *testing.T) {
	s := keywardtest.NewSQLiteStore(t)
	a, _ := newAggregator(t, s, usage.Config{FlushInterval: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()

	a.Signal(uses(day, "key_a", "acc_1", 1))
	deadline := time.Now().Add(5 * time.Second)
	for total(t, s, keyward.UsageMinute, "") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("Run did not flush within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	a.Signal(uses(day, "key_a", "acc_1", 2))
	cancel()
	must(t, <-done)
	if got := total(t, s, keyward.UsageMinute, ""); got != 3 {
		t.Fatalf("minute total after Run stopped = %d, want 3: Run flushes when it stops", got)
	}
}

// recorder is a SignalSink that records what it is given.
type recorder struct{ got []keyward.Signal }

func (r *recorder) Signal(s keyward.Signal) { r.got = append(r.got, s) }

func TestTee(t *testing.T) {
	if usage.Tee() != nil || usage.Tee(nil, nil) != nil {
		t.Fatal("Tee of no sinks is not nil")
	}
	one := &recorder{}
	if usage.Tee(nil, one) != keyward.SignalSink(one) {
		t.Fatal("Tee of one sink does not return it")
	}
	r1, r2 := &recorder{}, &recorder{}
	sig := failure(day, keyward.DecisionNotFound, "", "")
	usage.Tee(r1, nil, r2).Signal(sig)
	if len(r1.got) != 1 || len(r2.got) != 1 || r1.got[0] != sig || r2.got[0] != sig {
		t.Fatalf("Tee delivered %v and %v, want the signal once to each", r1.got, r2.got)
	}
}

// The current hour and day are rolled up too, so hour and day reports are
// current; later uses in the same hour are added by the next Maintain.
func TestMaintainIncludesTheCurrentPeriod(t *testing.T) {
	s := keywardtest.NewSQLiteStore(t)
	a, clk := newAggregator(t, s, usage.Config{})
	ctx := t.Context()
	clk.Set(day.Add(10*time.Hour + 5*time.Minute))
	a.Signal(uses(clk.Now(), "key_a", "acc_1", 3))
	must(t, a.Flush(ctx))
	must(t, a.Maintain(ctx))
	for _, g := range []keyward.UsageGranularity{keyward.UsageHour, keyward.UsageDay} {
		if got := total(t, s, g, keyward.DecisionValid); got != 3 {
			t.Fatalf("%s total in the current period = %d, want 3", g, got)
		}
	}
	clk.Set(day.Add(10*time.Hour + 40*time.Minute))
	a.Signal(uses(clk.Now(), "key_a", "acc_1", 4))
	must(t, a.Flush(ctx))
	must(t, a.Maintain(ctx))
	for _, g := range keyward.UsageGranularities {
		if got := total(t, s, g, keyward.DecisionValid); got != 7 {
			t.Fatalf("%s total after more uses in the same hour = %d, want 7", g, got)
		}
	}
}
