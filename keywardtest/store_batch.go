package keywardtest

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/keyward/keyward"
)

// batchSize is larger than any backend's chunk of rows per statement, and
// not a multiple of one, so a batch spans several statements and a tail.
const batchSize = 1333

// allKeyIDs returns the ids of every key in the store.
func allKeyIDs(f *fixture) []string {
	f.t.Helper()
	return pageWalk(f.t, keyward.MaxPageLimit, func(p keyward.Page) ([]*keyward.Key, string, error) {
		return f.s.Keys(f.ctx, keyward.KeyFilter{}, p)
	}, func(k *keyward.Key) string { return k.ID })
}

// batchKeys returns n keys of every role: user keys of user in account
// with every field set, account_admin keys of account and root keys.
func batchKeys(accountID, userID string, n int) []*keyward.Key {
	keys := make([]*keyward.Key, n)
	for i := range keys {
		switch i % 3 {
		case 0:
			keys[i] = fullKey(accountID, userID)
		case 1:
			k := minimalKey()
			k.Role, k.AccountID, k.Permissions = keyward.RoleAccountAdmin, accountID, []string{"keys:verify"}
			k.Name = fmt.Sprintf("admin %d", i)
			keys[i] = k
		default:
			keys[i] = minimalKey()
		}
	}
	return keys
}

