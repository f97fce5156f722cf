package verify

import (
	"context"
	"encoding/binary"
	"time"

	"sync"
	"sync/atomic"

	"github.com/keyward/keyward"
	"go.opentelemetry.io/otel/trace"
)

// numShards spreads the cache over this many independently locked maps.
// Hashes are uniformly random, so the first byte picks the shard.
const numShards = 256

// staleRetry is how long a cached key whose reload failed keeps being served
// before the store is asked again, so an outage costs one failed lookup per
// key per staleRetry rather than one per request. It never carries an entry
// past its max_stale (see load).
const staleRetry = int64(time.Second)

// cache holds what the engine knows about key hashes.
//
// Positive entries (a key; see entry) are immutable apart from their expiry
// and usage fields; a change replaces the entry. Negative entries ("no such
// key") are an expiry time in a separate map, so each costs a few dozen
// bytes; their total is bounded by Config.MaxNegative.
//
// Positive entries are bounded by Config.MaxBytes, as entryBytes counts
// them: each shard holds at most a numShards-th of it and evicts by S3-FIFO
// (see evictLocked) when an insert goes over. Eviction is only a miss
// later: it never changes an answer.
//
// Every invalidation increments gen under the lock of the shard it writes.
// A store load remembers gen before it reads the store and inserts its result
// only if gen is unchanged (checked under the shard lock), so a load that
// raced with an invalidation never re-inserts the state the invalidation
// replaced. Loads are also collapsed per (hash, gen), so a request that
// arrives after an invalidation never joins a load that started before it.
type cache struct {
	shards   [numShards]shard
	gen      atomic.Uint64
	negCount atomic.Int64
	// shardMax is Config.MaxBytes / numShards.
	shardMax int64
	// bytes and entries are the totals of the shards' positive entries;
	// evictions counts the entries evicted to stay within MaxBytes.
	bytes, entries, evictions atomic.Int64
	// legacy is set once a key hashed with an older pepper is cached. Such
	// an entry sits under the current-pepper hash of its key while the
	// store and invalidations name it by its stored hash, so invalidations
	// then also scan the cache for it (see invalidateLegacy).
	legacy atomic.Bool
}

type shard struct {
	mu sync.RWMutex
	// pos holds the positive entries by slotOf their hash; get finds the
	// entry of a hash there and checks its tag.
	pos map[uint64]*entry
	neg map[keyward.KeyHash]int64 // expiry, Unix nanoseconds

	// The S3-FIFO queues of pos, under mu: small holds the slots of
	// entries cached since they last missed (entry.inMain false), main
	// those seen again while in small or soon after their eviction from
	// it (ghost). Both may also hold slots that have since left pos or
	// moved to the other queue; such items are skipped, and compact drops
	// them when they outnumber the entries.
	small, main fifo
	ghost       ghost
	bytes       int64 // entryBytes of the entries in pos
	smallBytes  int64 // of those in small

	_ [16]byte // a whole number of cache lines, so shards share none
}

func (c *cache) init(maxBytes int64) {
	c.shardMax = max(1, maxBytes/numShards)
	for i := range c.shards {
		c.shards[i].pos = make(map[uint64]*entry)
		c.shards[i].neg = make(map[keyward.KeyHash]int64)
	}
}

func (c *cache) shard(h keyward.KeyHash) *shard { return &c.shards[h[0]] }

// A positive entry is found by 136 of its hash's 256 bits: the shard by the
// first byte, the slot in the shard's map by bytes 8 to 16 (slotOf) and
// the entry's tag by bytes 16 to 24 (tagOf). A 64-bit map key, an 8-byte
// tag and an 8-byte queue item cost far less than the whole hash in each;
// the hashes are HMACs under a secret pepper, so two keys that agree on
// those 136 bits are as unlikely as two equal hashes (one guess in 2^136,
// over 2^110 at 10 million cached keys), and nobody can make them. Two
// keys that share a slot but not a tag do not share an entry: the one
// cached last takes the slot.
type tag [8]byte

