// Package usage counts verification outcomes per key, account, code and
// minute for usage analytics and reports.
//
// An Aggregator is a keyward.SignalSink: the verification engine reports
// every failed verification and, about once a second, the valid uses of
// each key. The Aggregator adds them to counters in memory (a map increment
// under a mutex), and Flush writes the counters to the store in one
// Store.AddUsage batch. Run flushes every FlushInterval, and every
// RollUpInterval rolls the minute rows up to hours and days and deletes rows
// older than their retention.
package usage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/keyward/keyward"
)

// Defaults of Config.
const (
	DefaultFlushInterval   = 10 * time.Second
	DefaultRollUpInterval  = time.Minute
	DefaultMinuteRetention = 48 * time.Hour
	DefaultHourRetention   = 90 * 24 * time.Hour
	DefaultDayRetention    = 2 * 365 * 24 * time.Hour
	DefaultMaxPending      = 100_000
)

// Config configures an Aggregator. Zero fields take their defaults.
type Config struct {
	// FlushInterval is how often Run writes the counters to the store
	// (DefaultFlushInterval).
	FlushInterval time.Duration
	// RollUpInterval is how often Run rolls up and applies retention
	// (DefaultRollUpInterval).
	RollUpInterval time.Duration
	// Retention is how long the rows of each granularity are kept.
	Retention
	// MaxPending bounds the counters held in memory (one per minute, key,
	// account and code), also while the store fails; signals for a new
	// counter beyond it are dropped and counted (DefaultMaxPending).
	MaxPending int
	// Now is the clock (time.Now): it times signals without a time, and
	// decides what is complete enough to roll up and old enough to delete.
	Now func() time.Time
	// Logger receives flush and maintenance errors (slog.Default()).
	Logger *slog.Logger
}

// Retention is how long rows of each granularity are kept
// (DefaultMinuteRetention, DefaultHourRetention, DefaultDayRetention when
// zero; a negative value keeps rows of that granularity forever). It is
// also the usage block of keyward.yaml.
type Retention struct {
	MinuteRetention time.Duration `yaml:"minute_retention"`
	HourRetention   time.Duration `yaml:"hour_retention"`
	DayRetention    time.Duration `yaml:"day_retention"`
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	set := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	set(&c.FlushInterval, DefaultFlushInterval)
	set(&c.RollUpInterval, DefaultRollUpInterval)
	set(&c.MinuteRetention, DefaultMinuteRetention)
	set(&c.HourRetention, DefaultHourRetention)
	set(&c.DayRetention, DefaultDayRetention)
	if c.MaxPending <= 0 {
		c.MaxPending = DefaultMaxPending
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Logger = c.Logger.With("component", "usage")
	return c
}

// counter names one minute row.
type counter struct {
	minute    int64 // Unix seconds of the minute's start
	keyID     string
	accountID string
	code      keyward.Decision
}

// Aggregator counts verification outcomes in memory and writes them to a
// store. It is safe for concurrent use.
type Aggregator struct {
	store keyward.Store
	cfg   Config

	mu      sync.Mutex
	counts  map[counter]int64
	dropped int64 // counts dropped since the last Dropped call

	flushMu sync.Mutex // one Flush at a time
}

var _ keyward.SignalSink = (*Aggregator)(nil)

// New returns an Aggregator that writes to store.
func New(store keyward.Store, cfg Config) *Aggregator {
	return &Aggregator{store: store, cfg: cfg.withDefaults(), counts: make(map[counter]int64)}
}

// Signal implements keyward.SignalSink: it adds a SignalFailure (its
// Decision) or a SignalUsage (Count VALID uses) to the counter of its
// minute, key, account and code, and ignores other kinds. It never blocks
// on I/O. A signal for a new counter when MaxPending counters are held is
// dropped and counted (see Dropped).
func (a *Aggregator) Signal(s keyward.Signal) {
	code := s.Decision
	switch s.Kind {
	case keyward.SignalFailure:
	case keyward.SignalUsage:
		code = keyward.DecisionValid
	default:
		return
	}
	n := s.Count
	if n <= 0 {
		if s.Kind == keyward.SignalUsage {
			return
		}
		n = 1
	}
	at := s.At
	if at.IsZero() {
		at = a.cfg.Now()
	}
	c := counter{minute: keyward.UsageMinute.Truncate(at).Unix(), keyID: s.KeyID, accountID: s.AccountID, code: code}
	a.mu.Lock()
	a.add(c, n)
	a.mu.Unlock()
}

// add adds n to counter c, or drops it when c is new and MaxPending
// counters are held. a.mu must be held.
func (a *Aggregator) add(c counter, n int64) {
	if _, ok := a.counts[c]; !ok && len(a.counts) >= a.cfg.MaxPending {
		a.dropped += n
		return
	}
	a.counts[c] += n
}

// Dropped returns the verifications dropped (not counted) since the
// previous call because MaxPending counters were held, and resets it.
func (a *Aggregator) Dropped() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := a.dropped
	a.dropped = 0
	return n
}

