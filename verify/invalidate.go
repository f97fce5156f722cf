package verify

import (
	"time"

	"github.com/keyward/keyward"
)

// Invalidation from outside the process. KeyObserver (cache.go) applies a
// change this instance made, whose new state it knows; these methods apply a
// change another instance made, known only by name (keyward.Invalidation),
// so they drop entries and the next verification reloads the committed state.
// Each one increments the cache generation first, so a store load that began
// before it never re-inserts what it dropped (see cache), and before that
// records the change in the change log, so a load that begins after it is
// not answered by a replica that has not applied it (see changeLog).

// Invalidate drops the cached entries, positive and negative, of the keys
// with the given hashes.
func (e *Engine) Invalidate(hashes []keyward.KeyHash) {
	if len(hashes) == 0 {
		return
	}
	e.changes.changed(hashes...)
	for _, h := range hashes {
		s := e.cache.shard(h)
		s.mu.Lock()
		e.cache.gen.Add(1)
		e.dropLocked(s, h)
		s.mu.Unlock()
	}
	if !e.cache.legacy.Load() {
		return
	}
	stale := make(map[keyward.KeyHash]bool, len(hashes))
	for _, h := range hashes {
		stale[h] = true
	}
	e.invalidateLegacy(func(_ *entry, stored keyward.KeyHash) bool { return stale[stored] }, e.dropLocked)
}

// InvalidateAccount drops every cached key of the account, to be reloaded
// with the account's current state. It is AccountChanged under the name the
// invalidation bus uses.
func (e *Engine) InvalidateAccount(accountID string) { e.AccountChanged(accountID) }

// Purge drops the whole cache, positive and negative entries alike. An
// instance calls it when its invalidation bus reconnects, since it may have
// missed messages while disconnected.
func (e *Engine) Purge() {
	e.changes.changedAll()
	e.cache.gen.Add(1)
	e.scan(func(s *shard) {
		e.cache.clearLocked(s)
		e.cache.negCount.Add(-int64(len(s.neg)))
		clear(s.neg)
	})
}

// CacheTTL returns how long a found key is currently served from the cache
// before it is reloaded.
func (e *Engine) CacheTTL() time.Duration { return time.Duration(e.ttl.Load()) }

// SetCacheTTL changes how long a found key is served from the cache before
// it is reloaded; d <= 0 restores Config.CacheTTL, and d is capped at
// Config.MaxStale, which bounds the age of a cached key. A shorter TTL also brings
// forward the expiry of entries already cached, so the new bound on
// staleness holds at once; a longer one applies to entries loaded from now
// on. An instance shortens its TTL while its invalidation bus is down.
func (e *Engine) SetCacheTTL(d time.Duration) {
	if d <= 0 {
		d = time.Duration(e.baseTTL)
	}
	d = min(d, time.Duration(e.maxStale))
	if old := e.ttl.Swap(int64(d)); int64(d) >= old {
		return
	}
	// A load that read the old TTL either inserts before the scan reaches
	// its shard, and is clamped, or finds the generation changed and does
	// not insert.
	e.cache.gen.Add(1)
	limit := e.now().UnixNano() + int64(d)
	e.scan(func(s *shard) {
		for _, en := range s.pos {
			for {
				exp := en.expires.Load()
				if exp <= limit || en.expires.CompareAndSwap(exp, limit) {
					break
				}
			}
		}
	})
}

// dropLocked removes any entry of h from s, whose lock is held.
func (e *Engine) dropLocked(s *shard, h keyward.KeyHash) {
	e.cache.removeHashLocked(s, h)
	if _, ok := s.neg[h]; ok {
		delete(s.neg, h)
		e.cache.negCount.Add(-1)
	}
}
