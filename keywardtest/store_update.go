package keywardtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

func testUpdateKey(t *testing.T, open func(*testing.T) keyward.Store) {
	t.Run("saves what fn sets and returns the stored key", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		k := f.adminKey(a.ID)
		want := k.Clone()
		want.Name = "renamed"
		want.Permissions = []string{"keys:verify", "memories:read"}
		want.Meta = json.RawMessage(`{"team":"infra"}`)
		want.ExpiresAt = ptr(fixedTime.Add(24 * time.Hour))
		want.ExpiryScheduled = true
		want.Disabled = true
		want.RevokedAt = ptr(fixedTime.Add(2 * time.Hour))
		want.GraceUntil = ptr(fixedTime.Add(2 * time.Hour))
		want.LastUsedAt = ptr(fixedTime)
		want.UpdatedAt = fixedTime.Add(time.Hour)
		got, err := f.s.UpdateKey(f.ctx, keyward.Change{}, k.ID, func(k *keyward.Key) error {
			k.Name, k.Permissions, k.Meta, k.ExpiresAt = want.Name, want.Permissions, want.Meta, want.ExpiresAt
			k.ExpiryScheduled = want.ExpiryScheduled
			k.Disabled, k.RevokedAt, k.GraceUntil = want.Disabled, want.RevokedAt, want.GraceUntil
			k.LastUsedAt, k.UpdatedAt = want.LastUsedAt, want.UpdatedAt
			return nil
		})
		must(t, err)
		wantKey(t, got, want)
		wantKey(t, f.key(k.ID), want)
		byHash, err := f.s.KeyByHash(f.ctx, k.Hash)
		must(t, err)
		wantKey(t, byHash, want)
	})
	t.Run("fn sees the stored key", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		u := f.user(a.ID, "alice")
		k := fullKey(a.ID, u.ID)
		must(t, f.s.CreateKey(f.ctx, keyward.Change{}, k))
		_, err := f.s.UpdateKey(f.ctx, keyward.Change{}, k.ID, func(got *keyward.Key) error {
			wantKey(t, got, k)
			return nil
		})
		must(t, err)
	})
	t.Run("optional fields can be cleared", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		k := fullKey(a.ID, f.user(a.ID, "alice").ID)
		must(t, f.s.CreateKey(f.ctx, keyward.Change{}, k))
		got, err := f.s.UpdateKey(f.ctx, keyward.Change{}, k.ID, func(k *keyward.Key) error {
			k.Meta, k.ExpiresAt, k.RevokedAt, k.GraceUntil, k.Permissions = nil, nil, nil, nil, nil
			k.ExpiryScheduled = false
			return nil
		})
		must(t, err)
		want := k.Clone()
		want.Meta, want.ExpiresAt, want.RevokedAt, want.GraceUntil, want.Permissions = nil, nil, nil, nil, []string{}
		want.ExpiryScheduled = false
		wantKey(t, got, want)
		wantKey(t, f.key(k.ID), want)
	})
	t.Run("an error from fn aborts and leaves the key unchanged", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		k := f.adminKey(a.ID)
		_, err := f.s.UpdateKey(f.ctx, keyward.Change{}, k.ID, func(k *keyward.Key) error {
			k.Name, k.Disabled, k.Permissions = "changed", true, []string{"everything"}
			return errAbort
		})
		if !errors.Is(err, errAbort) {
			t.Fatalf("UpdateKey error = %v, want fn's error", err)
		}
		wantKey(t, f.key(k.ID), k)
	})
	t.Run("a keyward error from fn keeps its code", func(t *testing.T) {
		f := newFixture(t, open)
		k := f.rootKey()
		_, err := f.s.UpdateKey(f.ctx, keyward.Change{}, k.ID, func(*keyward.Key) error {
			return keyward.Errorf(keyward.EFORBIDDEN, "no")
		})
		wantCode(t, err, keyward.EFORBIDDEN)
	})
	t.Run("unknown id is not_found and fn is not called", func(t *testing.T) {
		f := newFixture(t, open)
		_, err := f.s.UpdateKey(f.ctx, keyward.Change{}, "key_missing", func(*keyward.Key) error {
			t.Error("fn called for a missing key")
			return nil
		})
		wantCode(t, err, keyward.ENOTFOUND)
	})
	t.Run("meta that is not JSON is invalid", func(t *testing.T) {
		f := newFixture(t, open)
		k := f.rootKey()
		_, err := f.s.UpdateKey(f.ctx, keyward.Change{}, k.ID, func(k *keyward.Key) error { k.Meta = json.RawMessage("{"); return nil })
		wantCode(t, err, keyward.EINVALID)
		wantKey(t, f.key(k.ID), k)
	})
	for field, prepare := range sortedEdits() {
		t.Run("refuses to change the "+field, func(t *testing.T) {
			f := newFixture(t, open)
			a := f.account("acme")
			k := f.userKey(a.ID, f.user(a.ID, "alice").ID)
			edit := prepare(f, k)
			_, err := f.s.UpdateKey(f.ctx, keyward.Change{}, k.ID, func(k *keyward.Key) error { edit(k); return nil })
			if err == nil {
				t.Fatalf("UpdateKey changed the %s of a key", field)
			}
			wantKey(t, f.key(k.ID), k)
		})
	}
	t.Run("returns AccountDisabled of the account", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		k := f.adminKey(a.ID)
		_, err := f.s.UpdateAccount(f.ctx, keyward.Change{}, a.ID, func(a *keyward.Account) error { a.Disabled = true; return nil })
		must(t, err)
		got, err := f.s.UpdateKey(f.ctx, keyward.Change{}, k.ID, func(k *keyward.Key) error { k.Name = "x"; return nil })
		must(t, err)
		if !got.AccountDisabled {
			t.Fatal("UpdateKey returned AccountDisabled false for a key of a disabled account")
		}
	})
	t.Run("concurrent updates lose nothing", func(t *testing.T) {
		f := newFixture(t, open)
		k := f.rootKey()
		const n = 16
		var wg sync.WaitGroup
		var want []string
		for i := range n {
			perm := fmt.Sprintf("perm:%02d", i)
			want = append(want, perm)
			wg.Go(func() {
				_, err := f.s.UpdateKey(f.ctx, keyward.Change{}, k.ID, func(k *keyward.Key) error {
					k.Permissions = append(k.Permissions, perm)
					return nil
				})
				if err != nil {
					t.Errorf("UpdateKey: %v", err)
				}
			})
		}
		wg.Wait()
		got := slices.Clone(f.key(k.ID).Permissions)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("after %d concurrent appends permissions = %v, want %v", n, got, want)
		}
	})
}

