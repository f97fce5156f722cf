package keywardtest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// TestStore is the contract suite of keyward.Store: every backend runs it,
// and it is the executable specification of the interface. open must return
// a new, empty store for each call; it is called once per subtest. The
// suite closes some stores itself, so whatever cleanup open registers must
// tolerate a store that is already closed. The subtests run in parallel
// (each on its own stores), so open must be safe to call concurrently.
//
// The fn given to UpdateAccount, UpdateUser, UpdateKey and RotateKey runs inside the
// store's transaction and must not call the store.
//
// Times given to a store carry microseconds at most (see Now): that is the
// precision every backend keeps.
func TestStore(t *testing.T, open func(t *testing.T) keyward.Store) {
	for _, c := range []struct {
		name string
		test func(*testing.T, func(*testing.T) keyward.Store)
	}{
		{"Accounts", testAccounts},
		{"UpdateAccount", testUpdateAccount},
		{"DeleteAccount", testDeleteAccount},
		{"Users", testUsers},
		{"DeleteUser", testDeleteUser},
		{"UserIdentity", testUserIdentity},
		{"Keys", testKeys},
		{"CreateKeys", testCreateKeys},
		{"KeyByHash", testKeyByHash},
		{"ListKeys", testListKeys},
		{"UpdateKey", testUpdateKey},
		{"RotateKey", testRotateKey},
		{"UpdateKeyTree", testUpdateKeyTree},
		{"AccountPolicy", testAccountPolicy},
		{"DeleteKey", testDeleteKey},
		{"TouchKeys", testTouchKeys},
		{"BootstrapRootKey", testBootstrapRootKey},
		{"IPRules", testIPRules},
		{"ActiveIPRules", testActiveIPRules},
		{"KeyIPAllow", testKeyIPAllow},
		{"RateLimits", testRateLimits},
		{"KeyCredits", testKeyCredits},
		{"SpendCredits", testSpendCredits},
		{"WriteCredits", testWriteCredits},
		{"Meters", testMeters},
		{"Anomalies", testAnomalies},
		{"Audit", testAudit},
		{"Usage", testUsage},
		{"TryLock", testTryLock},
		{"RotationPolicies", testRotationPolicies},
		{"KeyNotices", testKeyNotices},
		{"ExpiredKeys", testExpiredKeys},
		{"RotationDueKeys", testRotationDueKeys},
		{"RetiredKeysAndIPRules", testRetired},
		{"CreditRefillsDue", testCreditRefillsDue},
		{"KeyImports", testKeyImports},
		{"Webhooks", testWebhooks},
		{"Credentials", testCredentials},
		{"SecretMeta", testSecretMeta},
		{"Roles", testRoles},
		{"Portal", testPortal},
		{"Ping", testPing},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.test(t, open)
		})
	}
}

// fixture is a fresh store with a hasher, for one subtest.
type fixture struct {
	t   *testing.T
	ctx context.Context
	s   keyward.Store
	h   *apikey.Hasher
}

func newFixture(t *testing.T, open func(t *testing.T) keyward.Store) *fixture {
	t.Helper()
	return &fixture{t: t, ctx: t.Context(), s: open(t), h: NewHasher(t)}
}

func (f *fixture) account(name string) *keyward.Account { return NewAccount(f.t, f.s, name) }
func (f *fixture) user(accountID, name string) *keyward.User {
	return NewUser(f.t, f.s, accountID, name)
}
func (f *fixture) rootKey() *keyward.Key { return &NewRootKey(f.t, f.s, f.h).Key }
func (f *fixture) adminKey(accountID string) *keyward.Key {
	return &NewAdminKey(f.t, f.s, f.h, accountID).Key
}
func (f *fixture) userKey(accountID, userID string, perms ...string) *keyward.Key {
	return &NewUserKey(f.t, f.s, f.h, accountID, userID, perms...).Key
}

// key reads key id back, failing the test if it cannot.
func (f *fixture) key(id string) *keyward.Key {
	f.t.Helper()
	k, err := f.s.Key(f.ctx, id)
	if err != nil {
		f.t.Fatalf("Key(%s): %v", id, err)
	}
	return k
}

var errAbort = errors.New("keywardtest: fn aborts")

// fixedTime is a time with microseconds, the precision stores keep.
var fixedTime = time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.UTC)

func randomHash() keyward.KeyHash {
	var h keyward.KeyHash
	rand.Read(h[:])
	return h
}

func ptr[T any](v T) *T { return &v }

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