func slotOf(h keyward.KeyHash) uint64 { return binary.LittleEndian.Uint64(h[8:16]) }

func tagOf(h keyward.KeyHash) tag { return tag(h[16:24]) }

// get returns the entry of h in s, whose lock is held (for reading or
// writing), or nil.
func (s *shard) get(h keyward.KeyHash) *entry {
	if en := s.pos[slotOf(h)]; en != nil && en.tag == tagOf(h) {
		return en
	}
	return nil
}

// lookup returns the entry for hash h of the raw key, given what cached
// answered for h (en, ok): en on a hit, else the store's answer. It
// returns nil, nil if no key has that hash and an error if the store
// could not tell.
func (e *Engine) lookup(ctx context.Context, h keyward.KeyHash, raw string, en *entry, ok bool) (*entry, error) {
	if ok {
		e.m.hits.Add(1)
		if e.tracer != nil {
			addEvent(ctx, eventCacheHit)
		}
		return en, nil
	}
	e.m.misses.Add(1)
	if e.tracer != nil {
		addEvent(ctx, eventCacheMiss)
	}
	return e.load(ctx, h, raw)
}

// cached returns the entry for h if the cache holds a fresh one at now: a
// key, or nil for a negative entry. ok is false on a miss.
func (e *Engine) cached(h keyward.KeyHash, now int64) (en *entry, ok bool) {
	s := e.cache.shard(h)
	s.mu.RLock()
	en = s.get(h)
	var negUntil int64
	if en == nil {
		negUntil = s.neg[h]
	}
	s.mu.RUnlock()
	if en != nil {
		en.touch()
		return en, now < en.expires.Load()
	}
	return nil, now < negUntil
}

// load fetches hash h from the store, once for all concurrent callers. If the
// store fails, a positive entry still cached for h is served as long as it
// was read from the store less than Config.MaxStale ago (cached keys keep
// verifying through a short outage); past that the store's failure is
// returned, and the key answers UNAVAILABLE until the store is back. The
// bound holds on the hit path too: a served entry's expiry is never moved
// past its load time plus MaxStale.
func (e *Engine) load(ctx context.Context, h keyward.KeyHash, raw string) (*entry, error) {
	gen := e.cache.gen.Load()
	var flight [len(h) + 8]byte
	copy(flight[:], h[:])
	binary.LittleEndian.PutUint64(flight[len(h):], gen)
	ch := e.group.DoChan(string(flight[:]), func() (any, error) {
		return e.fetch(ctx, h, raw, gen)
	})
	var err error
	select {
	case r := <-ch:
		if r.Err == nil {
			return r.Val.(*entry), nil
		}
		err = r.Err
	case <-ctx.Done():
		err = ctx.Err()
	}
	s := e.cache.shard(h)
	s.mu.RLock()
	stale := s.get(h)
	s.mu.RUnlock()
	if stale == nil {
		return nil, err
	}
	now := e.now().UnixNano()
	until := stale.loaded + e.maxStale
	if now >= until {
		return nil, err
	}
	if exp := stale.expires.Load(); exp <= now {
		stale.expires.CompareAndSwap(exp, min(now+min(e.ttl.Load(), staleRetry), until))
	}
	return stale, nil
}

