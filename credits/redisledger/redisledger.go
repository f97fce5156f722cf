// Package redisledger is the keyward.CreditLedger shared by every keyward
// instance through Redis: a key's live credit count is a counter in Redis,
// spent by one Lua script, atomically on the server, and written back to
// the store in batches. Once a counter exists, Redis decides; the store is
// its persistence.
//
// Counters. A key's counter is a hash at <prefix>{<key id>} with fields r
// (remaining), t (the start of the refill period, Unix microseconds) and v
// (a version, bumped by every change). The braces are a Cluster hash tag.
// Only the count lives there: the refill settings come from the key (the
// caller's snapshot for a spend, the store otherwise). A spend that finds no
// counter reads the key afresh from the store and creates the counter from
// it, unless another instance created it meanwhile. A counter expires after
// Options.IdleTTL without a spend; it is written back long before.
//
// Write-back. The ledger remembers the keys whose counters changed, and
// every Options.FlushInterval (and on Close) reads those counters in one
// pipeline and hands them to Store.WriteCredits, which keeps only versions
// newer than its own: write-backs of several instances, in any order, leave
// the store with the latest count. Setting and topping up credits write the
// store at once.
//
// Time. The scripts use the caller's now (its injected clock), not Redis
// TIME: instances' clocks must agree to within a small part of the refill
// interval, which NTP gives.
//
// Failure. Every Redis error (unreachable, timeout, ctx ended) is returned
// as EUNAVAILABLE and nothing is spent or admitted. If Redis loses its data
// (a restart without persistence, a failover to a replica behind), the
// counters are created again from the store, which lags by at most one
// write-back interval: the spends of that interval are admitted again. An
// instance killed before its write-back loses nothing: its spends are in
// Redis, and the next spend of the key, on any instance, marks the counter
// for that instance's write-back (a key never spent again keeps the count
// in Redis until it expires, and the store's older one after). If the store
// is unreachable for longer than IdleTTL, expired counters fall back to the
// store's older count in the same way.
package redisledger

import (
	"context"
	_ "embed"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/credits"
	goredis "github.com/redis/go-redis/v9"
)

// Defaults of Options.
const (
	DefaultPrefix        = "keyward:cr:"
	DefaultFlushInterval = time.Second
	DefaultIdleTTL       = 24 * time.Hour
)

// flushTimeout bounds one write-back, of the background loop or of Close.
const flushTimeout = 10 * time.Second

// flushBatch is how many counters one write-back reads and writes at once.
const flushBatch = 1000

var (
	//go:embed apply.lua
	applySource string
	//go:embed set.lua
	setSource string
	//go:embed spendlevels.lua
	spendLevelsSource string
)

// The scripts are sent with EVALSHA, and with EVAL once after a NOSCRIPT (a
// new or restarted server).
var (
	applyScript = goredis.NewScript(applySource)
	setScript   = goredis.NewScript(setSource)
	spendLevels = goredis.NewScript(spendLevelsSource)
)

// Options configures a Ledger. The zero value is ready to use.
type Options struct {
	// Prefix is the key prefix of the counters in Redis; "" means
	// DefaultPrefix. It must not hold '{' or '}'.
	Prefix string
	// FlushInterval is how often changed counters are written back to the
	// store; 0 means DefaultFlushInterval.
	FlushInterval time.Duration
	// IdleTTL is how long a counter stays in Redis after its last spend;
	// 0 means DefaultIdleTTL. It must be at least ten times FlushInterval,
	// so a counter is written back long before it expires.
	IdleTTL time.Duration
	// Logger logs failed write-backs; it defaults to slog.Default().
	Logger *slog.Logger
}