// wantCode fails unless err carries the keyward error code.
func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if got := keyward.ErrorCode(err); got != code {
		t.Fatalf("error code = %q, want %q (error: %v)", got, code, err)
	}
}

// pageWalk lists every item with page size limit, checking that each page
// but the last is full, that ids ascend strictly across pages and that next
// is "" exactly on the last page. It returns the ids in order.
func pageWalk[T any](t *testing.T, limit int, list func(keyward.Page) ([]T, string, error), id func(T) string) []string {
	t.Helper()
	var ids []string
	p := keyward.Page{Limit: limit}
	for range 1000 {
		items, next, err := list(p)
		must(t, err)
		if len(items) == 0 && p.After != "" {
			t.Fatalf("next %q led to an empty page: the page before the last must have next \"\"", p.After)
		}
		if len(items) > limit {
			t.Fatalf("page after %q has %d items, limit %d", p.After, len(items), limit)
		}
		for _, it := range items {
			if n := len(ids); n > 0 && id(it) <= ids[n-1] {
				t.Fatalf("id %s listed after %s: ids must ascend", id(it), ids[n-1])
			}
			ids = append(ids, id(it))
		}
		if next == "" {
			return ids
		}
		if len(items) != limit {
			t.Fatalf("page after %q has %d items and next %q: a page before the last must be full", p.After, len(items), next)
		}
		if next != id(items[len(items)-1]) {
			t.Fatalf("next = %q, want the last id of the page %q", next, id(items[len(items)-1]))
		}
		p.After = next
	}
	t.Fatal("pagination does not end")
	return nil
}

func sorted(ids ...string) []string {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return ids
}

func wantIDs(t testing.TB, got []string, want ...string) {
	t.Helper()
	if want = sorted(want...); !slices.Equal(got, want) {
		t.Fatalf("ids = %v, want %v", got, want)
	}
}

func accountIDs(as []*keyward.Account) []string {
	var ids []string
	for _, a := range as {
		ids = append(ids, a.ID)
	}
	return ids
}

func wantAccount(t testing.TB, got, want *keyward.Account) {
	t.Helper()
	if got.ID != want.ID || got.Name != want.Name || got.KeyPrefix != want.KeyPrefix || got.Disabled != want.Disabled || got.Policy != want.Policy ||
		!slices.Equal(got.RateLimits, want.RateLimits) || !got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Fatalf("account = %+v, want %+v", got, want)
	}
	isUTC(t, "CreatedAt", got.CreatedAt)
	isUTC(t, "UpdatedAt", got.UpdatedAt)
}

func isUTC(t testing.TB, field string, v time.Time) {
	t.Helper()
	if v.Location() != time.UTC {
		t.Fatalf("%s is in %v; stores return UTC", field, v.Location())
	}
}

func testAccounts(t *testing.T, open func(*testing.T) keyward.Store) {
	t.Run("create then get returns every field", func(t *testing.T) {
		f := newFixture(t, open)
		a := &keyward.Account{ID: apikey.NewID("acc"), Name: "acme", KeyPrefix: "acme_live", Disabled: true,
			RateLimits: accountLimits, CreatedAt: fixedTime, UpdatedAt: fixedTime.Add(time.Hour)}
		must(t, f.s.CreateAccount(f.ctx, keyward.Change{}, a))
		got, err := f.s.Account(f.ctx, a.ID)
		must(t, err)
		wantAccount(t, got, a)
	})
	t.Run("unknown id is not_found", func(t *testing.T) {
		f := newFixture(t, open)
		_, err := f.s.Account(f.ctx, "acc_missing")
		wantCode(t, err, keyward.ENOTFOUND)
	})
	t.Run("taken id is conflict", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		err := f.s.CreateAccount(f.ctx, keyward.Change{}, &keyward.Account{ID: a.ID, Name: "other", CreatedAt: fixedTime, UpdatedAt: fixedTime})
		wantCode(t, err, keyward.ECONFLICT)
	})
	t.Run("taken name is conflict", func(t *testing.T) {
		f := newFixture(t, open)
		f.account("acme")
		err := f.s.CreateAccount(f.ctx, keyward.Change{}, &keyward.Account{ID: apikey.NewID("acc"), Name: "acme", CreatedAt: fixedTime, UpdatedAt: fixedTime})
		wantCode(t, err, keyward.ECONFLICT)
	})
	t.Run("empty store lists nothing", func(t *testing.T) {
		f := newFixture(t, open)
		as, next, err := f.s.Accounts(f.ctx, keyward.Page{})
		must(t, err)
		if len(as) != 0 || next != "" {
			t.Fatalf("Accounts = %d items, next %q; want none", len(as), next)
		}
	})
	for _, tc := range []struct{ n, limit int }{{7, 3}, {6, 3}, {3, 3}, {2, 5}, {4, 1}} {
		t.Run(fmt.Sprintf("pages of %d walk %d accounts exactly once", tc.limit, tc.n), func(t *testing.T) {
			f := newFixture(t, open)
			var want []string
			for i := range tc.n {
				want = append(want, f.account(fmt.Sprintf("acct-%d", i)).ID)
			}
			got := pageWalk(t, tc.limit, func(p keyward.Page) ([]*keyward.Account, string, error) {
				return f.s.Accounts(f.ctx, p)
			}, func(a *keyward.Account) string { return a.ID })
			wantIDs(t, got, want...)
		})
	}
	t.Run("list returns every field", func(t *testing.T) {
		f := newFixture(t, open)
		a := &keyward.Account{ID: apikey.NewID("acc"), Name: "acme", KeyPrefix: "acme_live", Disabled: true,
			RateLimits: accountLimits, CreatedAt: fixedTime, UpdatedAt: fixedTime}
		must(t, f.s.CreateAccount(f.ctx, keyward.Change{}, a))
		as, _, err := f.s.Accounts(f.ctx, keyward.Page{})
		must(t, err)
		if len(as) != 1 {
			t.Fatalf("Accounts = %v, want one", accountIDs(as))
		}
		wantAccount(t, as[0], a)
	})
}