func testCreateKeys(t *testing.T, open func(*testing.T) keyward.Store) {
	t.Run("every key of a large batch round-trips", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		u := f.user(a.ID, "alice")
		keys := batchKeys(a.ID, u.ID, batchSize)
		want := make([]*keyward.Key, len(keys))
		for i, k := range keys {
			want[i] = k.Clone()
		}
		must(t, f.s.CreateKeys(f.ctx, keyward.Change{}, keys))
		ids := make([]string, len(want))
		for i, w := range want {
			ids[i] = w.ID
			if keys[i].AccountDisabled {
				t.Fatalf("key %s: AccountDisabled = true after CreateKeys, want false", w.ID)
			}
			wantKey(t, f.key(w.ID), w)
			byHash, err := f.s.KeyByHash(f.ctx, w.Hash)
			must(t, err)
			wantKey(t, byHash, w)
		}
		wantIDs(t, allKeyIDs(f), sorted(ids...)...)
	})
	t.Run("fills AccountDisabled from the account", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		_, err := f.s.UpdateAccount(f.ctx, keyward.Change{}, a.ID, func(a *keyward.Account) error { a.Disabled = true; return nil })
		must(t, err)
		root := minimalKey()
		keys := append(batchKeys(a.ID, f.user(a.ID, "alice").ID, 2), root)
		must(t, f.s.CreateKeys(f.ctx, keyward.Change{}, keys))
		for _, k := range keys {
			want := k.AccountID != ""
			if k.AccountDisabled != want {
				t.Fatalf("key %s (%s): AccountDisabled = %v after CreateKeys, want %v", k.ID, k.Role, k.AccountDisabled, want)
			}
			if got := f.key(k.ID); got.AccountDisabled != want {
				t.Fatalf("key %s (%s): stored AccountDisabled = %v, want %v", k.ID, k.Role, got.AccountDisabled, want)
			}
		}
	})
	t.Run("an empty batch does nothing", func(t *testing.T) {
		f := newFixture(t, open)
		must(t, f.s.CreateKeys(f.ctx, keyward.Change{}, nil))
		must(t, f.s.CreateKeys(f.ctx, keyward.Change{}, []*keyward.Key{}))
		if n := countKeys(f); n != 0 {
			t.Fatalf("store holds %d keys after empty batches, want 0", n)
		}
	})
	t.Run("keys created one by one and in a batch coexist", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		single := f.adminKey(a.ID)
		keys := batchKeys(a.ID, f.user(a.ID, "alice").ID, 10)
		must(t, f.s.CreateKeys(f.ctx, keyward.Change{}, keys))
		ids := []string{single.ID}
		for _, k := range keys {
			ids = append(ids, k.ID)
		}
		wantIDs(t, allKeyIDs(f), sorted(ids...)...)
	})

	// Each case spoils one key near the end of a large batch (so that
	// earlier statements of the batch have run) and expects the error of
	// CreateKey and no key of the batch stored.
	for _, tc := range []struct {
		name string
		code string
		edit func(f *fixture, keys []*keyward.Key, k *keyward.Key)
	}{
		{"a taken id is conflict", keyward.ECONFLICT, func(f *fixture, _ []*keyward.Key, k *keyward.Key) { k.ID = f.rootKey().ID }},
		{"a taken hash is conflict", keyward.ECONFLICT, func(f *fixture, _ []*keyward.Key, k *keyward.Key) { k.Hash = f.rootKey().Hash }},
		{"an id twice in the batch is conflict", keyward.ECONFLICT, func(_ *fixture, keys []*keyward.Key, k *keyward.Key) { k.ID = keys[0].ID }},
		{"a hash twice in the batch is conflict", keyward.ECONFLICT, func(_ *fixture, keys []*keyward.Key, k *keyward.Key) { k.Hash = keys[0].Hash }},
		{"an unknown account is not_found", keyward.ENOTFOUND, func(_ *fixture, _ []*keyward.Key, k *keyward.Key) {
			k.Role, k.AccountID, k.UserID = keyward.RoleAccountAdmin, "acc_missing", ""
		}},
		{"an unknown user is not_found", keyward.ENOTFOUND, func(_ *fixture, _ []*keyward.Key, k *keyward.Key) {
			k.Role, k.UserID = keyward.RoleUser, "usr_missing"
		}},
		{"a user of another account is not_found", keyward.ENOTFOUND, func(f *fixture, _ []*keyward.Key, k *keyward.Key) {
			k.Role, k.UserID = keyward.RoleUser, f.user(f.account("globex").ID, "bob").ID
		}},
		{"meta that is not JSON is invalid", keyward.EINVALID, func(_ *fixture, _ []*keyward.Key, k *keyward.Key) {
			k.Meta = json.RawMessage(`{"a":`)
		}},
		{"a root key with an account is invalid", keyward.EINVALID, func(_ *fixture, _ []*keyward.Key, k *keyward.Key) {
			k.Role, k.UserID = keyward.RoleRoot, ""
		}},
		{"a key without a hash is invalid", keyward.EINVALID, func(_ *fixture, _ []*keyward.Key, k *keyward.Key) {
			k.Hash = keyward.KeyHash{}
		}},
	} {
		t.Run("all or nothing: "+tc.name, func(t *testing.T) {
			f := newFixture(t, open)
			a := f.account("acme")
			u := f.user(a.ID, "alice")
			keys := batchKeys(a.ID, u.ID, batchSize)
			bad := fullKey(a.ID, u.ID)
			tc.edit(f, keys, bad)
			keys[len(keys)-2] = bad
			before := allKeyIDs(f)
			wantCode(t, f.s.CreateKeys(f.ctx, keyward.Change{}, keys), tc.code)
			wantIDs(t, allKeyIDs(f), before...)
			// The store is still usable, and the same keys, fixed, go in.
			keys[len(keys)-2] = fullKey(a.ID, u.ID)
			must(t, f.s.CreateKeys(f.ctx, keyward.Change{}, keys))
			if got, want := len(allKeyIDs(f)), len(before)+len(keys); got != want {
				t.Fatalf("store holds %d keys after the fixed batch, want %d", got, want)
			}
		})
	}

	t.Run("a closed store is unavailable", func(t *testing.T) {
		f := newFixture(t, open)
		must(t, f.s.Close())
		wantCode(t, f.s.CreateKeys(f.ctx, keyward.Change{}, []*keyward.Key{minimalKey()}), keyward.EUNAVAILABLE)
	})
}
