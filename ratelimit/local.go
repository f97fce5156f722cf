package ratelimit

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	"github.com/keyward/keyward"
)

// DefaultMaxBuckets is the bound of a Local when LocalOptions sets none:
// about 100 MB of buckets at most.
const DefaultMaxBuckets = 1 << 20

// numShards is a power of two; the buckets of one key share a shard so
// that AllowAll takes one lock.
const numShards = 64

// LocalOptions configures NewLocal.
type LocalOptions struct {
	// MaxBuckets bounds how many (key, limit name) buckets are held; 0
	// means DefaultMaxBuckets. A bucket that has refilled completely holds
	// no information and is dropped whenever room is needed, so the
	// engine stays exact as long as fewer than MaxBuckets buckets are
	// partly spent; beyond that, some partly spent buckets are dropped at
	// random and their keys start again with a full burst.
	MaxBuckets int
}

// Local is the in-process Limiter: exact for one instance, and nothing is
// shared with other instances (each admits the full limit). It runs no
// goroutine: idle buckets are dropped when a shard is full. Deciding for an
// existing bucket does not allocate. Safe for concurrent use.
type Local struct {
	seed     maphash.Seed
	perShard int
	shards   [numShards]shard
}

type shard struct {
	mu sync.Mutex
	// m maps a bucket to its theoretical arrival time, in Unix
	// nanoseconds: the time at which it is full again.
	m map[bucketID]int64
	_ [48]byte // keeps shards on separate cache lines
}

type bucketID struct{ key, name string }

var _ Limiter = (*Local)(nil)

// NewLocal returns an empty Local.
func NewLocal(opts LocalOptions) *Local {
	n := opts.MaxBuckets
	if n <= 0 {
		n = DefaultMaxBuckets
	}
	l := &Local{seed: maphash.MakeSeed(), perShard: max(1, n/numShards)}
	for i := range l.shards {
		l.shards[i].m = make(map[bucketID]int64)
	}
	return l
}

func (l *Local) shard(key string) *shard { return &l.shards[l.shardIndex(key)] }

func (l *Local) shardIndex(key string) uint64 { return maphash.String(l.seed, key) & (numShards - 1) }

// Allow implements Limiter. It never returns EUNAVAILABLE.
func (l *Local) Allow(ctx context.Context, key string, limit keyward.RateLimit, cost int64, now time.Time) (Decision, error) {
	if err := Check(limit, cost); err != nil {
		return Decision{}, err
	}
	interval := int64(limit.Window) / limit.Limit
	id := bucketID{key, limit.Name}
	t := now.UnixNano()
	s := l.shard(key)
	s.mu.Lock()
	tat, ok := s.m[id]
	newTAT, allowed, remaining, reset, retry := gcra(tat, t, interval, limit.Limit, cost)
	if allowed {
		l.store(s, id, ok, newTAT, t)
	}
	s.mu.Unlock()
	return Decision{Limit: limit, Allowed: allowed, Remaining: remaining,
		ResetAfter: time.Duration(reset), RetryAfter: time.Duration(retry)}, nil
}

// AllowAll implements Limiter. It never returns EUNAVAILABLE.
func (l *Local) AllowAll(ctx context.Context, key string, limits []keyward.RateLimit, cost int64, now time.Time, dst []Decision) ([]Decision, bool, error) {
	for _, lim := range limits {
		if err := Check(lim, cost); err != nil {
			return dst, false, err
		}
	}
	t := now.UnixNano()
	first := len(dst)
	all := true
	s := l.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, lim := range limits {
		tat := s.m[bucketID{key, lim.Name}]
		_, allowed, remaining, reset, retry := gcra(tat, t, int64(lim.Window)/lim.Limit, lim.Limit, cost)
		all = all && allowed
		dst = append(dst, Decision{Limit: lim, Allowed: allowed, Remaining: remaining,
			ResetAfter: time.Duration(reset), RetryAfter: time.Duration(retry)})
	}
	if !all {
		// Nothing is consumed: a limit that admitted reports its bucket
		// as it is.
		for i, lim := range limits {
			if d := &dst[first+i]; d.Allowed {
				tat := s.m[bucketID{key, lim.Name}]
				remaining, reset := unspent(tat, t, int64(lim.Window)/lim.Limit, lim.Limit)
				d.Remaining, d.ResetAfter = remaining, time.Duration(reset)
			}
		}
		return dst, false, nil
	}
	// Commit: decide again from the same state (nothing changed under the
	// lock), keeping the new theoretical arrival times.
	for _, lim := range limits {
		id := bucketID{key, lim.Name}
		tat, ok := s.m[id]
		newTAT, _, _, _, _ := gcra(tat, t, int64(lim.Window)/lim.Limit, lim.Limit, cost)
		l.store(s, id, ok, newTAT, t)
	}
	return dst, true, nil
}

