package verify_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/verify"
)

func TestConcurrentMissesCollapse(t *testing.T) {
	for _, tc := range []struct {
		name  string
		known bool
		want  keyward.Decision
	}{
		{"existing key", true, keyward.DecisionValid},
		{"unknown key", false, keyward.DecisionNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 32
			e := newEnv(t, nil)
			raw := unknownKey(t)
			if tc.known {
				raw = e.key(keyward.Key{}).Secret
			}
			// Hold the first store read until every verification has
			// missed the cache.
			e.store.afterRead = func(keyward.KeyHash) {
				keywardtest.WaitFor(t, "all misses", func() bool {
					return e.metric("keyward_verify_cache_misses_total", "") == n
				})
			}
			var wg sync.WaitGroup
			results := make([]keyward.Decision, n)
			for i := range n {
				wg.Go(func() { results[i] = e.verify(raw).Decision })
			}
			wg.Wait()
			for i, d := range results {
				if d != tc.want {
					t.Errorf("verification %d = %s, want %s", i, d, tc.want)
				}
			}
			e.wantLookups(0, 1)
		})
	}
}

func TestNegativeEntriesBounded(t *testing.T) {
	const max = 5
	e := newEnv(t, func(c *verify.Config) { c.MaxNegative = max; c.NegativeTTL = time.Minute })
	for range 50 {
		e.want(unknownKey(t), keyward.DecisionNotFound)
		if _, neg := e.engine.CacheLen(); neg > max {
			t.Fatalf("%d negative entries, bound is %d", neg, max)
		}
	}
	e.wantLookups(0, 50)

	// A negative entry answers until NegativeTTL, then the store is asked
	// again.
	e2 := newEnv(t, func(c *verify.Config) { c.NegativeTTL = time.Minute })
	raw := unknownKey(t)
	e2.want(raw, keyward.DecisionNotFound)
	e2.clock.Advance(time.Minute - time.Nanosecond)
	e2.want(raw, keyward.DecisionNotFound)
	e2.wantLookups(0, 1)
	e2.clock.Advance(time.Nanosecond)
	e2.want(raw, keyward.DecisionNotFound)
	e2.wantLookups(0, 2)
}