// Ledger is a keyward.CreditLedger on Redis. Safe for concurrent use. Close
// it to stop the write-back loop and write back what is left.
type Ledger struct {
	client goredis.UniversalClient
	store  keyward.Store
	prefix string
	ttlMS  int64
	log    *slog.Logger

	mu    sync.Mutex
	dirty map[holder]struct{} // holders whose counters changed since the last write-back

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

var _ keyward.CreditLedger = (*Ledger)(nil)

// New returns a Ledger counting in client and writing back to store, and
// starts its write-back loop. It closes neither client nor store. EINVALID
// if opts are.
func New(client goredis.UniversalClient, store keyward.Store, opts Options) (*Ledger, error) {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.FlushInterval == 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.IdleTTL == 0 {
		opts.IdleTTL = DefaultIdleTTL
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	switch {
	case strings.ContainsAny(opts.Prefix, "{}"):
		return nil, keyward.Errorf(keyward.EINVALID, "redisledger: key prefix %q must not contain '{' or '}'", opts.Prefix)
	case opts.FlushInterval < 0:
		return nil, keyward.Errorf(keyward.EINVALID, "redisledger: flush interval must be positive, got %v", opts.FlushInterval)
	case opts.IdleTTL < 10*opts.FlushInterval:
		return nil, keyward.Errorf(keyward.EINVALID, "redisledger: idle TTL %v must be at least ten times the flush interval %v: raise the TTL or shorten the interval", opts.IdleTTL, opts.FlushInterval)
	}
	l := &Ledger{
		client: client,
		store:  store,
		prefix: opts.Prefix,
		ttlMS:  max(1, opts.IdleTTL.Milliseconds()),
		log:    opts.Logger.With("component", "redisledger"),
		dirty:  make(map[holder]struct{}),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go l.loop(opts.FlushInterval)
	return l, nil
}

// counter is the state of a key's counter after a script.
type counter struct {
	applied bool // the delta was applied
	keyward.Credits
}

// Spend implements keyward.CreditLedger. k's refill settings apply to the
// counter; a k without credits spends nothing and reaches no Redis.
func (l *Ledger) Spend(ctx context.Context, k *keyward.Key, cost int64, now time.Time) (int64, bool, error) {
	if k.Credits == nil {
		return 0, true, nil
	}
	if err := credits.CheckCost(cost); err != nil {
		return 0, false, err
	}
	c, err := l.apply(ctx, k.ID, k.Credits.Refill, delta{n: -cost}, now, nil)
	if err != nil {
		return 0, false, err
	}
	if c == nil {
		return 0, true, nil
	}
	return c.Remaining, c.applied, nil
}

// apply runs the apply script on keyID's counter. When the counter does not
// exist it is created from init or, with init nil, from the key as the store
// holds it (whose refill settings then apply). It returns nil when the key
// has no credits in the store.
func (l *Ledger) apply(ctx context.Context, keyID string, refill *keyward.CreditRefill, d delta, now time.Time, init *keyward.Credits) (*counter, error) {
	c, err := l.runApply(ctx, keyID, refill, d, now, init)
	if err != nil || c != nil {
		return c, err
	}
	k, err := l.store.Key(ctx, keyID)
	if err != nil {
		return nil, fmt.Errorf("redisledger: read key %s to create its credit counter: %w", keyID, err)
	}
	if k.Credits == nil {
		return nil, nil
	}
	c, err = l.runApply(ctx, keyID, k.Credits.Refill, d, now, k.Credits)
	if err == nil && c == nil {
		err = keyward.Errorf(keyward.EINTERNAL, "redisledger: the counter of key %s was not created", keyID)
	}
	return c, err
}

// delta is what the apply script adds to a counter: n, negative for a
// spend; with clamp, a negative n larger than what remains leaves zero.
type delta struct {
	n     int64
	clamp bool
}

// runApply runs the apply script once; nil without error means the counter
// does not exist and init is nil.
func (l *Ledger) runApply(ctx context.Context, keyID string, refill *keyward.CreditRefill, d delta, now time.Time, init *keyward.Credits) (*counter, error) {
	amount, interval, start := refillArgs(refill, now)
	clamp := 0
	if d.clamp {
		clamp = 1
	}
	args := make([]any, 8, 11)
	args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7] = d.n, now.UnixMicro(), amount, interval, l.ttlMS, int64(keyward.MaxCredits), clamp, start
	if init != nil {
		args = append(args, init.Remaining, init.RefilledAt.UnixMicro(), init.Version)
	}
	res, err := applyScript.Run(ctx, l.client, []string{l.key(keyID)}, args...).Int64Slice()
	if err != nil {
		return nil, unavailable(err, keyID)
	}
	if len(res) == 1 && res[0] == -1 {
		return nil, nil
	}
	if len(res) != 5 {
		return nil, keyward.WrapError(keyward.EINTERNAL, fmt.Errorf("script returned %d values, want 5", len(res)), "redisledger: credits of key %s", keyID)
	}
	if res[4] == 1 {
		l.markDirty(holder{keyward.LevelKey, keyID, ""})
	}
	return &counter{
		applied: res[0] == 1,
		Credits: keyward.Credits{Remaining: res[1], RefilledAt: time.UnixMicro(res[2]).UTC(), Version: res[3]},
	}, nil
}

// refillArgs returns refill r as the scripts take it at now: its amount (0
// for none), its interval in µs (0 for a monthly refill) and, for a
// monthly refill, the start of the period holding now in Unix µs
// (keyward.CreditRefill.PeriodStart; 0 otherwise).
func refillArgs(r *keyward.CreditRefill, now time.Time) (amount, interval, start int64) {
	switch {
	case r == nil:
		return 0, 0, 0
	case r.Day != 0:
		return r.Amount, 0, r.PeriodStart(now).UnixMicro()
	}
	return r.Amount, time.Duration(r.Interval).Microseconds(), 0
}

// unavailable returns the EUNAVAILABLE of a Redis error about the counter
// of keyID.
func unavailable(err error, keyID string) error {
	return keyward.WrapError(keyward.EUNAVAILABLE, err, "redisledger: Redis is unavailable to count the credits of key %s: try again", keyID)
}

// key returns the Redis key of keyID's counter.
func (l *Ledger) key(keyID string) string { return l.prefix + "{" + keyID + "}" }

// holder names a counter: a key's (Level LevelKey, ID its id), or a user's
// or account's meter (ID its id, AccountID its account's).
type holder struct {
	Level         keyward.LimitLevel
	ID, AccountID string
}

// counterKey returns the Redis key of h's counter: a key's at
// <prefix>{<key id>}, a meter's at <prefix>{<account id>}:<id>, so the
// counters of a user and of its account share a hash slot.
func (l *Ledger) counterKey(h holder) string {
	if h.Level == keyward.LevelUser || h.Level == keyward.LevelAccount {
		return l.prefix + "{" + h.AccountID + "}:" + h.ID
	}
	return l.key(h.ID)
}

// markDirty marks h's counter for the next write-back.
func (l *Ledger) markDirty(h holder) {
	l.mu.Lock()
	l.dirty[h] = struct{}{}
	l.mu.Unlock()
}

// Credits implements keyward.CreditLedger: the counter in Redis if there is
// one, else the store's credits, with the refills due at now applied.
func (l *Ledger) Credits(ctx context.Context, keyID string, now time.Time) (*keyward.Credits, error) {
	k, err := l.store.Key(ctx, keyID)
	if err != nil {
		return nil, fmt.Errorf("redisledger: credits of key %s: %w", keyID, err)
	}
	if k.Credits == nil {
		return nil, nil
	}
	vals, err := l.client.HMGet(ctx, l.key(keyID), "r", "t", "v").Result()
	if err != nil {
		return nil, unavailable(err, keyID)
	}
	c := *k.Credits
	if w, ok, err := parseCounter(keyID, vals); err != nil {
		return nil, err
	} else if ok {
		c.Remaining, c.RefilledAt, c.Version = w.Remaining, w.RefilledAt, w.Version
	}
	c = c.At(now)
	return &c, nil
}

// SetCredits implements keyward.CreditLedger. EINVALID if c does not
// validate. The counter is set first, then the store.
func (l *Ledger) SetCredits(ctx context.Context, ch keyward.Change, keyID string, c *keyward.Credits, now time.Time) (*keyward.Key, error) {
	if c != nil {
		if err := c.Validate(); err != nil {
			return nil, err
		}
	}
	k, err := l.store.Key(ctx, keyID)
	if err != nil {
		return nil, fmt.Errorf("redisledger: set credits of key %s: %w", keyID, err)
	}
	if c == nil {
		// A spend racing with the removal may create the counter again
		// from the store; it is then unused (the key has no credits) and
		// overwritten by the next set.
		if err := l.client.Del(ctx, l.key(keyID)).Err(); err != nil {
			return nil, unavailable(err, keyID)
		}
		return l.updateKey(ctx, ch, keyID, func(k *keyward.Key) { k.Credits = nil })
	}
	var floor int64
	if k.Credits != nil {
		floor = k.Credits.Version
	}
	floor = credits.NextVersion(floor, now) - 1
	v, err := setScript.Run(ctx, l.client, []string{l.key(keyID)}, c.Remaining, now.UnixMicro(), floor, l.ttlMS).Int64()
	if err != nil {
		return nil, unavailable(err, keyID)
	}
	return l.updateKey(ctx, ch, keyID, func(k *keyward.Key) {
		set := credits.Fresh(c, now, v)
		if old := k.Credits; old != nil && old.Version > v {
			// A write-back of spends after the set got here first.
			set.Remaining, set.RefilledAt, set.Version = old.Remaining, old.RefilledAt, old.Version
		}
		k.Credits = set
	})
}

// updateKey applies fn to the stored key, recording ch with it.
func (l *Ledger) updateKey(ctx context.Context, ch keyward.Change, keyID string, fn func(*keyward.Key)) (*keyward.Key, error) {
	k, err := l.store.UpdateKey(ctx, ch, keyID, func(k *keyward.Key) error {
		fn(k)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redisledger: set credits of key %s: %w", keyID, err)
	}
	return k, nil
}

// TopUpCredits implements keyward.CreditLedger. The counter is topped up,
// then written back at once; if that write-back fails the top-up stands
// (Redis holds it) and the write-back loop retries it.
func (l *Ledger) TopUpCredits(ctx context.Context, keyID string, n int64, now time.Time) (*keyward.Key, error) {
	if n < 1 {
		return nil, credits.CheckTopUp(keyID, nil, n)
	}
	k, err := l.store.Key(ctx, keyID)
	if err != nil {
		return nil, fmt.Errorf("redisledger: top up key %s: %w", keyID, err)
	}
	if k.Credits == nil {
		return nil, credits.CheckTopUp(keyID, nil, n)
	}
	c, err := l.apply(ctx, keyID, k.Credits.Refill, delta{n: n}, now, k.Credits)
	if err != nil {
		return nil, err
	}
	if !c.applied {
		return nil, credits.CheckTopUp(keyID, &c.Credits, n)
	}
	k.Credits.Remaining, k.Credits.RefilledAt, k.Credits.Version = c.Remaining, c.RefilledAt, c.Version
	w := keyward.CreditWrite{KeyID: keyID, Remaining: c.Remaining, RefilledAt: c.RefilledAt, Version: c.Version}
	if err := l.store.WriteCredits(ctx, []keyward.CreditWrite{w}); err != nil {
		l.log.Warn("write back topped up credits; retrying in the background", "key_id", keyID, "err", err)
	}
	return k, nil
}

// DecrementCredits implements keyward.CreditLedger. The counter is
// decremented, then written back at once, as TopUpCredits does.
func (l *Ledger) DecrementCredits(ctx context.Context, keyID string, n int64, now time.Time) (*keyward.Key, error) {
	if n < 1 || n > keyward.MaxCredits {
		return nil, credits.CheckDecrement(keyID, nil, n)
	}
	k, err := l.store.Key(ctx, keyID)
	if err != nil {
		return nil, fmt.Errorf("redisledger: decrement key %s: %w", keyID, err)
	}
	if k.Credits == nil {
		return nil, credits.CheckDecrement(keyID, nil, n)
	}
	c, err := l.apply(ctx, keyID, k.Credits.Refill, delta{n: -n, clamp: true}, now, k.Credits)
	if err != nil {
		return nil, err
	}
	k.Credits.Remaining, k.Credits.RefilledAt, k.Credits.Version = c.Remaining, c.RefilledAt, c.Version
	w := keyward.CreditWrite{KeyID: keyID, Remaining: c.Remaining, RefilledAt: c.RefilledAt, Version: c.Version}
	if err := l.store.WriteCredits(ctx, []keyward.CreditWrite{w}); err != nil {
		l.log.Warn("write back decremented credits; retrying in the background", "key_id", keyID, "err", err)
	}
	return k, nil
}

// RefillCredits applies the refills due at now to the key's counter in
// Redis, creating it from the store if it is absent, and writes the
// counter back at once, so that reads of the store (key lists) show them;
// spends apply them anyway. The refill happens in Redis, which decides,
// and reaches the store as a versioned write-back like any spend, so it
// never undoes a spend nor refills twice. A counter with no refill due but
// ahead of the store (its instance stopped before writing it back) is
// written back. It reports whether a refill was due.
func (l *Ledger) RefillCredits(ctx context.Context, keyID string, now time.Time) (bool, error) {
	k, err := l.store.Key(ctx, keyID)
	if err != nil {
		return false, fmt.Errorf("redisledger: refill key %s: %w", keyID, err)
	}
	if k.Credits == nil || k.Credits.Refill == nil {
		return false, nil
	}
	vals, err := l.client.HMGet(ctx, l.key(keyID), "r", "t", "v").Result()
	if err != nil {
		return false, unavailable(err, keyID)
	}
	w, ok, err := parseCounter(keyID, vals)
	if err != nil {
		return false, err
	}
	live := *k.Credits
	if ok {
		live.Remaining, live.RefilledAt, live.Version = w.Remaining, w.RefilledAt, w.Version
	}
	due := !live.At(now).RefilledAt.Equal(live.RefilledAt)
	if due {
		c, err := l.apply(ctx, keyID, k.Credits.Refill, delta{}, now, k.Credits)
		if err != nil {
			return false, err
		}
		w, ok = keyward.CreditWrite{KeyID: keyID, Remaining: c.Remaining, RefilledAt: c.RefilledAt, Version: c.Version}, true
	}
	if ok && w.Version > k.Credits.Version {
		if err := l.store.WriteCredits(ctx, []keyward.CreditWrite{w}); err != nil {
			return due, fmt.Errorf("redisledger: write back the refill of key %s: %w", keyID, err)
		}
	}
	return due, nil
}

// parseCounter reads the HMGET r t v of keyID's counter; ok is false if
// the counter does not exist.
func parseCounter(keyID string, vals []any) (w keyward.CreditWrite, ok bool, err error) {
	if len(vals) != 3 || vals[0] == nil {
		return w, false, nil
	}
	var n [3]int64
	for i, v := range vals {
		s, _ := v.(string)
		if n[i], err = strconv.ParseInt(s, 10, 64); err != nil {
			return w, false, keyward.WrapError(keyward.EINTERNAL, err, "redisledger: the counter of key %s holds %q", keyID, vals)
		}
	}
	return keyward.CreditWrite{KeyID: keyID, Remaining: n[0], RefilledAt: time.UnixMicro(n[1]).UTC(), Version: n[2]}, true, nil
}

// Flush writes the changed counters back to the store now. On an error the
// counters not written stay marked for the next write-back. The write-back
// loop and Close call it; tests may too.
func (l *Ledger) Flush(ctx context.Context) error {
	l.mu.Lock()
	ids := make([]holder, 0, len(l.dirty))
	for id := range l.dirty {
		ids = append(ids, id)
	}
	clear(l.dirty)
	l.mu.Unlock()
	for i := 0; i < len(ids); i += flushBatch {
		batch := ids[i:min(i+flushBatch, len(ids))]
		if err := l.flush(ctx, batch); err != nil {
			l.mu.Lock()
			for _, id := range ids[i:] {
				l.dirty[id] = struct{}{}
			}
			l.mu.Unlock()
			return err
		}
	}
	return nil
}

// flush writes the counters of ids back to the store.
func (l *Ledger) flush(ctx context.Context, ids []holder) error {
	cmds := make([]*goredis.SliceCmd, len(ids))
	_, err := l.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HMGet(ctx, l.counterKey(id), "r", "t", "v")
		}
		return nil
	})
	if err != nil {
		return keyward.WrapError(keyward.EUNAVAILABLE, err, "redisledger: Redis is unavailable to read %d credit counters to write back", len(ids))
	}
	writes := make([]keyward.CreditWrite, 0, len(ids))
	for i, id := range ids {
		w, ok, err := parseCounter(id.ID, cmds[i].Val())
		if err != nil {
			return err
		}
		if ok {
			if id.Level != keyward.LevelKey {
				w.Level = id.Level
			}
			writes = append(writes, w)
		}
	}
	if err := l.store.WriteCredits(ctx, writes); err != nil {
		return fmt.Errorf("redisledger: write back %d counters: %w", len(writes), err)
	}
	return nil
}

// loop writes back every interval until Close.
func (l *Ledger) loop(interval time.Duration) {
	defer close(l.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
			if err := l.Flush(ctx); err != nil {
				l.log.Warn("write back credits; retrying at the next interval", "err", err)
			}
			cancel()
		}
	}
}

// Close stops the write-back loop and writes back the changed counters,
// giving up after ten seconds. It closes neither the client nor the store.
// The Ledger must not be used afterwards.
func (l *Ledger) Close() error {
	l.closeOnce.Do(func() {
		close(l.stop)
		<-l.done
		ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
		defer cancel()
		l.closeErr = l.Flush(ctx)
	})
	return l.closeErr
}