// AllowLevels implements Limiter. It locks the shards of every level, in
// shard order, so the decision is atomic across levels. It never returns
// EUNAVAILABLE.
func (l *Local) AllowLevels(ctx context.Context, group string, levels []Level, cost int64, now time.Time, dst []Decision) ([]Decision, int, error) {
	for _, lv := range levels {
		for _, lim := range lv.Limits {
			if err := Check(lim, cost); err != nil {
				return dst, -1, err
			}
		}
	}
	var locked [numShards]bool
	for _, lv := range levels {
		locked[l.shardIndex(lv.Key)] = true
	}
	for i := range locked {
		if locked[i] {
			l.shards[i].mu.Lock()
		}
	}
	defer func() {
		for i := range locked {
			if locked[i] {
				l.shards[i].mu.Unlock()
			}
		}
	}()
	t := now.UnixNano()
	first := len(dst)
	for _, lv := range levels {
		s := l.shard(lv.Key)
		for _, lim := range lv.Limits {
			tat := s.m[bucketID{lv.Key, lim.Name}]
			_, allowed, remaining, reset, retry := gcra(tat, t, int64(lim.Window)/lim.Limit, lim.Limit, cost)
			dst = append(dst, Decision{Limit: lim, Level: lv.Level, Allowed: allowed, Remaining: remaining,
				ResetAfter: time.Duration(reset), RetryAfter: time.Duration(retry)})
		}
	}
	refused := RefusedLevel(levels, dst[first:])
	i := first
	for _, lv := range levels {
		s := l.shard(lv.Key)
		for _, lim := range lv.Limits {
			id := bucketID{lv.Key, lim.Name}
			tat, ok := s.m[id]
			interval := int64(lim.Window) / lim.Limit
			if refused < 0 {
				newTAT, _, _, _, _ := gcra(tat, t, interval, lim.Limit, cost)
				l.store(s, id, ok, newTAT, t)
			} else if d := &dst[i]; d.Allowed {
				// Nothing is consumed: report the bucket as it is.
				remaining, reset := unspent(tat, t, interval, lim.Limit)
				d.Remaining, d.ResetAfter = remaining, time.Duration(reset)
			}
			i++
		}
	}
	return dst, refused, nil
}

// store records tat for id in s (locked), making room first if id is new
// and the shard is full.
func (l *Local) store(s *shard, id bucketID, exists bool, tat, now int64) {
	if !exists && len(s.m) >= l.perShard {
		l.evict(s, now)
	}
	s.m[id] = tat
}

// evict drops every bucket of s that is full again (tat <= now), and if
// that frees less than an eighth of the shard, partly spent buckets in map
// order (random) until it has. Each call frees an eighth of the shard, so
// the cost is amortised O(1) per new bucket.
func (l *Local) evict(s *shard, now int64) {
	want := max(1, l.perShard/8)
	freed := 0
	for id, tat := range s.m {
		if tat <= now {
			delete(s.m, id)
			freed++
		}
	}
	for id := range s.m {
		if freed >= want {
			break
		}
		delete(s.m, id)
		freed++
	}
}

// Len returns the number of buckets held, for metrics and tests.
func (l *Local) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}
