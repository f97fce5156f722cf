package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/prometheus/client_golang/prometheus"
)

// Read replicas (Options.Replicas): the verification cache's miss path,
// KeyByHash, reads a streaming replica when one is known to be fresh
// enough; everything else, writes and other reads, goes to the primary.
//
// Freshness is measured in WAL positions, not in seconds of replay: every
// ReplicaPoll the store reads the primary's current WAL position and each
// replica's replayed position, and a replica that has replayed past the
// position the primary had at time t has applied every change committed
// before t (its caughtUp). A lookup reads a replica only if the replica
// caught up at most ReplicaMaxLag ago and, when the context carries
// keyward.ReadAfter (the engine heard of a change of that key, a
// revocation say), at or after that time. So:
//
//   - a key not yet on the replica answers ENOTFOUND there, and the primary
//     is asked before the store says ENOTFOUND;
//   - a change the engine heard of (its own, or one of the invalidation
//     bus) is never undone by a replica that has not applied it;
//   - a replica that lags more than ReplicaMaxLag, stops replaying, is not
//     a standby or does not answer is not read until it catches up again;
//     a lookup it fails goes to the primary. Each such episode is logged
//     once, and counted in keyward_store_replica_fallbacks_total.

const (
	// DefaultReplicaMaxLag is Options.ReplicaMaxLag's default.
	DefaultReplicaMaxLag = 5 * time.Second
	// DefaultReplicaPoll is Options.ReplicaPoll's default.
	DefaultReplicaPoll = 200 * time.Millisecond
	// replicaLookupTimeout bounds one lookup on a replica, after which the
	// primary is asked: a replica that hangs costs a miss this much, and
	// is then not read until the next poll finds it answering.
	replicaLookupTimeout = 500 * time.Millisecond
	// walSamples is how many of the primary's WAL positions are kept to
	// match against the replicas' (ReplicaMaxLag over ReplicaPoll, at
	// most).
	walSamples = 256
)

// replicaSet is the replicas of a store and what is known of their lag.
type replicaSet struct {
	maxLag time.Duration
	poll   time.Duration
	log    *slog.Logger
	reps   []*replica
	next   atomic.Uint32 // round robin

	mu      sync.Mutex
	samples []walSample // the primary's WAL positions, oldest first

	stop chan struct{}
	done chan struct{}
}

// walSample is the primary's WAL position at a time.
type walSample struct {
	at  time.Time
	lsn uint64
}

// replica is one read replica.
type replica struct {
	name   string // for logs: the URL without its password
	pool   *pgxpool.Pool
	reader dialect // reads keys on pool

	caughtUp atomic.Pointer[time.Time] // nil: never
	down     atomic.Bool               // the last poll or lookup failed
	// why is the reason the replica is not read, logged once per episode
	// ("" while it is read).
	why string // under replicaSet.mu

	// lookups counts the lookups sent to the replica, misses those it did
	// not find and fallbacks those it failed (both asked of the primary).
	lookups, misses, fallbacks atomic.Uint64
}

// fresh reports whether r may answer a lookup that needs every change
// committed before need.
func (r *replica) fresh(need time.Time) bool {
	t := r.caughtUp.Load()
	return t != nil && !r.down.Load() && !t.Before(need)
}

// pick returns a replica that may answer a lookup with ctx, nil if none
// may (the primary answers).
func (rs *replicaSet) pick(ctx context.Context) *replica {
	need := time.Now().Add(-rs.maxLag)
	if t := keyward.ReadAfter(ctx); t.After(need) {
		need = t
	}
	n := uint32(len(rs.reps))
	start := rs.next.Add(1)
	for i := range n {
		if r := rs.reps[(start+i)%n]; r.fresh(need) {
			return r
		}
	}
	return nil
}