// immutableEdits are changes that UpdateKey and RotateKey must refuse. Each
// prepares its change (creating rows outside the update: fn must not call
// the store) and returns it.
func immutableEdits() map[string]func(f *fixture, k *keyward.Key) func(*keyward.Key) {
	return map[string]func(f *fixture, k *keyward.Key) func(*keyward.Key){
		"id": func(f *fixture, k *keyward.Key) func(*keyward.Key) {
			id := apikey.NewID("key")
			return func(k *keyward.Key) { k.ID = id }
		},
		"hash": func(f *fixture, k *keyward.Key) func(*keyward.Key) {
			h := randomHash()
			return func(k *keyward.Key) { k.Hash = h }
		},
		"role": func(f *fixture, k *keyward.Key) func(*keyward.Key) {
			return func(k *keyward.Key) { k.Role, k.UserID = keyward.RoleAccountAdmin, "" }
		},
		"account": func(f *fixture, k *keyward.Key) func(*keyward.Key) {
			other := f.account("globex").ID
			return func(k *keyward.Key) { k.AccountID = other }
		},
		"user": func(f *fixture, k *keyward.Key) func(*keyward.Key) {
			other := f.user(k.AccountID, "bob").ID
			return func(k *keyward.Key) { k.UserID = other }
		},
		"environment": func(f *fixture, k *keyward.Key) func(*keyward.Key) {
			return func(k *keyward.Key) { k.Environment = "test" }
		},
	}
}