func testUpdateAccount(t *testing.T, open func(*testing.T) keyward.Store) {
	t.Run("saves what fn sets and returns the stored account", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		later := fixedTime.Add(time.Hour)
		got, err := f.s.UpdateAccount(f.ctx, keyward.Change{}, a.ID, func(a *keyward.Account) error {
			a.Name, a.KeyPrefix, a.Disabled, a.UpdatedAt = "acme corp", "acme_live", true, later
			a.RateLimits = accountLimits
			return nil
		})
		must(t, err)
		want := *a
		want.Name, want.KeyPrefix, want.Disabled, want.UpdatedAt = "acme corp", "acme_live", true, later
		want.RateLimits = accountLimits
		wantAccount(t, got, &want)
		read, err := f.s.Account(f.ctx, a.ID)
		must(t, err)
		wantAccount(t, read, &want)
	})
	t.Run("fn sees the stored account", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		_, err := f.s.UpdateAccount(f.ctx, keyward.Change{}, a.ID, func(got *keyward.Account) error {
			wantAccount(t, got, a)
			return nil
		})
		must(t, err)
	})
	t.Run("an error from fn aborts and leaves the account unchanged", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		_, err := f.s.UpdateAccount(f.ctx, keyward.Change{}, a.ID, func(a *keyward.Account) error {
			a.Name, a.Disabled = "changed", true
			return errAbort
		})
		if !errors.Is(err, errAbort) {
			t.Fatalf("UpdateAccount error = %v, want fn's error", err)
		}
		got, err := f.s.Account(f.ctx, a.ID)
		must(t, err)
		wantAccount(t, got, a)
	})
	t.Run("unknown id is not_found and fn is not called", func(t *testing.T) {
		f := newFixture(t, open)
		_, err := f.s.UpdateAccount(f.ctx, keyward.Change{}, "acc_missing", func(*keyward.Account) error {
			t.Error("fn called for a missing account")
			return nil
		})
		wantCode(t, err, keyward.ENOTFOUND)
	})
	t.Run("renaming to a taken name is conflict", func(t *testing.T) {
		f := newFixture(t, open)
		f.account("acme")
		b := f.account("globex")
		_, err := f.s.UpdateAccount(f.ctx, keyward.Change{}, b.ID, func(a *keyward.Account) error { a.Name = "acme"; return nil })
		wantCode(t, err, keyward.ECONFLICT)
		got, err := f.s.Account(f.ctx, b.ID)
		must(t, err)
		wantAccount(t, got, b)
	})
	t.Run("the id cannot change", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		newID := apikey.NewID("acc")
		_, err := f.s.UpdateAccount(f.ctx, keyward.Change{}, a.ID, func(a *keyward.Account) error { a.ID = newID; return nil })
		if err == nil {
			t.Fatal("UpdateAccount changed the id of an account")
		}
		got, err := f.s.Account(f.ctx, a.ID)
		must(t, err)
		wantAccount(t, got, a)
		_, err = f.s.Account(f.ctx, newID)
		wantCode(t, err, keyward.ENOTFOUND)
	})
}