// keyByHash reads the key of hash h from a fresh replica, then from the
// primary if none is fresh, the replica has no such key or it fails.
func (s *Store) keyByHash(ctx context.Context, h keyward.KeyHash) (*keyward.Key, error) {
	r := s.replicas.pick(ctx)
	if r == nil {
		return s.Store.KeyByHash(ctx, h)
	}
	rctx, cancel := context.WithTimeout(ctx, replicaLookupTimeout)
	k, err := s.Store.KeyByHashOn(rctx, r.reader, h)
	cancel()
	r.lookups.Add(1)
	switch keyward.ErrorCode(err) {
	case "":
		return k, nil
	case keyward.ENOTFOUND:
		// Not there yet, perhaps: the primary decides.
		r.misses.Add(1)
	default:
		if ctx.Err() == nil {
			r.down.Store(true)
			r.fallbacks.Add(1)
			s.replicas.notRead(r, "a key lookup failed: "+keyward.ErrorMessage(err))
		}
	}
	return s.Store.KeyByHash(ctx, h)
}

// notRead logs, once per episode, why r is not read.
func (rs *replicaSet) notRead(r *replica, why string) {
	rs.mu.Lock()
	first := r.why == ""
	r.why = why
	rs.mu.Unlock()
	if first {
		rs.log.Warn("read replica not used: key lookups go to the primary until it catches up", "replica", r.name, "reason", why, "max_lag", rs.maxLag)
	}
}

// read logs, once, that r is read again.
func (rs *replicaSet) read(r *replica) {
	rs.mu.Lock()
	was := r.why
	r.why = ""
	rs.mu.Unlock()
	if was != "" {
		rs.log.Info("read replica used again", "replica", r.name)
	}
}

// run polls the primary and the replicas until close.
func (rs *replicaSet) run(primary *pgxpool.Pool) {
	defer close(rs.done)
	t := time.NewTicker(rs.poll)
	defer t.Stop()
	for {
		rs.pollOnce(primary)
		select {
		case <-rs.stop:
			return
		case <-t.C:
		}
	}
}

// pollOnce reads the primary's WAL position, then each replica's replayed
// position, and moves each replica's caughtUp to the newest sample it has
// replayed past.
func (rs *replicaSet) pollOnce(primary *pgxpool.Pool) {
	ctx, cancel := context.WithTimeout(context.Background(), max(rs.poll, time.Second))
	defer cancel()
	at := time.Now()
	var pos string
	if err := primary.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&pos); err == nil {
		if lsn, err := parseLSN(pos); err == nil {
			rs.mu.Lock()
			if len(rs.samples) == walSamples {
				rs.samples = append(rs.samples[:0], rs.samples[1:]...)
			}
			rs.samples = append(rs.samples, walSample{at: at, lsn: lsn})
			rs.mu.Unlock()
		}
	}
	for _, r := range rs.reps {
		var replayed *string
		err := r.pool.QueryRow(ctx, "SELECT pg_last_wal_replay_lsn()::text").Scan(&replayed)
		switch {
		case err != nil:
			r.down.Store(true)
			rs.notRead(r, "it does not answer: "+keyward.ErrorMessage(mapError(err, sqlstore.Conflicts{})))
			continue
		case replayed == nil:
			r.down.Store(true)
			rs.notRead(r, "it is not a standby (pg_last_wal_replay_lsn() is NULL): name a streaming replica")
			continue
		}
		lsn, err := parseLSN(*replayed)
		if err != nil {
			r.down.Store(true)
			rs.notRead(r, err.Error())
			continue
		}
		r.down.Store(false)
		rs.mu.Lock()
		var caught time.Time
		for _, s := range rs.samples {
			if s.lsn <= lsn {
				caught = s.at
			}
		}
		rs.mu.Unlock()
		if !caught.IsZero() {
			if old := r.caughtUp.Load(); old == nil || caught.After(*old) {
				r.caughtUp.Store(&caught)
			}
		}
		if old := r.caughtUp.Load(); old == nil || time.Since(*old) > rs.maxLag {
			rs.notRead(r, fmt.Sprintf("it lags more than %s behind the primary", rs.maxLag))
		} else {
			rs.read(r)
		}
	}
}

// parseLSN parses a WAL position as PostgreSQL writes it, XXX/YYY in hex.
func parseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if !ok || err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%q is not a WAL position", s)
	}
	return h<<32 | l, nil
}

