package verify_test

import (
	"context"
	"crypto/rand"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/verify"
)

// importKey imports the raw key as a SHA-256 digest, as an account_admin key
// of the env's account, and has the engine count it; it returns the key.
func (e *env) importKey(raw string, configure func(*keyward.Key)) *keyward.Key {
	e.t.Helper()
	now := e.clock.Now()
	k := &keyward.Key{ID: apikey.NewID("key"), Name: "imported", Role: keyward.RoleAccountAdmin, AccountID: e.acct.ID,
		Permissions: []string{"memories:read"}, CreatedAt: now, UpdatedAt: now}
	rand.Read(k.Hash[:])
	if configure != nil {
		configure(k)
	}
	if err := e.store.ImportKeys(e.ctx, keyward.Change{}, []keyward.KeyImport{{Key: k, Digest: keyward.DigestOf(raw)}}); err != nil {
		e.t.Fatalf("ImportKeys: %v", err)
	}
	if err := e.engine.ReloadImports(e.ctx); err != nil {
		e.t.Fatalf("ReloadImports: %v", err)
	}
	return k
}

// wantAdopted fails unless the key of raw is stored under its peppered hash
// and no longer under its digest.
func (e *env) wantAdopted(raw, id string) {
	e.t.Helper()
	k, err := e.store.Store.KeyByHash(e.ctx, e.hasher.Hash(raw))
	if err != nil || k.ID != id || k.PepperVersion != e.hasher.Current() {
		e.t.Fatalf("KeyByHash(peppered hash) = %+v, %v; want key %s of pepper version %d", k, err, id, e.hasher.Current())
	}
	if _, err := e.store.KeyByDigest(e.ctx, keyward.DigestOf(raw)); keyward.ErrorCode(err) != keyward.ENOTFOUND {
		e.t.Fatalf("KeyByDigest after adoption: %v, want ENOTFOUND", err)
	}
}

func TestImportedKeyOfForeignFormatIsAdoptedOnFirstUse(t *testing.T) {
	e := newEnv(t, nil)
	const raw = "legacy-2f0c1e9a-please-keep-secret"
	k := e.importKey(raw, nil)

	res := e.want(raw, keyward.DecisionValid, "memories:read")
	if res.KeyID() != k.ID {
		t.Fatalf("verified key %s, want %s", res.KeyID(), k.ID)
	}
	e.wantAdopted(raw, k.ID)
	e.want(raw, keyward.DecisionInsufficientPermissions, "memories:write")

	// From the store again, by the normal path: the digest is gone.
	e.engine.Purge()
	must(t, e.engine.ReloadImports(e.ctx))
	from := e.lookups()
	e.want(raw, keyward.DecisionValid)
	e.wantLookups(from, 1)
	// Tokens that are no key's stay MALFORMED, one lookup per NegativeTTL.
	from = e.lookups()
	e.want(raw+"x", keyward.DecisionMalformed)
	e.want(raw+"x", keyward.DecisionMalformed)
	e.wantLookups(from, 1)
}

func TestImportedKeyOfKeywardFormat(t *testing.T) {
	e := newEnv(t, nil)
	raw := unknownKey(t)
	e.want(raw, keyward.DecisionNotFound) // cached as no key
	k := e.importKey(raw, nil)            // drops the negative entries
	if res := e.want(raw, keyward.DecisionValid); res.KeyID() != k.ID {
		t.Fatalf("verified key %s, want %s", res.KeyID(), k.ID)
	}
	e.wantAdopted(raw, k.ID)
}

func TestImportedKeyLongerThanKeywardKeys(t *testing.T) {
	e := newEnv(t, nil)
	raw := strings.Repeat("a", 300)
	k := e.importKey(raw, nil)
	// Equal in the first apikey.MaxLen bytes: a different key.
	e.want(strings.Repeat("a", 299)+"b", keyward.DecisionMalformed)
	e.want(raw, keyward.DecisionValid)
	e.wantAdopted(raw, k.ID)
	e.want(strings.Repeat("a", 299)+"b", keyward.DecisionMalformed)
	e.want(strings.Repeat("a", verify.MaxImportedKeyLen+1), keyward.DecisionMalformed)
}