// fetch reads hash h from the store, then the hashes of raw under older
// peppers, and caches the answer unless an invalidation happened since gen.
// It runs once per collapsed load, detached from the first caller's
// cancellation and bounded by Config.LoadTimeout.
func (e *Engine) fetch(ctx context.Context, h keyward.KeyHash, raw string, gen uint64) (en *entry, err error) {
	// A panic here would crash the process (singleflight re-panics it in a
	// new goroutine): a broken store answers UNAVAILABLE instead.
	defer func() {
		if r := recover(); r != nil {
			e.log.ErrorContext(ctx, "key lookup panicked", "panic", r)
			en, err = nil, keyward.Errorf(keyward.EINTERNAL, "key lookup panicked")
		}
	}()
	// A load that finished just before this one started may have cached
	// the answer: misses at an expiry boundary then cost one lookup. now
	// is also the load time of what the store answers (entry.loaded), read
	// before the store is, so max_stale errs on the safe side.
	now := e.now().UnixNano()
	if c, ok := e.cached(h, now); ok {
		return c, nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.loadTimeout)
	defer cancel()
	var digests digestFinder
	if e.importsPending() {
		digests = e.imports
	}
	var span trace.Span
	if e.tracer != nil {
		ctx, span = e.startSpan(ctx, spanStoreLookup)
	}
	k, byDigest, err := findKey(ctx, e.keys, digests, e.hasher, h, raw)
	if byDigest {
		k, err = e.adopt(ctx, h, raw, k)
	}
	if span != nil {
		endLookupSpan(span, err)
	}
	if err == nil && k == nil {
		err = keyward.Errorf(keyward.EINTERNAL, "store returned no key and no error")
	}
	switch keyward.ErrorCode(err) {
	case "":
	case keyward.ENOTFOUND:
		e.putNegative(h, gen)
		return nil, nil
	default:
		e.log.WarnContext(ctx, "key lookup failed: keys read from the store less than max_stale ago keep verifying, others are UNAVAILABLE", "err", err, "max_stale", time.Duration(e.maxStale))
		return nil, err
	}
	en = e.newEntry(k, h, now)
	if k.Hash != h {
		e.cache.legacy.Store(true)
	}
	s := e.cache.shard(h)
	s.mu.Lock()
	if e.cache.gen.Load() == gen {
		e.setLocked(s, h, en)
	}
	s.mu.Unlock()
	return en, nil
}

func (e *Engine) putNegative(h keyward.KeyHash, gen uint64) {
	until := e.now().UnixNano() + e.negTTL
	s := e.cache.shard(h)
	s.mu.Lock()
	if e.cache.gen.Load() == gen {
		e.setNegativeLocked(s, h, until)
	}
	s.mu.Unlock()
}

// setLocked makes en the entry of h (whose tag en has) in s, whose lock is
// held, then evicts what s holds beyond its share of Config.MaxBytes. en
// inherits the network of the entry it replaces, so a reload is no change
// of network, and its place in the eviction queues. A key that shares h's
// slot but not its tag loses its entry.
func (e *Engine) setLocked(s *shard, h keyward.KeyHash, en *entry) {
	if _, ok := s.neg[h]; ok {
		delete(s.neg, h)
		e.cache.negCount.Add(-1)
	}
	slot := slotOf(h)
	old := s.pos[slot]
	if old != nil && old.tag == en.tag {
		en.network.Store(old.network.Load())
		e.cache.replaceLocked(s, slot, old, en)
		return
	}
	e.cache.removeLocked(s, slot)
	e.cache.insertLocked(s, slot, en)
}

// setNegativeLocked records that h is no key until the given time, in s,
// whose lock is held. When Config.MaxNegative entries exist it evicts
// another negative entry of s, or gives up if s has none: the bound holds
// exactly, and a negative entry is only an optimisation.
func (e *Engine) setNegativeLocked(s *shard, h keyward.KeyHash, until int64) {
	e.cache.removeHashLocked(s, h)
	if _, ok := s.neg[h]; ok {
		s.neg[h] = until
		return
	}
	for {
		n := e.cache.negCount.Load()
		if n < e.maxNeg {
			if !e.cache.negCount.CompareAndSwap(n, n+1) {
				continue
			}
			s.neg[h] = until
			return
		}
		for victim := range s.neg {
			delete(s.neg, victim)
			s.neg[h] = until
			return
		}
		return
	}
}