// openReplicas opens a pool on each replica URL, reading the tables of
// schema, and starts polling them and the primary. A replica that cannot be
// reached yet is not an error: it is not read until it answers.
func openReplicas(urls []string, schema string, primary *pgxpool.Pool, opts Options) (*replicaSet, error) {
	rs := &replicaSet{maxLag: opts.ReplicaMaxLag, poll: opts.ReplicaPoll, log: opts.Logger,
		stop: make(chan struct{}), done: make(chan struct{})}
	if rs.maxLag <= 0 {
		rs.maxLag = DefaultReplicaMaxLag
	}
	if rs.poll <= 0 {
		rs.poll = DefaultReplicaPoll
	}
	if rs.log == nil {
		rs.log = slog.Default()
	}
	rs.log = rs.log.With("component", "store")
	for i, u := range urls {
		cfg, _, err := parseConfig(u, Options{Schema: schema, TracerProvider: opts.TracerProvider})
		if err != nil {
			for _, r := range rs.reps {
				r.pool.Close()
			}
			return nil, fmt.Errorf("replica %d: %w", i+1, err)
		}
		pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
		if err != nil {
			for _, r := range rs.reps {
				r.pool.Close()
			}
			return nil, fmt.Errorf("replica %d: %w", i+1, mapError(err, sqlstore.Conflicts{}))
		}
		name := fmt.Sprintf("%s:%d", cfg.ConnConfig.Host, cfg.ConnConfig.Port)
		rs.reps = append(rs.reps, &replica{name: name, pool: pool, reader: dialect{schema: schema, pool: pool}})
	}
	go rs.run(primary)
	return rs, nil
}

// close stops polling and closes the replicas' pools.
func (rs *replicaSet) close() {
	close(rs.stop)
	<-rs.done
	for _, r := range rs.reps {
		r.pool.Close()
	}
}

var (
	replicaLookupsDesc = prometheus.NewDesc("keyward_store_replica_lookups_total",
		"Key lookups (cache misses) sent to a read replica.", []string{"replica"}, nil)
	replicaMissesDesc = prometheus.NewDesc("keyward_store_replica_misses_total",
		"Key lookups a read replica did not find, asked of the primary before answering not found.", []string{"replica"}, nil)
	replicaFallbacksDesc = prometheus.NewDesc("keyward_store_replica_fallbacks_total",
		"Key lookups a read replica failed, answered by the primary instead.", []string{"replica"}, nil)
	replicaUpDesc = prometheus.NewDesc("keyward_store_replica_up",
		"1 while a read replica answers and lags at most the maximum lag behind the primary, so key lookups read it.", []string{"replica"}, nil)
	replicaLagDesc = prometheus.NewDesc("keyward_store_replica_lag_seconds",
		"How long ago a read replica had last applied every change the primary had committed (its replication lag, to within the poll interval).", []string{"replica"}, nil)
)

// Describe implements prometheus.Collector: the metrics of the read
// replicas (none without).
func (s *Store) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{replicaLookupsDesc, replicaMissesDesc, replicaFallbacksDesc, replicaUpDesc, replicaLagDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (s *Store) Collect(ch chan<- prometheus.Metric) {
	if s.replicas == nil {
		return
	}
	need := time.Now().Add(-s.replicas.maxLag)
	for _, r := range s.replicas.reps {
		up, lag := 0.0, -1.0
		if r.fresh(need) {
			up = 1
		}
		if t := r.caughtUp.Load(); t != nil {
			lag = time.Since(*t).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(replicaLookupsDesc, prometheus.CounterValue, float64(r.lookups.Load()), r.name)
		ch <- prometheus.MustNewConstMetric(replicaMissesDesc, prometheus.CounterValue, float64(r.misses.Load()), r.name)
		ch <- prometheus.MustNewConstMetric(replicaFallbacksDesc, prometheus.CounterValue, float64(r.fallbacks.Load()), r.name)
		ch <- prometheus.MustNewConstMetric(replicaUpDesc, prometheus.GaugeValue, up, r.name)
		ch <- prometheus.MustNewConstMetric(replicaLagDesc, prometheus.GaugeValue, lag, r.name)
	}
}

var _ prometheus.Collector = (*Store)(nil)
