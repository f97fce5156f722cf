package keywardtest

import (
	"slices"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// testUpdateKeyTree is the contract of Store.UpdateKeyTree: the key and its
// descendants (through CreatedBy, at any depth), parents first, changed in
// one transaction with an audit entry each.
func testUpdateKeyTree(t *testing.T, open func(*testing.T) keyward.Store) {
	// tree: admin -> {child -> grandchild, sibling}; other (made by root)
	// and its own child are not in it.
	type tree struct {
		f                                           *fixture
		admin, child, grandchild, sibling, other, x *keyward.Key
	}
	newTree := func(t *testing.T) *tree {
		f := newFixture(t, open)
		a := f.account("acme")
		u := f.user(a.ID, "alice")
		root := f.rootKey()
		tr := &tree{f: f}
		mk := func(role keyward.Role, userID, by string) *keyward.Key {
			return &NewKey(t, f.s, f.h, keyward.Key{Role: role, AccountID: a.ID, UserID: userID, CreatedBy: by}).Key
		}
		tr.admin = mk(keyward.RoleAccountAdmin, "", root.ID)
		tr.child = mk(keyward.RoleUser, u.ID, tr.admin.ID)
		tr.grandchild = mk(keyward.RoleUser, u.ID, tr.child.ID)
		tr.sibling = mk(keyward.RoleAccountAdmin, "", tr.admin.ID)
		tr.other = mk(keyward.RoleAccountAdmin, "", root.ID)
		tr.x = mk(keyward.RoleUser, u.ID, tr.other.ID)
		return tr
	}
	revokeAll := func(seen *[]string) func(k *keyward.Key) (*keyward.AuditEntry, []*keyward.Event, error) {
		return func(k *keyward.Key) (*keyward.AuditEntry, []*keyward.Event, error) {
			*seen = append(*seen, k.ID)
			at := fixedTime
			k.RevokedAt = &at
			return NewAuditEntry("key.revoke", "", k.AccountID, k.ID), nil, nil
		}
	}

	t.Run("visits the key and every descendant, parents first, and writes each entry", func(t *testing.T) {
		tr := newTree(t)
		var seen []string
		changed, err := tr.f.s.UpdateKeyTree(tr.f.ctx, keyward.Change{}, tr.admin.ID, revokeAll(&seen))
		must(t, err)
		if len(seen) != 4 || seen[0] != tr.admin.ID || slices.Index(seen, tr.child.ID) > slices.Index(seen, tr.grandchild.ID) {
			t.Fatalf("visited %v, want admin first and child before grandchild", seen)
		}
		wantIDs(t, sorted(seen...), tr.admin.ID, tr.child.ID, tr.grandchild.ID, tr.sibling.ID)
		var got []string
		for _, k := range changed {
			got = append(got, k.ID)
			if k.RevokedAt == nil || !k.RevokedAt.Equal(fixedTime) || k.Hash == (keyward.KeyHash{}) {
				t.Errorf("returned key %s = %+v, want it as stored, revoked", k.ID, k)
			}
		}
		if !slices.Equal(got, seen) {
			t.Errorf("returned %v, want %v (the order fn saw them)", got, seen)
		}
		for _, id := range seen {
			if tr.f.key(id).RevokedAt == nil {
				t.Errorf("key %s not revoked in the store", id)
			}
		}
		for _, id := range []string{tr.other.ID, tr.x.ID} {
			if tr.f.key(id).RevokedAt != nil {
				t.Errorf("key %s outside the tree was revoked", id)
			}
		}
		entries, _, err := tr.f.s.AuditEntries(tr.f.ctx, keyward.AuditFilter{Action: "key.revoke"}, keyward.Page{})
		must(t, err)
		var targets []string
		for _, e := range entries {
			targets = append(targets, e.TargetID)
		}
		if !slices.Equal(targets, seen) {
			t.Errorf("audit entries target %v, want one per key %v", targets, seen)
		}
	})

	t.Run("a nil entry leaves the key as it was", func(t *testing.T) {
		tr := newTree(t)
		changed, err := tr.f.s.UpdateKeyTree(tr.f.ctx, keyward.Change{}, tr.admin.ID, func(k *keyward.Key) (*keyward.AuditEntry, []*keyward.Event, error) {
			at := fixedTime
			k.RevokedAt = &at
			if k.ID == tr.child.ID {
				return nil, nil, nil
			}
			return NewAuditEntry("key.revoke", "", k.AccountID, k.ID), nil, nil
		})
		must(t, err)
		if len(changed) != 3 || tr.f.key(tr.child.ID).RevokedAt != nil || tr.f.key(tr.grandchild.ID).RevokedAt == nil {
			t.Fatalf("changed %d keys; child revoked %v: want 3, the child untouched and its child revoked", len(changed), tr.f.key(tr.child.ID).RevokedAt)
		}
	})

	t.Run("an error aborts the whole, unchanged", func(t *testing.T) {
		tr := newTree(t)
		_, err := tr.f.s.UpdateKeyTree(tr.f.ctx, keyward.Change{}, tr.admin.ID, func(k *keyward.Key) (*keyward.AuditEntry, []*keyward.Event, error) {
			if k.ID == tr.grandchild.ID {
				return nil, nil, errAbort
			}
			at := fixedTime
			k.RevokedAt = &at
			return NewAuditEntry("key.revoke", "", k.AccountID, k.ID), nil, nil
		})
		if err == nil {
			t.Fatal("UpdateKeyTree succeeded; want fn's error")
		}
		for _, id := range []string{tr.admin.ID, tr.child.ID, tr.sibling.ID} {
			if tr.f.key(id).RevokedAt != nil {
				t.Errorf("key %s revoked by an aborted tree update", id)
			}
		}
		entries, _, err := tr.f.s.AuditEntries(tr.f.ctx, keyward.AuditFilter{Action: "key.revoke"}, keyward.Page{})
		must(t, err)
		if len(entries) != 0 {
			t.Errorf("%d audit entries written by an aborted tree update", len(entries))
		}
	})

	t.Run("a key without descendants is a tree of one; an unknown id is not_found", func(t *testing.T) {
		tr := newTree(t)
		var seen []string
		_, err := tr.f.s.UpdateKeyTree(tr.f.ctx, keyward.Change{}, tr.grandchild.ID, revokeAll(&seen))
		must(t, err)
		wantIDs(t, seen, tr.grandchild.ID)
		_, err = tr.f.s.UpdateKeyTree(tr.f.ctx, keyward.Change{}, apikey.NewID("key"), revokeAll(&seen))
		wantCode(t, err, keyward.ENOTFOUND)
	})
}

// testAccountPolicy is the contract of Account.Policy: stored, read back
// and updated; the zero policy (what NewAccount and accounts made before
// it existed have) allows both.
func testAccountPolicy(t *testing.T, open func(*testing.T) keyward.Store) {
	f := newFixture(t, open)
	plain := f.account("plain")
	if got, err := f.s.Account(f.ctx, plain.ID); err != nil || got.Policy != (keyward.AccountPolicy{}) {
		t.Fatalf("default policy = %+v, %v; want the zero policy (both allowed)", got.Policy, err)
	}
	a := &keyward.Account{ID: apikey.NewID("acc"), Name: "viking", Policy: keyward.AccountPolicy{NoUserMinting: true, NoAdminMinting: true},
		CreatedAt: fixedTime, UpdatedAt: fixedTime}
	must(t, f.s.CreateAccount(f.ctx, keyward.Change{}, a))
	got, err := f.s.Account(f.ctx, a.ID)
	must(t, err)
	wantAccount(t, got, a)
	up, err := f.s.UpdateAccount(f.ctx, keyward.Change{}, a.ID, func(a *keyward.Account) error {
		a.Policy.NoAdminMinting = false
		a.UpdatedAt = fixedTime.Add(time.Minute)
		return nil
	})
	must(t, err)
	if want := (keyward.AccountPolicy{NoUserMinting: true}); up.Policy != want {
		t.Fatalf("updated policy = %+v, want %+v", up.Policy, want)
	}
	list, _, err := f.s.Accounts(f.ctx, keyward.Page{})
	must(t, err)
	for _, l := range list {
		if l.ID == a.ID && l.Policy != up.Policy {
			t.Errorf("listed policy = %+v, want %+v", l.Policy, up.Policy)
		}
	}
}