// sortedEdits returns immutableEdits in a stable order, for subtests.
func sortedEdits() iter.Seq2[string, func(f *fixture, k *keyward.Key) func(*keyward.Key)] {
	edits := immutableEdits()
	return func(yield func(string, func(f *fixture, k *keyward.Key) func(*keyward.Key)) bool) {
		for _, field := range slices.Sorted(maps.Keys(edits)) {
			if !yield(field, edits[field]) {
				return
			}
		}
	}
}

// rotation returns a RotateKey fn like the admin service's: the old key is
// revoked at the end of grace and replaced by a copy with a new id and hash.
func rotation(grace time.Time, next **keyward.Key) func(*keyward.Key) (*keyward.Key, error) {
	return func(old *keyward.Key) (*keyward.Key, error) {
		old.RevokedAt, old.GraceUntil, old.UpdatedAt = &grace, &grace, fixedTime
		n := old.Clone()
		n.ID, n.Hash, n.RotatedFrom, n.MeterID = apikey.NewID("key"), randomHash(), old.ID, old.Meter()
		n.RevokedAt, n.GraceUntil, n.LastUsedAt = nil, nil, nil
		n.CreatedAt, n.UpdatedAt = fixedTime, fixedTime
		*next = n
		return n, nil
	}
}

func testRotateKey(t *testing.T, open func(*testing.T) keyward.Store) {
	grace := fixedTime.Add(time.Hour)
	t.Run("saves the old key and inserts the new one", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		k := f.userKey(a.ID, f.user(a.ID, "alice").ID, "memories:read")
		var next *keyward.Key
		gotOld, gotNext, err := f.s.RotateKey(f.ctx, keyward.Change{}, k.ID, rotation(grace, &next))
		must(t, err)
		wantOld := k.Clone()
		wantOld.RevokedAt, wantOld.GraceUntil, wantOld.UpdatedAt = &grace, &grace, fixedTime
		wantKey(t, gotOld, wantOld)
		wantKey(t, f.key(k.ID), wantOld)
		wantKey(t, gotNext, next)
		byHash, err := f.s.KeyByHash(f.ctx, next.Hash)
		must(t, err)
		wantKey(t, byHash, next)
		if gotNext.RotatedFrom != k.ID || gotNext.MeterID != k.Meter() {
			t.Fatalf("RotatedFrom, MeterID = %q, %q; want %q, %q", gotNext.RotatedFrom, gotNext.MeterID, k.ID, k.Meter())
		}
	})
	t.Run("the key's own rotation policy moves to the replacement", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		k, other := f.adminKey(a.ID), f.adminKey(a.ID)
		own := &keyward.RotationPolicy{KeyID: k.ID, MaxAge: keyward.Duration(48 * time.Hour), ExpireAfter: keyward.Duration(time.Hour), UpdatedAt: fixedTime, UpdatedBy: "key_admin"}
		must(t, f.s.SetRotationPolicy(f.ctx, keyward.Change{}, own))
		must(t, f.s.SetRotationPolicy(f.ctx, keyward.Change{}, &keyward.RotationPolicy{KeyID: other.ID, MaxAge: keyward.Duration(72 * time.Hour), UpdatedAt: fixedTime}))
		must(t, f.s.SetRotationPolicy(f.ctx, keyward.Change{}, &keyward.RotationPolicy{AccountID: a.ID, MaxAge: keyward.Duration(96 * time.Hour), UpdatedAt: fixedTime}))
		var next *keyward.Key
		_, _, err := f.s.RotateKey(f.ctx, keyward.Change{}, k.ID, rotation(grace, &next))
		must(t, err)
		_, err = f.s.RotationPolicy(f.ctx, keyward.RotationScope{KeyID: k.ID})
		wantCode(t, err, keyward.ENOTFOUND)
		got, err := f.s.RotationPolicy(f.ctx, keyward.RotationScope{KeyID: next.ID})
		must(t, err)
		want := *own
		want.KeyID = next.ID
		if *got != want {
			t.Fatalf("the replacement's policy = %+v, want %+v", got, want)
		}
		// Other policies stay where they are.
		got, err = f.s.RotationPolicy(f.ctx, keyward.RotationScope{KeyID: other.ID})
		must(t, err)
		if got.MaxAge != keyward.Duration(72*time.Hour) {
			t.Fatalf("another key's policy changed: %+v", got)
		}
		got, err = f.s.RotationPolicy(f.ctx, keyward.RotationScope{AccountID: a.ID})
		must(t, err)
		if got.MaxAge != keyward.Duration(96*time.Hour) {
			t.Fatalf("the account's policy changed: %+v", got)
		}
		// A key without a policy of its own rotates as before.
		_, _, err = f.s.RotateKey(f.ctx, keyward.Change{}, f.adminKey(a.ID).ID, rotation(grace, &next))
		must(t, err)
		_, err = f.s.RotationPolicy(f.ctx, keyward.RotationScope{KeyID: next.ID})
		wantCode(t, err, keyward.ENOTFOUND)
	})
	t.Run("an aborted rotation leaves the policy with the key", func(t *testing.T) {
		f := newFixture(t, open)
		k := f.adminKey(f.account("acme").ID)
		must(t, f.s.SetRotationPolicy(f.ctx, keyward.Change{}, &keyward.RotationPolicy{KeyID: k.ID, MaxAge: keyward.Duration(48 * time.Hour), UpdatedAt: fixedTime}))
		_, _, err := f.s.RotateKey(f.ctx, keyward.Change{}, k.ID, func(old *keyward.Key) (*keyward.Key, error) { return nil, errAbort })
		if !errors.Is(err, errAbort) {
			t.Fatalf("RotateKey error = %v, want fn's error", err)
		}
		_, err = f.s.RotationPolicy(f.ctx, keyward.RotationScope{KeyID: k.ID})
		must(t, err)
	})
	t.Run("an error from fn changes nothing", func(t *testing.T) {
		f := newFixture(t, open)
		k := f.rootKey()
		_, _, err := f.s.RotateKey(f.ctx, keyward.Change{}, k.ID, func(old *keyward.Key) (*keyward.Key, error) {
			old.RevokedAt = &grace
			return nil, errAbort
		})
		if !errors.Is(err, errAbort) {
			t.Fatalf("RotateKey error = %v, want fn's error", err)
		}
		wantKey(t, f.key(k.ID), k)
		if n := countKeys(f); n != 1 {
			t.Fatalf("%d keys after an aborted rotation, want 1", n)
		}
	})
	t.Run("a new key that cannot be inserted leaves the old one unchanged", func(t *testing.T) {
		f := newFixture(t, open)
		k, other := f.rootKey(), f.rootKey()
		var next *keyward.Key
		_, _, err := f.s.RotateKey(f.ctx, keyward.Change{}, k.ID, func(old *keyward.Key) (*keyward.Key, error) {
			n, err := rotation(grace, &next)(old)
			n.Hash = other.Hash
			return n, err
		})
		wantCode(t, err, keyward.ECONFLICT)
		wantKey(t, f.key(k.ID), k)
		_, err = f.s.Key(f.ctx, next.ID)
		wantCode(t, err, keyward.ENOTFOUND)
	})
	t.Run("unknown id is not_found and fn is not called", func(t *testing.T) {
		f := newFixture(t, open)
		_, _, err := f.s.RotateKey(f.ctx, keyward.Change{}, "key_missing", func(*keyward.Key) (*keyward.Key, error) {
			t.Error("fn called for a missing key")
			return nil, errAbort
		})
		wantCode(t, err, keyward.ENOTFOUND)
	})
	for field, prepare := range sortedEdits() {
		t.Run("refuses to change the "+field+" of the old key", func(t *testing.T) {
			f := newFixture(t, open)
			a := f.account("acme")
			k := f.userKey(a.ID, f.user(a.ID, "alice").ID)
			edit := prepare(f, k)
			var next *keyward.Key
			_, _, err := f.s.RotateKey(f.ctx, keyward.Change{}, k.ID, func(old *keyward.Key) (*keyward.Key, error) {
				n, err := rotation(grace, &next)(old)
				edit(old)
				return n, err
			})
			if err == nil {
				t.Fatalf("RotateKey changed the %s of the old key", field)
			}
			wantKey(t, f.key(k.ID), k)
			_, err = f.s.Key(f.ctx, next.ID)
			wantCode(t, err, keyward.ENOTFOUND)
		})
	}
}