func testDeleteAccount(t *testing.T, open func(*testing.T) keyward.Store) {
	t.Run("deletes its users and keys and returns the keys' hashes", func(t *testing.T) {
		f := newFixture(t, open)
		a, b := f.account("acme"), f.account("globex")
		ua, ub := f.user(a.ID, "alice"), f.user(b.ID, "bob")
		adminA, userA := f.adminKey(a.ID), f.userKey(a.ID, ua.ID)
		adminB, userB, root := f.adminKey(b.ID), f.userKey(b.ID, ub.ID), f.rootKey()

		hashes, err := f.s.DeleteAccount(f.ctx, keyward.Change{}, a.ID)
		must(t, err)
		wantHashes(t, hashes, adminA.Hash, userA.Hash)

		_, err = f.s.Account(f.ctx, a.ID)
		wantCode(t, err, keyward.ENOTFOUND)
		_, err = f.s.User(f.ctx, ua.ID)
		wantCode(t, err, keyward.ENOTFOUND)
		for _, k := range []*keyward.Key{adminA, userA} {
			_, err = f.s.Key(f.ctx, k.ID)
			wantCode(t, err, keyward.ENOTFOUND)
			_, err = f.s.KeyByHash(f.ctx, k.Hash)
			wantCode(t, err, keyward.ENOTFOUND)
		}
		for _, k := range []*keyward.Key{adminB, userB, root} {
			f.key(k.ID)
		}
		_, err = f.s.User(f.ctx, ub.ID)
		must(t, err)
	})
	t.Run("an account without keys returns no hashes", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		f.user(a.ID, "alice")
		hashes, err := f.s.DeleteAccount(f.ctx, keyward.Change{}, a.ID)
		must(t, err)
		wantHashes(t, hashes)
	})
	t.Run("unknown id is not_found", func(t *testing.T) {
		f := newFixture(t, open)
		_, err := f.s.DeleteAccount(f.ctx, keyward.Change{}, "acc_missing")
		wantCode(t, err, keyward.ENOTFOUND)
	})
	t.Run("a deleted account's name is free again", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		_, err := f.s.DeleteAccount(f.ctx, keyward.Change{}, a.ID)
		must(t, err)
		f.account("acme")
	})
}

func wantHashes(t testing.TB, got []keyward.KeyHash, want ...keyward.KeyHash) {
	t.Helper()
	cmp := func(a, b keyward.KeyHash) int { return slices.Compare(a[:], b[:]) }
	got, want = slices.Clone(got), slices.Clone(want)
	slices.SortFunc(got, cmp)
	slices.SortFunc(want, cmp)
	if !slices.Equal(got, want) {
		t.Fatalf("got %d hashes %x, want %d %x", len(got), got, len(want), want)
	}
}

func wantUser(t testing.TB, got, want *keyward.User) {
	t.Helper()
	if got.ID != want.ID || got.AccountID != want.AccountID || got.Name != want.Name ||
		got.ExternalID != want.ExternalID || !got.CreatedAt.Equal(want.CreatedAt) {
		t.Fatalf("user = %+v, want %+v", got, want)
	}
	isUTC(t, "CreatedAt", got.CreatedAt)
}