func TestImportedKeyThatDoesNotVerifyIsNotAdopted(t *testing.T) {
	e := newEnv(t, nil)
	now := e.clock.Now()
	revoked := e.importKey("legacy-revoked", func(k *keyward.Key) { k.RevokedAt = &now })
	e.want("legacy-revoked", keyward.DecisionRevoked)
	if _, err := e.store.KeyByDigest(e.ctx, keyward.DigestOf("legacy-revoked")); err != nil {
		t.Fatalf("a revoked imported key was adopted: KeyByDigest: %v", err)
	}
	e.importKey("legacy-expiring", func(k *keyward.Key) { k.ExpiresAt = ptr(now.Add(time.Hour)) })
	e.clock.Advance(2 * time.Hour)
	e.want("legacy-expiring", keyward.DecisionExpired)

	// Enabled again (here: the revocation lifted in the store and the
	// engine told), it verifies at once from the cache, and is adopted by
	// the next use that loads it from the store.
	k, err := e.store.UpdateKey(e.ctx, keyward.Change{}, revoked.ID, func(k *keyward.Key) error { k.RevokedAt = nil; return nil })
	must(t, err)
	e.engine.KeyChanged(k)
	e.want("legacy-revoked", keyward.DecisionValid)
	e.clock.Advance(verify.DefaultCacheTTL)
	e.want("legacy-revoked", keyward.DecisionValid)
	e.wantAdopted("legacy-revoked", revoked.ID)
}

func TestGarbageCostsNoLookupWithoutImportedKeys(t *testing.T) {
	e := newEnv(t, nil)
	from := e.lookups()
	e.want("not a key", keyward.DecisionMalformed)
	e.wantLookups(from, 0)

	// With imports pending, garbage costs its hash lookup, then (its
	// digest unknown) a second one: another instance may have adopted the
	// key between the two.
	k := e.importKey("legacy-one", nil)
	e.want("garbage-1", keyward.DecisionMalformed)
	e.wantLookups(from, 2)

	// Once the imported keys are gone, garbage is refused unheard again.
	_, err := e.store.DeleteKey(e.ctx, keyward.Change{}, k.ID)
	must(t, err)
	must(t, e.engine.ReloadImports(e.ctx))
	from = e.lookups()
	e.want("garbage-2", keyward.DecisionMalformed)
	e.wantLookups(from, 0)
}

func TestImportSeenByAnotherInstanceWhenItCounts(t *testing.T) {
	a := newEnv(t, nil)
	b, err := verify.New(verify.Config{Store: a.store, Hasher: a.hasher, Now: a.clock.Now, UsageFlushInterval: time.Hour,
		Logger: slog.New(slog.DiscardHandler)})
	must(t, err)
	t.Cleanup(func() { b.Close(t.Context()) })

	k := a.importKey("legacy-shared", nil) // a counts at once, b not yet
	if d := b.Verify(a.ctx, verify.Request{Key: "legacy-shared"}).Decision; d != keyward.DecisionMalformed {
		t.Fatalf("b before counting: %s, want MALFORMED", d)
	}
	must(t, b.ReloadImports(a.ctx))

	// Both instances verify at once: exactly one adopts, both answer VALID.
	var wg sync.WaitGroup
	decisions := make([]keyward.Decision, 2)
	for i, eng := range []*verify.Engine{a.engine, b} {
		wg.Go(func() { decisions[i] = eng.Verify(a.ctx, verify.Request{Key: "legacy-shared"}).Decision })
	}
	wg.Wait()
	for i, d := range decisions {
		if d != keyward.DecisionValid {
			t.Fatalf("instance %d: %s, want VALID", i, d)
		}
	}
	a.wantAdopted("legacy-shared", k.ID)
}

// failingAdoption is a store whose adoptions fail.
type failingAdoption struct{ *store }

func (failingAdoption) AdoptKey(context.Context, keyward.KeyDigest, keyward.KeyHash, int) (*keyward.Key, error) {
	return nil, keyward.Errorf(keyward.EUNAVAILABLE, "store is read-only")
}

func TestAdoptionFailureKeepsTheKey(t *testing.T) {
	var failing failingAdoption
	e := newEnv(t, func(c *verify.Config) {
		failing = failingAdoption{c.Store.(*store)}
		c.Imports = failing
	})
	k := e.importKey("legacy-readonly", nil)
	if res := e.want("legacy-readonly", keyward.DecisionValid); res.KeyID() != k.ID {
		t.Fatalf("verified key %s, want %s", res.KeyID(), k.ID)
	}
	// Still pending: a later load adopts it.
	if _, err := e.store.KeyByDigest(e.ctx, keyward.DigestOf("legacy-readonly")); err != nil {
		t.Fatalf("KeyByDigest after a failed adoption: %v, want the key still pending", err)
	}
	e.want("legacy-readonly", keyward.DecisionValid)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
