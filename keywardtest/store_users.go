package keywardtest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// testUserIdentity covers users as identities (docs/identities.md): the
// lookup by external id, UpdateUser, and the user's external id, meta and
// secret metadata that every read of its keys carries.
func testUserIdentity(t *testing.T, open func(*testing.T) keyward.Store) {
	kr := NewKeyring(t)
	newUser := func(accountID, externalID string) *keyward.User {
		id := apikey.NewID("usr")
		return &keyward.User{ID: id, AccountID: accountID, Name: "alice", ExternalID: externalID,
			Meta:       json.RawMessage(`{"plan":"pro","region":"eu"}`),
			SecretMeta: seal(t, kr, `{"dsn":"postgres://alice"}`, keyward.UserSecretMetaAD(id)),
			CreatedAt:  fixedTime}
	}
	// wantUserKey fails unless k carries u's external id, meta and secret
	// metadata.
	wantUserKey := func(t *testing.T, what string, k *keyward.Key, u *keyward.User) {
		t.Helper()
		if k.UserExternalID != u.ExternalID || !jsonEqual(k.UserMeta, u.Meta) || !sameSealed(k.UserSecretMeta, u.SecretMeta) {
			t.Fatalf("%s: key %s carries user external id %q, meta %s, secret meta %+v; want %q, %s, %+v",
				what, k.ID, k.UserExternalID, k.UserMeta, k.UserSecretMeta, u.ExternalID, u.Meta, u.SecretMeta)
		}
	}

	t.Run("meta and secret meta are stored and read back", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		u := newUser(a.ID, "ext-1")
		must(t, f.s.CreateUser(f.ctx, keyward.Change{}, u))
		if !u.UpdatedAt.Equal(u.CreatedAt) {
			t.Errorf("UpdatedAt of a new user = %v, want its creation time %v", u.UpdatedAt, u.CreatedAt)
		}
		got, err := f.s.User(f.ctx, u.ID)
		must(t, err)
		wantUser(t, got, u)
		if !jsonEqual(got.Meta, u.Meta) || !got.HasSecretMeta || !got.UpdatedAt.Equal(fixedTime) ||
			openSealed(t, kr, got.SecretMeta, keyward.UserSecretMetaAD(u.ID)) != `{"dsn":"postgres://alice"}` {
			t.Fatalf("User = meta %s, has secret meta %v, updated %v", got.Meta, got.HasSecretMeta, got.UpdatedAt)
		}
		list, _, err := f.s.Users(f.ctx, a.ID, keyward.Page{})
		must(t, err)
		if len(list) != 1 || !jsonEqual(list[0].Meta, u.Meta) || !list[0].HasSecretMeta {
			t.Fatalf("Users = %+v", list)
		}
	})
	t.Run("meta that is not JSON is invalid", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		u := newUser(a.ID, "")
		u.Meta = json.RawMessage(`{"plan":`)
		wantCode(t, f.s.CreateUser(f.ctx, keyward.Change{}, u), keyward.EINVALID)
	})

	t.Run("lookup by external id stays in its account", func(t *testing.T) {
		f := newFixture(t, open)
		a, b := f.account("acme"), f.account("globex")
		u := newUser(a.ID, "ext-1")
		must(t, f.s.CreateUser(f.ctx, keyward.Change{}, u))
		other := newUser(b.ID, "ext-1")
		must(t, f.s.CreateUser(f.ctx, keyward.Change{}, other))
		f.user(a.ID, "no external id")
		got, err := f.s.UserByExternalID(f.ctx, a.ID, "ext-1")
		must(t, err)
		wantUser(t, got, u)
		if got, err = f.s.UserByExternalID(f.ctx, b.ID, "ext-1"); err != nil || got.ID != other.ID {
			t.Fatalf("lookup in the other account = %+v, %v; want %s", got, err, other.ID)
		}
		for _, c := range []struct{ account, external string }{
			{a.ID, "ext-2"}, {a.ID, "EXT-1"}, {"acc_missing", "ext-1"},
			// users without an external id are not found by an empty one
			{a.ID, ""},
		} {
			_, err := f.s.UserByExternalID(f.ctx, c.account, c.external)
			wantCode(t, err, keyward.ENOTFOUND)
		}
	})

	t.Run("keys carry their user's identity on every read", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		u := newUser(a.ID, "ext-1")
		must(t, f.s.CreateUser(f.ctx, keyward.Change{}, u))
		k := fullKey(a.ID, u.ID)
		must(t, f.s.CreateKey(f.ctx, keyward.Change{}, k))
		wantUserKey(t, "CreateKey", k, u)
		batch := batchKeys(a.ID, u.ID, 3)
		must(t, f.s.CreateKeys(f.ctx, keyward.Change{}, batch))
		for _, bk := range batch {
			if bk.UserID == u.ID {
				wantUserKey(t, "CreateKeys", bk, u)
			} else {
				wantUserKey(t, "CreateKeys (no user)", bk, &keyward.User{})
			}
		}
		wantUserKey(t, "Key", f.key(k.ID), u)
		byHash, err := f.s.KeyByHash(f.ctx, k.Hash)
		must(t, err)
		wantUserKey(t, "KeyByHash", byHash, u)
		keys, _, err := f.s.Keys(f.ctx, keyward.KeyFilter{UserID: u.ID}, keyward.Page{})
		must(t, err)
		if len(keys) == 0 {
			t.Fatal("Keys of the user: none")
		}
		for _, lk := range keys {
			wantUserKey(t, "Keys", lk, u)
		}
		var next *keyward.Key
		_, _, err = f.s.RotateKey(f.ctx, keyward.Change{}, k.ID, rotation(fixedTime.Add(time.Hour), &next))
		must(t, err)
		wantUserKey(t, "the replacement of a rotation", f.key(next.ID), u)
		// A key without a user carries nothing.
		admin := f.adminKey(a.ID)
		wantUserKey(t, "an admin key", f.key(admin.ID), &keyward.User{})
	})

	t.Run("UpdateUser saves every field and returns the user's keys as changed", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		u := newUser(a.ID, "ext-1")
		must(t, f.s.CreateUser(f.ctx, keyward.Change{}, u))
		bob := f.user(a.ID, "bob")
		k1, k2 := f.userKey(a.ID, u.ID), f.userKey(a.ID, u.ID)
		bobKey := f.userKey(a.ID, bob.ID)
		updated := fixedTime.Add(time.Hour)
		ch := f.audited("user.update")
		got, keys, err := f.s.UpdateUser(f.ctx, ch, u.ID, func(cur *keyward.User) error {
			cur.Name, cur.ExternalID, cur.UpdatedAt = "Alice Liddell", "ext-9", updated
			cur.Meta = json.RawMessage(`{"plan":"team"}`)
			cur.SecretMeta = seal(t, kr, `{"dsn":"postgres://alice-2"}`, keyward.UserSecretMetaAD(u.ID))
			return nil
		})
		must(t, err)
		if got.Name != "Alice Liddell" || got.ExternalID != "ext-9" || !jsonEqual(got.Meta, json.RawMessage(`{"plan":"team"}`)) ||
			!got.UpdatedAt.Equal(updated) || !got.CreatedAt.Equal(fixedTime) ||
			openSealed(t, kr, got.SecretMeta, keyward.UserSecretMetaAD(u.ID)) != `{"dsn":"postgres://alice-2"}` {
			t.Fatalf("UpdateUser = %+v", got)
		}
		if ch.Audit.Seq == 0 {
			t.Error("UpdateUser did not write its audit entry")
		}
		read, err := f.s.User(f.ctx, u.ID)
		must(t, err)
		if read.ExternalID != "ext-9" || !sameSealed(read.SecretMeta, got.SecretMeta) {
			t.Fatalf("User after UpdateUser = %+v", read)
		}
		if len(keys) != 2 || keys[0].ID > keys[1].ID || (keys[0].ID != k1.ID && keys[0].ID != k2.ID) {
			t.Fatalf("UpdateUser returned keys %v, want %s and %s", keyIDs(keys), k1.ID, k2.ID)
		}
		for _, k := range keys {
			wantUserKey(t, "returned by UpdateUser", k, read)
			if k.AccountID != a.ID || k.Hash == (keyward.KeyHash{}) {
				t.Fatalf("returned key %s lacks its account or hash", k.ID)
			}
		}
		wantUserKey(t, "read after UpdateUser", f.key(k1.ID), read)
		wantUserKey(t, "another user's key", f.key(bobKey.ID), bob)
		if _, err := f.s.UserByExternalID(f.ctx, a.ID, "ext-1"); keyward.ErrorCode(err) != keyward.ENOTFOUND {
			t.Fatalf("the old external id still finds a user: %v", err)
		}
		// Meta and secret meta removed.
		got, _, err = f.s.UpdateUser(f.ctx, keyward.Change{}, u.ID, func(cur *keyward.User) error {
			cur.Meta, cur.SecretMeta = nil, nil
			return nil
		})
		must(t, err)
		if got.Meta != nil || got.SecretMeta != nil || got.HasSecretMeta {
			t.Fatalf("after removing meta: %+v", got)
		}
		wantUserKey(t, "after removing meta", f.key(k2.ID), got)
	})

	t.Run("UpdateUser to a taken external id is conflict and changes nothing", func(t *testing.T) {
		f := newFixture(t, open)
		a, b := f.account("acme"), f.account("globex")
		u := newUser(a.ID, "ext-1")
		must(t, f.s.CreateUser(f.ctx, keyward.Change{}, u))
		must(t, f.s.CreateUser(f.ctx, keyward.Change{}, newUser(a.ID, "ext-2")))
		must(t, f.s.CreateUser(f.ctx, keyward.Change{}, newUser(b.ID, "ext-3")))
		before := len(AuditLog(t, f.s))
		_, _, err := f.s.UpdateUser(f.ctx, f.audited("user.update"), u.ID, func(cur *keyward.User) error {
			cur.Name, cur.ExternalID, cur.Meta = "renamed", "ext-2", json.RawMessage(`{"x":1}`)
			return nil
		})
		wantCode(t, err, keyward.ECONFLICT)
		got, err := f.s.User(f.ctx, u.ID)
		must(t, err)
		wantUser(t, got, u)
		if !jsonEqual(got.Meta, u.Meta) {
			t.Fatalf("meta changed by a refused update: %s", got.Meta)
		}
		if after := len(AuditLog(t, f.s)); after != before {
			t.Fatalf("a refused update wrote %d audit entries", after-before)
		}
		// Another account's external id is free.
		_, _, err = f.s.UpdateUser(f.ctx, keyward.Change{}, u.ID, func(cur *keyward.User) error { cur.ExternalID = "ext-3"; return nil })
		must(t, err)
	})

	t.Run("UpdateUser refuses changing the id or account, and aborts on fn's error", func(t *testing.T) {
		f := newFixture(t, open)
		a, b := f.account("acme"), f.account("globex")
		u := newUser(a.ID, "ext-1")
		must(t, f.s.CreateUser(f.ctx, keyward.Change{}, u))
		_, _, err := f.s.UpdateUser(f.ctx, keyward.Change{}, u.ID, func(cur *keyward.User) error { cur.AccountID = b.ID; return nil })
		wantCode(t, err, keyward.EINVALID)
		_, _, err = f.s.UpdateUser(f.ctx, keyward.Change{}, u.ID, func(cur *keyward.User) error { cur.ID = "usr_other"; return nil })
		wantCode(t, err, keyward.EINVALID)
		_, _, err = f.s.UpdateUser(f.ctx, keyward.Change{}, u.ID, func(cur *keyward.User) error {
			cur.Name = "renamed"
			return errAbort
		})
		if err == nil {
			t.Fatal("UpdateUser with a failing fn succeeded")
		}
		got, err := f.s.User(f.ctx, u.ID)
		must(t, err)
		wantUser(t, got, u)
		_, _, err = f.s.UpdateUser(f.ctx, keyward.Change{}, "usr_missing", func(*keyward.User) error { return nil })
		wantCode(t, err, keyward.ENOTFOUND)
	})
}