func testUsers(t *testing.T, open func(*testing.T) keyward.Store) {
	newUser := func(accountID, name, externalID string) *keyward.User {
		return &keyward.User{ID: apikey.NewID("usr"), AccountID: accountID, Name: name, ExternalID: externalID, CreatedAt: fixedTime}
	}
	t.Run("create then get returns every field", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		u := newUser(a.ID, "Alice", "ext-42")
		must(t, f.s.CreateUser(f.ctx, keyward.Change{}, u))
		got, err := f.s.User(f.ctx, u.ID)
		must(t, err)
		wantUser(t, got, u)
	})
	t.Run("unknown id is not_found", func(t *testing.T) {
		f := newFixture(t, open)
		_, err := f.s.User(f.ctx, "usr_missing")
		wantCode(t, err, keyward.ENOTFOUND)
	})
	t.Run("unknown account is not_found", func(t *testing.T) {
		f := newFixture(t, open)
		err := f.s.CreateUser(f.ctx, keyward.Change{}, newUser("acc_missing", "alice", ""))
		wantCode(t, err, keyward.ENOTFOUND)
	})
	t.Run("taken id is conflict", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		u := f.user(a.ID, "alice")
		dup := newUser(a.ID, "bob", "")
		dup.ID = u.ID
		wantCode(t, f.s.CreateUser(f.ctx, keyward.Change{}, dup), keyward.ECONFLICT)
	})
	t.Run("external id is unique within an account only", func(t *testing.T) {
		f := newFixture(t, open)
		a, b := f.account("acme"), f.account("globex")
		must(t, f.s.CreateUser(f.ctx, keyward.Change{}, newUser(a.ID, "alice", "ext-1")))
		wantCode(t, f.s.CreateUser(f.ctx, keyward.Change{}, newUser(a.ID, "alice again", "ext-1")), keyward.ECONFLICT)
		must(t, f.s.CreateUser(f.ctx, keyward.Change{}, newUser(b.ID, "alice at globex", "ext-1")))
	})
	t.Run("many users may have no external id", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		for _, name := range []string{"alice", "bob", "carol"} {
			must(t, f.s.CreateUser(f.ctx, keyward.Change{}, newUser(a.ID, name, "")))
		}
	})
	t.Run("list holds only the account's users, page by page", func(t *testing.T) {
		f := newFixture(t, open)
		a, b := f.account("acme"), f.account("globex")
		var want []string
		for i := range 5 {
			want = append(want, f.user(a.ID, fmt.Sprintf("a%d", i)).ID)
			f.user(b.ID, fmt.Sprintf("b%d", i))
		}
		got := pageWalk(t, 2, func(p keyward.Page) ([]*keyward.User, string, error) {
			return f.s.Users(f.ctx, a.ID, p)
		}, func(u *keyward.User) string { return u.ID })
		wantIDs(t, got, want...)
	})
	t.Run("list returns every field", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		u := newUser(a.ID, "Alice", "ext-42")
		must(t, f.s.CreateUser(f.ctx, keyward.Change{}, u))
		us, next, err := f.s.Users(f.ctx, a.ID, keyward.Page{})
		must(t, err)
		if len(us) != 1 || next != "" {
			t.Fatalf("Users = %d items, next %q; want one, no next", len(us), next)
		}
		wantUser(t, us[0], u)
	})
	t.Run("an account without users lists nothing", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		us, next, err := f.s.Users(f.ctx, a.ID, keyward.Page{})
		must(t, err)
		if len(us) != 0 || next != "" {
			t.Fatalf("Users = %d items, next %q; want none", len(us), next)
		}
	})
}

func testDeleteUser(t *testing.T, open func(*testing.T) keyward.Store) {
	t.Run("deletes the user's keys only and returns their hashes", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		alice, bob := f.user(a.ID, "alice"), f.user(a.ID, "bob")
		k1, k2 := f.userKey(a.ID, alice.ID), f.userKey(a.ID, alice.ID)
		bobKey, admin := f.userKey(a.ID, bob.ID), f.adminKey(a.ID)

		hashes, err := f.s.DeleteUser(f.ctx, keyward.Change{}, alice.ID)
		must(t, err)
		wantHashes(t, hashes, k1.Hash, k2.Hash)
		_, err = f.s.User(f.ctx, alice.ID)
		wantCode(t, err, keyward.ENOTFOUND)
		for _, k := range []*keyward.Key{k1, k2} {
			_, err = f.s.KeyByHash(f.ctx, k.Hash)
			wantCode(t, err, keyward.ENOTFOUND)
		}
		f.key(bobKey.ID)
		f.key(admin.ID)
		_, err = f.s.Account(f.ctx, a.ID)
		must(t, err)
	})
	t.Run("a user without keys returns no hashes", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		u := f.user(a.ID, "alice")
		hashes, err := f.s.DeleteUser(f.ctx, keyward.Change{}, u.ID)
		must(t, err)
		wantHashes(t, hashes)
	})
	t.Run("unknown id is not_found", func(t *testing.T) {
		f := newFixture(t, open)
		_, err := f.s.DeleteUser(f.ctx, keyward.Change{}, "usr_missing")
		wantCode(t, err, keyward.ENOTFOUND)
	})
}

func testPing(t *testing.T, open func(*testing.T) keyward.Store) {
	t.Run("an open store answers", func(t *testing.T) {
		f := newFixture(t, open)
		must(t, f.s.Ping(f.ctx))
	})
	t.Run("a closed store is unavailable", func(t *testing.T) {
		f := newFixture(t, open)
		must(t, f.s.Close())
		wantCode(t, f.s.Ping(f.ctx), keyward.EUNAVAILABLE)
	})
}