// Pending returns how many counters wait for the next flush.
func (a *Aggregator) Pending() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.counts)
}

// Flush writes the counters to the store with one AddUsage call and starts
// new ones. If the write fails the counters are added back (up to
// MaxPending) for the next flush, and the error is returned.
func (a *Aggregator) Flush(ctx context.Context) error {
	a.flushMu.Lock()
	defer a.flushMu.Unlock()
	a.mu.Lock()
	counts := a.counts
	if len(counts) == 0 {
		a.mu.Unlock()
		return nil
	}
	a.counts = make(map[counter]int64, len(counts))
	a.mu.Unlock()

	rows := make([]keyward.UsageRow, 0, len(counts))
	for c, n := range counts {
		rows = append(rows, keyward.UsageRow{Start: time.Unix(c.minute, 0).UTC(), Granularity: keyward.UsageMinute,
			KeyID: c.keyID, AccountID: c.accountID, Code: c.code, Count: n})
	}
	err := a.store.AddUsage(ctx, rows)
	if err == nil {
		return nil
	}
	a.mu.Lock()
	for c, n := range counts {
		a.add(c, n)
	}
	a.mu.Unlock()
	return fmt.Errorf("usage: flush %d counters: %w", len(rows), err)
}

// Maintain rolls every minute row up to its hour and every hour row up to
// its day (Store.RollUpUsage), the current hour and day included, so hour
// and day reports are current to the last Maintain; counts added to a
// period later are added by the next one (each row records how much of it
// was rolled up). Then it deletes the rows older than their retention. Run
// calls it every RollUpInterval.
func (a *Aggregator) Maintain(ctx context.Context) error {
	now := a.cfg.Now()
	// The end of the current day: every period that has begun counts as
	// complete for RollUpUsage.
	if err := a.store.RollUpUsage(ctx, keyward.UsageDay.Truncate(now).Add(24*time.Hour)); err != nil {
		return fmt.Errorf("usage: roll up: %w", err)
	}
	var errs []error
	for _, r := range []struct {
		g    keyward.UsageGranularity
		keep time.Duration
	}{
		{keyward.UsageMinute, a.cfg.MinuteRetention},
		{keyward.UsageHour, a.cfg.HourRetention},
		{keyward.UsageDay, a.cfg.DayRetention},
	} {
		if r.keep < 0 {
			continue
		}
		n, err := a.store.DeleteUsageBefore(ctx, r.g, now.Add(-r.keep))
		if err != nil {
			errs = append(errs, fmt.Errorf("usage: retention of %s rows: %w", r.g, err))
			continue
		}
		if n > 0 {
			a.cfg.Logger.Debug("usage rows deleted by retention", "granularity", r.g, "rows", n)
		}
	}
	return errors.Join(errs...)
}

// FlushTimeout and MaintainTimeout bound Run's flushes and maintenance: a
// statement lost in a network partition (nothing tells either side) would
// otherwise hold its database connection forever. A flush that fails keeps
// its counters for the next one; maintenance is tried again at its next
// tick and goes on from where it stopped.
const (
	FlushTimeout    = 30 * time.Second
	MaintainTimeout = 2 * time.Minute
)

// finalFlushTimeout bounds the flush Run makes when its context ends.
const finalFlushTimeout = 5 * time.Second

// Run flushes every FlushInterval and calls Maintain every RollUpInterval
// until ctx ends, then flushes a last time and returns that flush's error.
// Errors along the way are logged, and the counters of a failed flush are
// kept for the next one. Call Maintain before Run for rollups that are
// current from the start.
func (a *Aggregator) Run(ctx context.Context) error {
	flush := time.NewTicker(a.cfg.FlushInterval)
	defer flush.Stop()
	maintain := time.NewTicker(a.cfg.RollUpInterval)
	defer maintain.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalFlushTimeout)
			defer cancel()
			return a.Flush(fctx)
		case <-flush.C:
			fctx, cancel := context.WithTimeout(ctx, FlushTimeout)
			a.logErr(a.Flush(fctx), "usage flush failed")
			cancel()
			if n := a.Dropped(); n > 0 {
				a.cfg.Logger.Warn("usage counts dropped: too many pending counters", "dropped", n,
					"max_pending", a.cfg.MaxPending)
			}
		case <-maintain.C:
			mctx, cancel := context.WithTimeout(ctx, MaintainTimeout)
			a.logErr(a.Maintain(mctx), "usage maintenance failed")
			cancel()
		}
	}
}

func (a *Aggregator) logErr(err error, msg string) {
	if err != nil && !errors.Is(err, context.Canceled) {
		a.cfg.Logger.Error(msg, "error", err)
	}
}
