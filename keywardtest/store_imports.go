package keywardtest

import (
	"crypto/rand"
	"sync"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// importedKey returns an import of key k with the digest of raw, as
// admin.Keys makes it: a random placeholder hash and pepper version 0.
func importedKey(k *keyward.Key, raw string) keyward.KeyImport {
	k.Hash, k.PepperVersion = randomHash(), 0
	return keyward.KeyImport{Key: k, Digest: keyward.DigestOf(raw)}
}

func wantCounts(t testing.TB, f *fixture, pending, adopted int64) {
	t.Helper()
	c, err := f.s.KeyImportCounts(f.ctx)
	must(t, err)
	if c.Pending != pending || c.Adopted != adopted {
		t.Fatalf("KeyImportCounts = %+v, want pending %d, adopted %d", c, pending, adopted)
	}
}

func testKeyImports(t *testing.T, open func(*testing.T) keyward.Store) {
	t.Run("imported keys are keys, found by digest until adopted", func(t *testing.T) {
		f := newFixture(t, open)
		wantCounts(t, f, 0, 0)
		a := f.account("acme")
		u := f.user(a.ID, "alice")
		full, root := importedKey(fullKey(a.ID, u.ID), "token-one"), importedKey(minimalKey(), "token-two")
		want := []*keyward.Key{full.Key.Clone(), root.Key.Clone()}
		must(t, f.s.ImportKeys(f.ctx, keyward.Change{}, []keyward.KeyImport{full, root}))
		wantCounts(t, f, 2, 0)
		for i, raw := range []string{"token-one", "token-two"} {
			wantKey(t, f.key(want[i].ID), want[i])
			got, err := f.s.KeyByDigest(f.ctx, keyward.DigestOf(raw))
			must(t, err)
			wantKey(t, got, want[i])
		}
		_, err := f.s.KeyByDigest(f.ctx, keyward.DigestOf("token-three"))
		wantCode(t, err, keyward.ENOTFOUND)
		wantIDs(t, allKeyIDs(f), sorted(want[0].ID, want[1].ID)...)
	})
	t.Run("adoption replaces the digest by the hash, once", func(t *testing.T) {
		f := newFixture(t, open)
		im := importedKey(minimalKey(), "legacy-token")
		must(t, f.s.ImportKeys(f.ctx, keyward.Change{}, []keyward.KeyImport{im}))
		h := f.h.Hash("legacy-token")
		got, err := f.s.AdoptKey(f.ctx, im.Digest, h, f.h.Current())
		must(t, err)
		want := im.Key.Clone()
		want.Hash, want.PepperVersion = h, f.h.Current()
		wantKey(t, got, want)
		byHash, err := f.s.KeyByHash(f.ctx, h)
		must(t, err)
		wantKey(t, byHash, want)
		_, err = f.s.KeyByDigest(f.ctx, im.Digest)
		wantCode(t, err, keyward.ENOTFOUND)
		_, err = f.s.AdoptKey(f.ctx, im.Digest, h, f.h.Current())
		wantCode(t, err, keyward.ENOTFOUND)
		wantCounts(t, f, 0, 1)
	})
	t.Run("of concurrent adoptions exactly one wins", func(t *testing.T) {
		f := newFixture(t, open)
		im := importedKey(minimalKey(), "raced-token")
		must(t, f.s.ImportKeys(f.ctx, keyward.Change{}, []keyward.KeyImport{im}))
		h := f.h.Hash("raced-token")
		const n = 8
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { _, errs[i] = f.s.AdoptKey(f.ctx, im.Digest, h, f.h.Current()) })
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch keyward.ErrorCode(err) {
			case "":
				won++
			case keyward.ENOTFOUND:
			default:
				t.Fatalf("AdoptKey: %v, want success or ENOTFOUND", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d of %d concurrent adoptions succeeded, want exactly 1", won, n)
		}
		if got, err := f.s.KeyByHash(f.ctx, h); err != nil || got.ID != im.Key.ID {
			t.Fatalf("KeyByHash after the race = %v, %v; want key %s", got, err, im.Key.ID)
		}
		wantCounts(t, f, 0, 1)
	})
	t.Run("a batch is all or nothing", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		must(t, f.s.ImportKeys(f.ctx, keyward.Change{}, []keyward.KeyImport{importedKey(minimalKey(), "taken")}))
		ok := func() *keyward.Key {
			k := minimalKey()
			k.Role, k.AccountID = keyward.RoleAccountAdmin, a.ID
			return k
		}
		missingAccount := minimalKey()
		missingAccount.Role, missingAccount.AccountID = keyward.RoleAccountAdmin, "acc_missing"
		for _, tc := range []struct {
			name  string
			batch []keyward.KeyImport
			code  string
		}{
			{"a digest already imported", []keyward.KeyImport{importedKey(ok(), "fresh"), importedKey(ok(), "taken")}, keyward.ECONFLICT},
			{"a digest twice in the batch", []keyward.KeyImport{importedKey(ok(), "twice"), importedKey(ok(), "twice")}, keyward.ECONFLICT},
			{"an unknown account", []keyward.KeyImport{importedKey(ok(), "fresh"), importedKey(missingAccount, "other")}, keyward.ENOTFOUND},
			{"a key without hash", []keyward.KeyImport{importedKey(ok(), "fresh"), {Key: ok(), Digest: keyward.DigestOf("x")}}, keyward.EINVALID},
		} {
			if tc.code == keyward.EINVALID {
				tc.batch[1].Key.Hash = keyward.KeyHash{}
			}
			wantCode(t, f.s.ImportKeys(f.ctx, keyward.Change{}, tc.batch), tc.code)
			wantCounts(t, f, 1, 0)
			if n := len(allKeyIDs(f)); n != 1 {
				t.Fatalf("%s: %d keys after a failed import, want 1", tc.name, n)
			}
		}
	})
	t.Run("adopting to a hash another key has is ECONFLICT and changes nothing", func(t *testing.T) {
		f := newFixture(t, open)
		other := f.rootKey()
		im := importedKey(minimalKey(), "clash")
		must(t, f.s.ImportKeys(f.ctx, keyward.Change{}, []keyward.KeyImport{im}))
		_, err := f.s.AdoptKey(f.ctx, im.Digest, other.Hash, 1)
		wantCode(t, err, keyward.ECONFLICT)
		if _, err := f.s.KeyByDigest(f.ctx, im.Digest); err != nil {
			t.Fatalf("KeyByDigest after a failed adoption: %v, want the key still pending", err)
		}
		wantCounts(t, f, 1, 0)
	})
	t.Run("deleting an imported key forgets its import", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		pending := importedKey(minimalKey(), "pending")
		adopted := minimalKey()
		adopted.Role, adopted.AccountID = keyward.RoleAccountAdmin, a.ID
		adoptedIm := importedKey(adopted, "adopted")
		must(t, f.s.ImportKeys(f.ctx, keyward.Change{}, []keyward.KeyImport{pending, adoptedIm}))
		_, err := f.s.AdoptKey(f.ctx, adoptedIm.Digest, f.h.Hash("adopted"), f.h.Current())
		must(t, err)
		wantCounts(t, f, 1, 1)
		_, err = f.s.DeleteKey(f.ctx, keyward.Change{}, pending.Key.ID)
		must(t, err)
		_, err = f.s.KeyByDigest(f.ctx, pending.Digest)
		wantCode(t, err, keyward.ENOTFOUND)
		_, err = f.s.DeleteAccount(f.ctx, keyward.Change{}, a.ID)
		must(t, err)
		wantCounts(t, f, 0, 0)
	})
	t.Run("the import's audit entry is appended with it", func(t *testing.T) {
		f := newFixture(t, open)
		ch := keyward.Change{Audit: NewAuditEntry("key.import", apikey.NewID("key"), "", "")}
		must(t, f.s.ImportKeys(f.ctx, ch, []keyward.KeyImport{importedKey(minimalKey(), "audited")}))
		entries, _, err := f.s.AuditEntries(f.ctx, keyward.AuditFilter{Action: "key.import"}, keyward.Page{})
		must(t, err)
		if len(entries) != 1 {
			t.Fatalf("%d key.import audit entries, want 1", len(entries))
		}
	})
	t.Run("AdoptKey refuses a zero hash", func(t *testing.T) {
		f := newFixture(t, open)
		var d keyward.KeyDigest
		rand.Read(d[:])
		_, err := f.s.AdoptKey(f.ctx, d, keyward.KeyHash{}, 1)
		wantCode(t, err, keyward.EINVALID)
	})
}