func TestInvalidationSeenAtOnce(t *testing.T) {
	e := newEnv(t, func(c *verify.Config) { c.CacheTTL = time.Hour })
	k := e.key(keyward.Key{Permissions: []string{"a"}})
	e.want(k.Secret, keyward.DecisionValid, "a")
	before := e.lookups()

	t.Run("update", func(t *testing.T) {
		u, err := e.store.UpdateKey(e.ctx, keyward.Change{}, k.ID, func(k *keyward.Key) error {
			k.Permissions = []string{"b"}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		e.engine.KeyChanged(u)
		e.want(k.Secret, keyward.DecisionInsufficientPermissions, "a")
		e.want(k.Secret, keyward.DecisionValid, "b")
	})
	t.Run("revoke", func(t *testing.T) {
		e.engine.KeyChanged(e.revoke(k.ID))
		e.want(k.Secret, keyward.DecisionRevoked)
	})
	t.Run("delete", func(t *testing.T) {
		d, err := e.store.DeleteKey(e.ctx, keyward.Change{}, k.ID)
		if err != nil {
			t.Fatal(err)
		}
		e.engine.KeysDeleted([]keyward.KeyHash{d.Hash})
		e.want(k.Secret, keyward.DecisionNotFound)
	})
	// Every answer came from the entries the notifications wrote.
	e.wantLookups(before, 0)

	t.Run("the caller may reuse the key it passed", func(t *testing.T) {
		k := e.key(keyward.Key{})
		stored, err := e.store.Key(e.ctx, k.ID)
		if err != nil {
			t.Fatal(err)
		}
		e.engine.KeyChanged(stored)
		stored.Disabled = true
		e.want(k.Secret, keyward.DecisionValid)
	})
}

func TestAccountChangedReloadsItsKeys(t *testing.T) {
	e := newEnv(t, func(c *verify.Config) { c.CacheTTL = time.Hour })
	k := e.key(keyward.Key{})
	root := keywardtest.NewRootKey(t, e.store, e.hasher)
	e.want(k.Secret, keyward.DecisionValid)
	e.want(root.Secret, keyward.DecisionValid)
	setDisabled := func(v bool) {
		if _, err := e.store.UpdateAccount(e.ctx, keyward.Change{}, e.acct.ID, func(a *keyward.Account) error {
			a.Disabled = v
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		e.engine.AccountChanged(e.acct.ID)
	}
	before := e.lookups()
	setDisabled(true)
	e.want(k.Secret, keyward.DecisionDisabled)
	e.want(root.Secret, keyward.DecisionValid) // another account's key stays cached
	e.wantLookups(before, 1)
	setDisabled(false)
	e.want(k.Secret, keyward.DecisionValid)
}

// TestTTLIsTheBackstop: a change the engine is not told about is seen once
// the entry's TTL has passed.
func TestTTLIsTheBackstop(t *testing.T) {
	e := newEnv(t, func(c *verify.Config) { c.CacheTTL = time.Minute })
	k := e.key(keyward.Key{})
	e.want(k.Secret, keyward.DecisionValid)
	e.revoke(k.ID) // the notification is lost
	e.clock.Advance(time.Second)
	e.want(k.Secret, keyward.DecisionValid)
	e.clock.Advance(time.Minute)
	e.want(k.Secret, keyward.DecisionRevoked)
}

// TestLoadRacingInvalidation: a load that read the store before a revocation
// and finishes after the engine was told about it must not put the old state
// back in the cache.
func TestLoadRacingInvalidation(t *testing.T) {
	for _, tc := range []struct {
		name       string
		invalidate func(e *env, k *keyward.CreatedKey)
		want       keyward.Decision
	}{
		{"revoke", func(e *env, k *keyward.CreatedKey) { e.engine.KeyChanged(e.revoke(k.ID)) }, keyward.DecisionRevoked},
		{"delete", func(e *env, k *keyward.CreatedKey) {
			if _, err := e.store.DeleteKey(e.ctx, keyward.Change{}, k.ID); err != nil {
				e.t.Fatal(err)
			}
			e.engine.KeysDeleted([]keyward.KeyHash{k.Hash})
		}, keyward.DecisionNotFound},
		{"account disabled", func(e *env, k *keyward.CreatedKey) {
			if _, err := e.store.UpdateAccount(e.ctx, keyward.Change{}, e.acct.ID, func(a *keyward.Account) error {
				a.Disabled = true
				return nil
			}); err != nil {
				e.t.Fatal(err)
			}
			e.engine.AccountChanged(e.acct.ID)
		}, keyward.DecisionDisabled},
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
			tc.invalidate(e, k)
			close(release)
			// The racing verification began before the change: either
			// answer is linearizable. What matters is what follows.
			<-first
			e.want(k.Secret, tc.want)
			e.want(k.Secret, tc.want)
		})
	}
}

func TestStoreOutage(t *testing.T) {
	e := newEnv(t, func(c *verify.Config) { c.CacheTTL, c.MaxStale = time.Minute, 5*time.Minute })
	cached := e.key(keyward.Key{})
	uncached := e.key(keyward.Key{})
	e.want(cached.Secret, keyward.DecisionValid)
	unknown := unknownKey(t)

	e.store.down.Store(true)
	e.want(cached.Secret, keyward.DecisionValid)
	res := e.want(uncached.Secret, keyward.DecisionUnavailable)
	if res.Key() != nil {
		t.Fatalf("an UNAVAILABLE result names key %s", res.KeyID())
	}
	e.want(unknown, keyward.DecisionUnavailable)

	// Past its TTL, within MaxStale, the cached key is still served, and
	// the store is asked again only after a pause, not on every request.
	e.clock.Advance(2 * time.Minute)
	before := e.lookups()
	for range 10 {
		e.want(cached.Secret, keyward.DecisionValid)
	}
	e.wantLookups(before, 1)
	if e.metric("keyward_verifications_total", keyward.DecisionUnavailable) != 2 {
		t.Errorf("UNAVAILABLE not counted")
	}

	// Failures were not cached: once the store is back, everything is
	// answered from it.
	e.store.down.Store(false)
	e.want(uncached.Secret, keyward.DecisionValid)
	e.want(unknown, keyward.DecisionNotFound)
	e.engine.KeyChanged(e.revoke(cached.ID))
	e.want(cached.Secret, keyward.DecisionRevoked)
}

// TestMaxStaleBoundsAnOutage: while reloads fail, a cached key is served
// until MaxStale after it was last read from the store, on the hit path as
// on a failed reload, then answers UNAVAILABLE: a revocation the instance
// cannot learn of is honoured within MaxStale. Once the store answers
// again, the key's current state is.
func TestMaxStaleBoundsAnOutage(t *testing.T) {
	e := newEnv(t, func(c *verify.Config) { c.CacheTTL, c.MaxStale = time.Minute, 90*time.Second })
	k := e.key(keyward.Key{})
	e.want(k.Secret, keyward.DecisionValid) // read at T
	e.store.down.Store(true)
	e.revoke(k.ID) // elsewhere: this engine is not told

	e.clock.Advance(time.Minute + time.Second) // T+61s: the reload fails
	e.want(k.Secret, keyward.DecisionValid)
	e.clock.Advance(28 * time.Second) // T+89s: it fails again
	e.want(k.Secret, keyward.DecisionValid)
	before := e.lookups()
	e.clock.Advance(500 * time.Millisecond) // T+89.5s: a cache hit
	e.want(k.Secret, keyward.DecisionValid)
	e.wantLookups(before, 0)
	e.clock.Advance(500 * time.Millisecond) // T+90s: MaxStale reached
	for range 3 {
		e.want(k.Secret, keyward.DecisionUnavailable)
	}

	e.store.down.Store(false)
	e.want(k.Secret, keyward.DecisionRevoked)
}

// TestMaxStaleDefaultsToCacheTTL: by default no key is served from a store
// read older than the cache TTL, outage or not; a shorter outage is
// bridged (TestStoreOutage), and a longer TTL than MaxStale is refused.
func TestMaxStaleDefaultsToCacheTTL(t *testing.T) {
	e := newEnv(t, func(c *verify.Config) { c.CacheTTL = time.Minute })
	k := e.key(keyward.Key{})
	e.want(k.Secret, keyward.DecisionValid)
	e.store.down.Store(true)
	e.clock.Advance(59 * time.Second)
	e.want(k.Secret, keyward.DecisionValid)
	e.clock.Advance(time.Second)
	e.want(k.Secret, keyward.DecisionUnavailable)

	// SetCacheTTL cannot lift the TTL past MaxStale either.
	e.engine.SetCacheTTL(time.Hour)
	if got := e.engine.CacheTTL(); got != time.Minute {
		t.Errorf("CacheTTL after SetCacheTTL(1h) = %v, want MaxStale (1m)", got)
	}
	_, err := verify.New(verify.Config{Store: e.store, Hasher: e.hasher, CacheTTL: time.Minute, MaxStale: time.Second})
	if keyward.ErrorCode(err) != keyward.EINVALID || !strings.Contains(err.Error(), "MaxStale") {
		t.Errorf("New with MaxStale below CacheTTL: %v, want EINVALID naming MaxStale", err)
	}
}

func TestCanceledContextIsUnavailable(t *testing.T) {
	e := newEnv(t, nil)
	k := e.key(keyward.Key{})
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	if res := e.engine.Verify(ctx, verify.Request{Key: k.Secret}); res.Decision != keyward.DecisionUnavailable && res.Decision != keyward.DecisionValid {
		t.Fatalf("Verify with a canceled context = %s", res.Decision)
	}
	e.want(k.Secret, keyward.DecisionValid)
}

// TestOlderPepper: a key hashed with an older pepper verifies, is cached
// under the current pepper's hash, and invalidations still reach it.
func TestOlderPepper(t *testing.T) {
	newer, err := apikey.NewHasher(map[int]keyward.Secret{
		1: keywardtest.Pepper,
		2: "a-newer-pepper-for-tests-only-0123456789",
	})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *verify.Config) { c.CacheTTL = time.Hour; c.Hasher = newer })
	// Keys made before the new pepper: hashed with version 1.
	old := keywardtest.NewHasher(t)
	k1 := keywardtest.NewKey(t, e.store, old, keyward.Key{Role: keyward.RoleAccountAdmin, AccountID: e.acct.ID})
	k2 := keywardtest.NewKey(t, e.store, old, keyward.Key{Role: keyward.RoleAccountAdmin, AccountID: e.acct.ID})
	current := e.key(keyward.Key{})
	if k1.PepperVersion != 1 || current.PepperVersion != 2 {
		t.Fatalf("pepper versions %d and %d, want 1 and 2", k1.PepperVersion, current.PepperVersion)
	}

	e.want(k1.Secret, keyward.DecisionValid)
	e.want(k2.Secret, keyward.DecisionValid)
	e.want(current.Secret, keyward.DecisionValid)
	before := e.lookups()
	e.want(k1.Secret, keyward.DecisionValid)
	e.wantLookups(before, 0)

	e.engine.KeyChanged(e.revoke(k1.ID))
	e.want(k1.Secret, keyward.DecisionRevoked)
	e.engine.KeysDeleted([]keyward.KeyHash{k2.Hash})
	e.want(k2.Secret, keyward.DecisionNotFound)
	e.want(current.Secret, keyward.DecisionValid)
	e.wantLookups(before, 0)
}

func TestSweepDropsIdleEntries(t *testing.T) {
	e := newEnv(t, func(c *verify.Config) { c.CacheTTL = time.Minute; c.NegativeTTL = time.Minute })
	idle := e.key(keyward.Key{})
	busy := e.key(keyward.Key{})
	e.want(idle.Secret, keyward.DecisionValid)
	e.want(busy.Secret, keyward.DecisionValid)
	e.want(unknownKey(t), keyward.DecisionNotFound)
	e.clock.Advance(90 * time.Second)
	e.want(busy.Secret, keyward.DecisionValid) // reloaded: a fresh entry
	e.clock.Advance(45 * time.Second)
	e.engine.Sweep()
	if pos, neg := e.engine.CacheLen(); pos != 1 || neg != 0 {
		t.Fatalf("after a sweep the cache holds %d keys and %d negative entries, want 1 and 0", pos, neg)
	}
	e.want(busy.Secret, keyward.DecisionValid)
	e.want(idle.Secret, keyward.DecisionValid)
}
