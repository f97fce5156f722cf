package verify_test

import (
	"math"
	"runtime/debug"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/verify"
)

// madeUpKey puts a key that no store holds into the engine's cache the way
// a mutation does, and returns its secret.
func (e *env) madeUpKey() string {
	e.t.Helper()
	raw := unknownKey(e.t)
	now := e.clock.Now()
	e.engine.KeyChanged(&keyward.Key{
		ID: apikey.NewID("key"), Hash: e.hasher.Hash(raw), PepperVersion: e.hasher.Current(),
		Role: keyward.RoleUser, AccountID: e.acct.ID, UserID: e.user.ID,
		Permissions: []string{"a"}, CreatedAt: now, UpdatedAt: now,
	})
	return raw
}

// wantCacheWithinBound fails unless the cache's bytes are within its bound
// and its entry count agrees with the cache itself.
func (e *env) wantCacheWithinBound() (entries int) {
	e.t.Helper()
	pos, _ := e.engine.CacheLen()
	bytes, limit := e.metric("keyward_verify_cache_bytes", ""), e.metric("keyward_verify_cache_max_bytes", "")
	if bytes > limit {
		e.t.Fatalf("cache holds %.0f bytes, over its bound of %.0f", bytes, limit)
	}
	if got := e.metric("keyward_verify_cache_entries", ""); int(got) != pos {
		e.t.Fatalf("keyward_verify_cache_entries = %.0f, the cache holds %d", got, pos)
	}
	return pos
}

// TestCacheBounded: a flood of distinct keys (made up, cached as a mutation
// caches them) and of distinct unknown keys never takes the cache past
// MaxBytes, nor its negative entries past MaxNegative.
func TestCacheBounded(t *testing.T) {
	const maxBytes = 256 << 10 // about 3 keys a shard
	e := newEnv(t, func(c *verify.Config) { c.MaxBytes = maxBytes; c.MaxNegative = 100; c.CacheTTL = time.Hour })
	if got := e.metric("keyward_verify_cache_max_bytes", ""); got != maxBytes {
		t.Fatalf("keyward_verify_cache_max_bytes = %.0f, want %d", got, maxBytes)
	}
	peak := 0
	for i := range 20_000 {
		e.madeUpKey()
		if i%1000 == 999 {
			peak = max(peak, e.wantCacheWithinBound())
		}
	}
	if peak < 256 || peak > 2000 {
		t.Errorf("the cache held up to %d keys; its bound is %d bytes", peak, maxBytes)
	}
	if ev := e.metric("keyward_verify_cache_evictions_total", ""); ev < 20_000-2000 {
		t.Errorf("%.0f evictions after 20000 keys in a cache of at most 2000", ev)
	}
	for range 300 {
		e.want(unknownKey(t), keyward.DecisionNotFound)
	}
	if _, neg := e.engine.CacheLen(); neg > 100 {
		t.Errorf("%d negative entries, bound 100", neg)
	}
	e.wantCacheWithinBound()
}

// TestEvictionKeepsHotKeys: keys in repeated use stay cached while a flood
// of keys used once passes through a cache too small for the flood (a scan
// evicts nothing that is in use), and an evicted key is reloaded with its
// current state.
func TestEvictionKeepsHotKeys(t *testing.T) {
	e := newEnv(t, func(c *verify.Config) { c.MaxBytes = 512 << 10; c.CacheTTL = time.Hour })
	hot := make([]*keyward.CreatedKey, 40)
	for i := range hot {
		hot[i] = e.key(keyward.Key{})
	}
	for range 3 {
		for _, k := range hot {
			e.want(k.Secret, keyward.DecisionValid)
		}
	}
	before := e.lookups()
	var flood []string
	for i := range 20_000 {
		raw := e.madeUpKey()
		if i < 10 {
			flood = append(flood, raw)
		}
		if i%500 == 0 {
			for _, k := range hot {
				e.want(k.Secret, keyward.DecisionValid)
			}
		}
	}
	for _, k := range hot {
		e.want(k.Secret, keyward.DecisionValid)
	}
	e.wantLookups(before, 0)
	e.wantCacheWithinBound()

	// The first keys of the flood were evicted: each is looked up again
	// (and is no key the store holds).
	for _, raw := range flood {
		e.want(raw, keyward.DecisionNotFound)
	}
	e.wantLookups(before, int64(len(flood)))

	// An evicted key comes back with its current state; invalidation
	// still reaches a key cached after an eviction.
	victim := e.key(keyward.Key{})
	e.want(victim.Secret, keyward.DecisionValid)
	for range 20_000 {
		e.madeUpKey()
	}
	e.revoke(victim.ID) // the engine is not told: only a reload shows it
	e.want(victim.Secret, keyward.DecisionRevoked)
	e.engine.KeysDeleted([]keyward.KeyHash{victim.Hash})
	e.want(victim.Secret, keyward.DecisionNotFound)
}

func TestMaxBytes(t *testing.T) {
	e := newEnv(t, nil)
	if _, err := verify.New(verify.Config{Store: e.store, Hasher: e.hasher, MaxBytes: -1}); keyward.ErrorCode(err) != keyward.EINVALID {
		t.Errorf("New with MaxBytes -1: %v, want EINVALID", err)
	}
	// The default is a quarter of the Go memory limit, when one is set.
	old := debug.SetMemoryLimit(4 << 30)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
	if got := verify.DefaultMaxBytes(); got != 1<<30 {
		t.Errorf("DefaultMaxBytes with a 4 GiB memory limit = %d, want 1 GiB", got)
	}
	if got := e.metric("keyward_verify_cache_max_bytes", ""); got <= 0 || got == math.MaxInt64 {
		t.Errorf("default keyward_verify_cache_max_bytes = %.0f", got)
	}
	debug.SetMemoryLimit(math.MaxInt64)
	if got := verify.DefaultMaxBytes(); got < 16<<20 {
		t.Errorf("DefaultMaxBytes without a memory limit = %d, want at least 16 MiB", got)
	}
}