// KeyChanged implements keyward.KeyObserver: the cache entry of k is
// overwritten with its new state at once. The entry shares nothing with k,
// which the caller may go on modifying.
func (e *Engine) KeyChanged(k *keyward.Key) {
	if k == nil {
		return
	}
	k = k.Clone()
	now := e.now().UnixNano()
	e.changes.changed(k.Hash)
	if k.PepperVersion == e.hasher.Current() || k.PepperVersion == 0 {
		s := e.cache.shard(k.Hash)
		s.mu.Lock()
		e.cache.gen.Add(1)
		e.setLocked(s, k.Hash, e.newEntry(k, k.Hash, now))
		s.mu.Unlock()
	} else {
		e.cache.gen.Add(1)
	}
	e.invalidateLegacy(func(old *entry, _ keyward.KeyHash) bool { return old.keyID() == k.ID }, func(s *shard, h keyward.KeyHash) {
		e.setLocked(s, h, e.newEntry(k, h, now))
	})
}

// KeysDeleted implements keyward.KeyObserver: each hash becomes a negative
// entry at once.
func (e *Engine) KeysDeleted(hashes []keyward.KeyHash) {
	if len(hashes) == 0 {
		return
	}
	until := e.now().UnixNano() + e.negTTL
	e.changes.changed(hashes...)
	for _, h := range hashes {
		s := e.cache.shard(h)
		s.mu.Lock()
		e.cache.gen.Add(1)
		e.setNegativeLocked(s, h, until)
		s.mu.Unlock()
	}
	if !e.cache.legacy.Load() {
		return
	}
	deleted := make(map[keyward.KeyHash]bool, len(hashes))
	for _, h := range hashes {
		deleted[h] = true
	}
	e.invalidateLegacy(func(_ *entry, stored keyward.KeyHash) bool { return deleted[stored] }, func(s *shard, h keyward.KeyHash) {
		e.setNegativeLocked(s, h, until)
	})
}

// AccountChanged implements keyward.KeyObserver: every cached key of the
// account is dropped, to be reloaded (with the account's new state) on its
// next verification.
func (e *Engine) AccountChanged(accountID string) {
	e.changes.changedAll()
	e.cache.gen.Add(1)
	e.scan(func(s *shard) {
		for slot, en := range s.pos {
			if en.accountID() == accountID {
				e.cache.removeLocked(s, slot)
			}
		}
	})
}

// invalidateLegacy applies set to every entry cached under a hash other
// than its key's stored one (an older pepper) that matches, given that
// stored hash, with the hash it is cached under. It scans the whole cache,
// and does so only once such a key has been cached; the caller has already
// incremented gen, so a load racing with the scan either inserts before the
// scan reaches its shard or sees the new gen.
func (e *Engine) invalidateLegacy(match func(en *entry, stored keyward.KeyHash) bool, set func(s *shard, h keyward.KeyHash)) {
	if !e.cache.legacy.Load() {
		return
	}
	e.scan(func(s *shard) {
		for _, en := range s.pos {
			if stored, under, ok := en.legacy(); ok && match(en, stored) {
				set(s, under)
			}
		}
	})
}

// Sweep drops the cache entries nobody verified for a TTL, as the engine
// does by itself every Config.CacheTTL of real time; a caller that drives
// Config.Now faster than real time (a simulation) calls it every TTL of
// its clock.
func (e *Engine) Sweep() { e.sweep() }

// sweep drops negative entries that have expired and positive entries that
// expired at least a TTL ago (nobody verified them since: a verification
// reloads an expired entry), so the cache holds the keys in use, not every
// key ever seen, even when that is well under Config.MaxBytes.
func (e *Engine) sweep() {
	now := e.now().UnixNano()
	ttl := e.ttl.Load()
	e.scan(func(s *shard) {
		for slot, en := range s.pos {
			if en.expires.Load()+ttl <= now {
				e.cache.removeLocked(s, slot)
			}
		}
		s.compact()
		for h, until := range s.neg {
			if until <= now {
				delete(s.neg, h)
				e.cache.negCount.Add(-1)
			}
		}
	})
}

// scan calls fn on every shard in turn with its lock held.
func (e *Engine) scan(fn func(*shard)) {
	for i := range e.cache.shards {
		s := &e.cache.shards[i]
		s.mu.Lock()
		fn(s)
		s.mu.Unlock()
	}
}
