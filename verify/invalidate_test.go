package verify_test

import (
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/verify"
)

// TestInvalidateReloads: a change made elsewhere, named only by hash or
// account, is seen on the next verification, which reloads the key.
func TestInvalidateReloads(t *testing.T) {
	e := newEnv(t, func(c *verify.Config) { c.CacheTTL = time.Hour; c.NegativeTTL = time.Hour })
	k := e.key(keyward.Key{})
	other := e.key(keyward.Key{})
	e.want(k.Secret, keyward.DecisionValid)
	e.want(other.Secret, keyward.DecisionValid)

	e.revoke(k.ID) // committed elsewhere: this engine is not told the state
	e.want(k.Secret, keyward.DecisionValid)
	before := e.lookups()
	e.engine.Invalidate([]keyward.KeyHash{k.Hash})
	e.want(k.Secret, keyward.DecisionRevoked)
	e.want(other.Secret, keyward.DecisionValid) // untouched, still cached
	e.wantLookups(before, 1)

	// A negative entry is dropped too.
	unknown := unknownKey(t)
	e.want(unknown, keyward.DecisionNotFound)
	if _, neg := e.engine.CacheLen(); neg != 1 {
		t.Fatalf("%d negative entries, want 1", neg)
	}
	e.engine.Invalidate([]keyward.KeyHash{e.hasher.Hash(unknown)})
	if _, neg := e.engine.CacheLen(); neg != 0 {
		t.Fatalf("%d negative entries after Invalidate, want 0", neg)
	}
	e.engine.Invalidate(nil)

	t.Run("account", func(t *testing.T) {
		if _, err := e.store.UpdateAccount(e.ctx, keyward.Change{}, e.acct.ID, func(a *keyward.Account) error {
			a.Disabled = true
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		e.want(other.Secret, keyward.DecisionValid)
		e.engine.InvalidateAccount(e.acct.ID)
		e.want(other.Secret, keyward.DecisionDisabled)
	})
}

// TestInvalidateOlderPepper: a key cached under the current pepper's hash
// but stored under an older one is dropped when named by its stored hash.
func TestInvalidateOlderPepper(t *testing.T) {
	newer, err := apikey.NewHasher(map[int]keyward.Secret{
		1: keywardtest.Pepper,
		2: "a-newer-pepper-for-tests-only-0123456789",
	})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *verify.Config) { c.CacheTTL = time.Hour; c.Hasher = newer })
	k := keywardtest.NewKey(t, e.store, keywardtest.NewHasher(t), keyward.Key{Role: keyward.RoleAccountAdmin, AccountID: e.acct.ID})
	e.want(k.Secret, keyward.DecisionValid)
	e.revoke(k.ID)
	e.engine.Invalidate([]keyward.KeyHash{k.Hash})
	e.want(k.Secret, keyward.DecisionRevoked)
}

// TestInvalidateRacingLoad: a load that read the store before a change
// committed elsewhere, and finishes after the invalidation arrived, must not
// put the old state back in the cache.
func TestInvalidateRacingLoad(t *testing.T) {
	for _, tc := range []struct {
		name       string
		invalidate func(e *env, k *keyward.CreatedKey)
	}{
		{"Invalidate", func(e *env, k *keyward.CreatedKey) { e.engine.Invalidate([]keyward.KeyHash{k.Hash}) }},
		{"InvalidateAccount", func(e *env, k *keyward.CreatedKey) { e.engine.InvalidateAccount(e.acct.ID) }},
		{"Purge", func(e *env, k *keyward.CreatedKey) { e.engine.Purge() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *verify.Config) { c.CacheTTL = time.Hour })
			k := e.key(keyward.Key{})
			read, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			e.store.afterRead = func(keyward.KeyHash) {
				once.Do(func() {
					close(read)
					<-release
				})
			}
			first := make(chan keyward.Decision)
			go func() { first <- e.verify(k.Secret).Decision }()
			<-read // the load holds the valid state
			e.revoke(k.ID)
			tc.invalidate(e, k)
			close(release)
			<-first // began before the change: either answer is fine
			e.want(k.Secret, keyward.DecisionRevoked)
		})
	}
}

func TestPurge(t *testing.T) {
	e := newEnv(t, func(c *verify.Config) { c.CacheTTL = time.Hour; c.NegativeTTL = time.Hour })
	a, b := e.key(keyward.Key{}), e.key(keyward.Key{})
	e.want(a.Secret, keyward.DecisionValid)
	e.want(b.Secret, keyward.DecisionValid)
	e.want(unknownKey(t), keyward.DecisionNotFound)
	if pos, neg := e.engine.CacheLen(); pos != 2 || neg != 1 {
		t.Fatalf("cache holds %d keys and %d negative entries, want 2 and 1", pos, neg)
	}
	e.revoke(a.ID)
	e.engine.Purge()
	if pos, neg := e.engine.CacheLen(); pos != 0 || neg != 0 {
		t.Fatalf("after Purge the cache holds %d keys and %d negative entries", pos, neg)
	}
	before := e.lookups()
	e.want(a.Secret, keyward.DecisionRevoked)
	e.want(b.Secret, keyward.DecisionValid)
	e.wantLookups(before, 2)
	// The negative count was reset with the maps: the bound still works.
	e.want(unknownKey(t), keyward.DecisionNotFound)
	e.engine.CacheLen()
}

func TestSetCacheTTL(t *testing.T) {
	e := newEnv(t, func(c *verify.Config) { c.CacheTTL = time.Minute })
	k := e.key(keyward.Key{})
	e.want(k.Secret, keyward.DecisionValid) // cached until +60s

	// Shortening applies to the entry already cached.
	e.engine.SetCacheTTL(5 * time.Second)
	if got := e.engine.CacheTTL(); got != 5*time.Second {
		t.Fatalf("CacheTTL() = %v, want 5s", got)
	}
	e.revoke(k.ID) // the notification is lost
	e.clock.Advance(5*time.Second - time.Nanosecond)
	e.want(k.Secret, keyward.DecisionValid)
	e.clock.Advance(time.Nanosecond)
	e.want(k.Secret, keyward.DecisionRevoked)

	// New entries get the short TTL.
	k2 := e.key(keyward.Key{})
	e.want(k2.Secret, keyward.DecisionValid)
	before := e.lookups()
	e.clock.Advance(5 * time.Second)
	e.want(k2.Secret, keyward.DecisionValid)
	e.wantLookups(before, 1)

	// Zero restores Config.CacheTTL for entries loaded from then on.
	e.engine.SetCacheTTL(0)
	if got := e.engine.CacheTTL(); got != time.Minute {
		t.Fatalf("CacheTTL() after SetCacheTTL(0) = %v, want 1m", got)
	}
	e.clock.Advance(5 * time.Second)
	e.want(k2.Secret, keyward.DecisionValid) // reloaded with the long TTL
	before = e.lookups()
	e.clock.Advance(time.Minute - time.Nanosecond)
	e.want(k2.Secret, keyward.DecisionValid)
	e.wantLookups(before, 0)
}
