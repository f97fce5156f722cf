package keywardtest

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// wantKey fails unless got equals want field by field: times as instants
// (and got's in UTC), meta as JSON values, permissions in order and never
// nil.
func wantKey(t testing.TB, got, want *keyward.Key) {
	t.Helper()
	if d := diffKey(got, want); len(d) > 0 {
		t.Fatalf("key %s differs:\n%s", want.ID, d)
	}
}

func diffKey(got, want *keyward.Key) string {
	var d string
	check := func(field string, ok bool, g, w any) {
		if !ok {
			d += fmt.Sprintf("\t%s: got %v, want %v\n", field, g, w)
		}
	}
	check("ID", got.ID == want.ID, got.ID, want.ID)
	check("Hash", got.Hash == want.Hash, got.Hash, want.Hash)
	check("PepperVersion", got.PepperVersion == want.PepperVersion, got.PepperVersion, want.PepperVersion)
	check("Start", got.Start == want.Start, got.Start, want.Start)
	check("Prefix", got.Prefix == want.Prefix, got.Prefix, want.Prefix)
	// A key written without an environment reads back live.
	check("Environment", got.Environment == keyward.EnvironmentOf(want.Environment), got.Environment, keyward.EnvironmentOf(want.Environment))
	check("Name", got.Name == want.Name, got.Name, want.Name)
	check("Role", got.Role == want.Role, got.Role, want.Role)
	check("AccountID", got.AccountID == want.AccountID, got.AccountID, want.AccountID)
	check("UserID", got.UserID == want.UserID, got.UserID, want.UserID)
	check("Permissions", slices.Equal(got.Permissions, want.Permissions), got.Permissions, want.Permissions)
	check("Permissions non-nil", got.Permissions != nil, "nil", "an empty slice")
	check("Meta", jsonEqual(got.Meta, want.Meta), string(got.Meta), string(want.Meta))
	check("ExpiresAt", timeEqual(got.ExpiresAt, want.ExpiresAt), got.ExpiresAt, want.ExpiresAt)
	check("ExpiryScheduled", got.ExpiryScheduled == want.ExpiryScheduled, got.ExpiryScheduled, want.ExpiryScheduled)
	check("IPAllow", slices.Equal(got.IPAllow, want.IPAllow), got.IPAllow, want.IPAllow)
	check("RateLimits", slices.Equal(got.RateLimits, want.RateLimits), got.RateLimits, want.RateLimits)
	check("Credits", creditsEqual(got.Credits, want.Credits), fmtCredits(got.Credits), fmtCredits(want.Credits))
	check("Disabled", got.Disabled == want.Disabled, got.Disabled, want.Disabled)
	check("RevokedAt", timeEqual(got.RevokedAt, want.RevokedAt), got.RevokedAt, want.RevokedAt)
	check("RotatedFrom", got.RotatedFrom == want.RotatedFrom, got.RotatedFrom, want.RotatedFrom)
	check("MeterID", got.MeterID == want.MeterID, got.MeterID, want.MeterID)
	check("GraceUntil", timeEqual(got.GraceUntil, want.GraceUntil), got.GraceUntil, want.GraceUntil)
	check("CreatedAt", got.CreatedAt.Equal(want.CreatedAt), got.CreatedAt, want.CreatedAt)
	check("CreatedBy", got.CreatedBy == want.CreatedBy, got.CreatedBy, want.CreatedBy)
	check("LastUsedAt", timeEqual(got.LastUsedAt, want.LastUsedAt), got.LastUsedAt, want.LastUsedAt)
	check("UpdatedAt", got.UpdatedAt.Equal(want.UpdatedAt), got.UpdatedAt, want.UpdatedAt)
	check("AccountDisabled", got.AccountDisabled == want.AccountDisabled, got.AccountDisabled, want.AccountDisabled)
	check("AccountRateLimits", slices.Equal(got.AccountRateLimits, want.AccountRateLimits), got.AccountRateLimits, want.AccountRateLimits)
	times := map[string]*time.Time{"ExpiresAt": got.ExpiresAt, "RevokedAt": got.RevokedAt,
		"GraceUntil": got.GraceUntil, "LastUsedAt": got.LastUsedAt, "CreatedAt": &got.CreatedAt, "UpdatedAt": &got.UpdatedAt}
	if got.Credits != nil {
		times["Credits.RefilledAt"] = &got.Credits.RefilledAt
	}
	for field, v := range times {
		check(field+" location", v == nil || v.Location() == time.UTC, "not UTC", "UTC")
	}
	return d
}

// creditsEqual compares credits field by field, RefilledAt as an instant.
func creditsEqual(a, b *keyward.Credits) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	refillEqual := a.Refill == nil && b.Refill == nil || a.Refill != nil && b.Refill != nil && *a.Refill == *b.Refill
	return a.Remaining == b.Remaining && refillEqual && a.RefilledAt.Equal(b.RefilledAt) && a.Version == b.Version
}

// fmtCredits prints credits with their refill and version.
func fmtCredits(c *keyward.Credits) string {
	if c == nil {
		return "none"
	}
	refill := "none"
	if c.Refill != nil {
		refill = fmt.Sprintf("%d per %v", c.Refill.Amount, time.Duration(c.Refill.Interval))
		if c.Refill.Day != 0 {
			refill = fmt.Sprintf("%d monthly on day %d", c.Refill.Amount, c.Refill.Day)
		}
	}
	return fmt.Sprintf("{remaining %d, refill %s, refilled at %v, version %d}", c.Remaining, refill, c.RefilledAt, c.Version)
}

func timeEqual(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(*b)
}

// jsonEqual compares JSON values, so a backend may normalise spacing and
// object key order.
func jsonEqual(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == 0 && len(b) == 0
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// fullKey returns a user key of a user in account with every field set.
func fullKey(accountID, userID string) *keyward.Key {
	inTwoHours := time.FixedZone("UTC+2", 2*60*60)
	return &keyward.Key{
		ID:            apikey.NewID("key"),
		Hash:          randomHash(),
		PepperVersion: 3,
		Start:         "acme_test_3vQb",
		Prefix:        "acme_test",
		Environment:   "test",
		Name:          "ci deploys",
		Role:          keyward.RoleUser,
		AccountID:     accountID,
		UserID:        userID,
		Permissions:   []string{"memories:write", "memories:read"},
		Meta:          json.RawMessage(`{"tier": "gold", "limits": {"rps": 10}, "tags": ["a", "b"]}`),
		ExpiresAt:     ptr(fixedTime.Add(90 * 24 * time.Hour).In(inTwoHours)),
		// As if a rotation policy had scheduled it.
		ExpiryScheduled: true,
		IPAllow:         []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")},
		RateLimits: []keyward.RateLimit{
			{Name: "per-second", Limit: 10, Window: keyward.Duration(time.Second)},
			{Name: "daily", Limit: 100000, Window: keyward.Duration(24 * time.Hour)},
		},
		Credits: &keyward.Credits{
			Remaining:  1234,
			Refill:     &keyward.CreditRefill{Amount: 5000, Interval: keyward.Duration(30 * 24 * time.Hour)},
			RefilledAt: fixedTime.In(inTwoHours),
			Version:    7,
		},
		Disabled:    true,
		RevokedAt:   ptr(fixedTime.Add(48 * time.Hour)),
		RotatedFrom: apikey.NewID("key"),
		MeterID:     apikey.NewID("key"),
		GraceUntil:  ptr(fixedTime.Add(47 * time.Hour)),
		CreatedAt:   fixedTime,
		CreatedBy:   apikey.NewID("key"),
		LastUsedAt:  ptr(fixedTime.Add(time.Minute)),
		UpdatedAt:   fixedTime.Add(time.Second),
	}
}

// minimalKey returns a root key with only the required fields set.
func minimalKey() *keyward.Key {
	return &keyward.Key{ID: apikey.NewID("key"), Hash: randomHash(), PepperVersion: 1, Role: keyward.RoleRoot,
		CreatedAt: fixedTime, UpdatedAt: fixedTime}
}

func testKeys(t *testing.T, open func(*testing.T) keyward.Store) {
	t.Run("every field round-trips", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		u := f.user(a.ID, "alice")
		k := fullKey(a.ID, u.ID)
		must(t, f.s.CreateKey(f.ctx, keyward.Change{}, k))
		wantKey(t, f.key(k.ID), k)
		byHash, err := f.s.KeyByHash(f.ctx, k.Hash)
		must(t, err)
		wantKey(t, byHash, k)
		list, _, err := f.s.Keys(f.ctx, keyward.KeyFilter{}, keyward.Page{})
		must(t, err)
		if len(list) != 1 {
			t.Fatalf("Keys lists %d keys, want 1", len(list))
		}
		wantKey(t, list[0], k)
	})
	t.Run("unset fields read back unset and permissions as an empty slice", func(t *testing.T) {
		f := newFixture(t, open)
		k := minimalKey()
		must(t, f.s.CreateKey(f.ctx, keyward.Change{}, k))
		got := f.key(k.ID)
		wantKey(t, got, k)
		if got.Meta != nil || got.ExpiresAt != nil || got.RevokedAt != nil || got.GraceUntil != nil || got.LastUsedAt != nil {
			t.Fatalf("unset fields read back set: %+v", got)
		}
		// A key made without an environment is live, in the key given
		// and in what reads return.
		if k.Environment != keyward.DefaultEnvironment || got.Environment != keyward.DefaultEnvironment {
			t.Fatalf("Environment = %q written, %q read back; want %q", k.Environment, got.Environment, keyward.DefaultEnvironment)
		}
	})
	t.Run("empty permissions read back as an empty slice", func(t *testing.T) {
		f := newFixture(t, open)
		k := minimalKey()
		k.Permissions = []string{}
		must(t, f.s.CreateKey(f.ctx, keyward.Change{}, k))
		if got := f.key(k.ID); got.Permissions == nil || len(got.Permissions) != 0 {
			t.Fatalf("Permissions = %#v, want []string{}", got.Permissions)
		}
	})
	t.Run("an account_admin key round-trips", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		k := minimalKey()
		k.Role, k.AccountID, k.Permissions = keyward.RoleAccountAdmin, a.ID, []string{"keys:verify"}
		must(t, f.s.CreateKey(f.ctx, keyward.Change{}, k))
		wantKey(t, f.key(k.ID), k)
	})
	t.Run("unknown id is not_found", func(t *testing.T) {
		f := newFixture(t, open)
		_, err := f.s.Key(f.ctx, "key_missing")
		wantCode(t, err, keyward.ENOTFOUND)
	})

	for _, tc := range []struct {
		name string
		code string
		edit func(f *fixture, k *keyward.Key)
	}{
		{"unknown account is not_found", keyward.ENOTFOUND, func(f *fixture, k *keyward.Key) {
			k.UserID = ""
			k.Role, k.AccountID = keyward.RoleAccountAdmin, "acc_missing"
		}},
		{"unknown user is not_found", keyward.ENOTFOUND, func(f *fixture, k *keyward.Key) { k.UserID = "usr_missing" }},
		{"a user of another account is not_found", keyward.ENOTFOUND, func(f *fixture, k *keyward.Key) {
			k.UserID = f.user(f.account("globex").ID, "bob").ID
		}},
		{"taken id is conflict", keyward.ECONFLICT, func(f *fixture, k *keyward.Key) { k.ID = f.rootKey().ID }},
		{"taken hash is conflict", keyward.ECONFLICT, func(f *fixture, k *keyward.Key) { k.Hash = f.rootKey().Hash }},
		{"meta that is not JSON is invalid", keyward.EINVALID, func(f *fixture, k *keyward.Key) { k.Meta = json.RawMessage(`{"a":`) }},
		{"a root key with an account is invalid", keyward.EINVALID, func(f *fixture, k *keyward.Key) {
			k.Role, k.UserID = keyward.RoleRoot, ""
		}},
		{"a user key without a user is invalid", keyward.EINVALID, func(f *fixture, k *keyward.Key) { k.UserID = "" }},
		{"an account_admin key with a user is invalid", keyward.EINVALID, func(f *fixture, k *keyward.Key) {
			k.Role = keyward.RoleAccountAdmin
		}},
		{"an unknown role is invalid", keyward.EINVALID, func(f *fixture, k *keyward.Key) { k.Role = "superuser" }},
	} {
		t.Run("create: "+tc.name, func(t *testing.T) {
			f := newFixture(t, open)
			a := f.account("acme")
			k := fullKey(a.ID, f.user(a.ID, "alice").ID)
			tc.edit(f, k)
			before := countKeys(f)
			wantCode(t, f.s.CreateKey(f.ctx, keyward.Change{}, k), tc.code)
			if after := countKeys(f); after != before {
				t.Fatalf("a failed CreateKey left %d keys, want %d", after, before)
			}
		})
	}
}

func countKeys(f *fixture) int {
	f.t.Helper()
	ks, _, err := f.s.Keys(f.ctx, keyward.KeyFilter{}, keyward.Page{Limit: keyward.MaxPageLimit})
	must(f.t, err)
	return len(ks)
}

func testKeyByHash(t *testing.T, open func(*testing.T) keyward.Store) {
	t.Run("finds the key", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		k := f.adminKey(a.ID)
		f.rootKey()
		got, err := f.s.KeyByHash(f.ctx, k.Hash)
		must(t, err)
		wantKey(t, got, k)
	})
	t.Run("unknown hash is not_found", func(t *testing.T) {
		f := newFixture(t, open)
		f.rootKey()
		_, err := f.s.KeyByHash(f.ctx, randomHash())
		wantCode(t, err, keyward.ENOTFOUND)
	})
	t.Run("AccountDisabled follows the account on every read", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		u := f.user(a.ID, "alice")
		admin, user := f.adminKey(a.ID), f.userKey(a.ID, u.ID)
		root := f.rootKey()
		setDisabled := func(v bool) {
			_, err := f.s.UpdateAccount(f.ctx, keyward.Change{}, a.ID, func(a *keyward.Account) error { a.Disabled = v; return nil })
			must(t, err)
		}
		check := func(want bool) {
			t.Helper()
			for _, k := range []*keyward.Key{admin, user} {
				byHash, err := f.s.KeyByHash(f.ctx, k.Hash)
				must(t, err)
				byID := f.key(k.ID)
				if byHash.AccountDisabled != want || byID.AccountDisabled != want {
					t.Fatalf("key %s: AccountDisabled by hash %v, by id %v; want %v", k.ID, byHash.AccountDisabled, byID.AccountDisabled, want)
				}
				if byHash.Disabled || byID.Disabled {
					t.Fatalf("key %s: disabling the account changed the key's own Disabled", k.ID)
				}
			}
			list, _, err := f.s.Keys(f.ctx, keyward.KeyFilter{AccountID: a.ID}, keyward.Page{})
			must(t, err)
			for _, k := range list {
				if k.AccountDisabled != want {
					t.Fatalf("Keys: key %s AccountDisabled %v, want %v", k.ID, k.AccountDisabled, want)
				}
			}
			if got, err := f.s.KeyByHash(f.ctx, root.Hash); err != nil || got.AccountDisabled {
				t.Fatalf("root key: AccountDisabled %v, err %v; want false", got.AccountDisabled, err)
			}
		}
		check(false)
		setDisabled(true)
		check(true)
		setDisabled(false)
		check(false)
	})
}

func testListKeys(t *testing.T, open func(*testing.T) keyward.Store) {
	f := newFixture(t, open)
	a, b := f.account("acme"), f.account("globex")
	alice, amy, bob := f.user(a.ID, "alice"), f.user(a.ID, "amy"), f.user(b.ID, "bob")
	root := f.rootKey()
	adminA, adminB := f.adminKey(a.ID), f.adminKey(b.ID)
	alice1 := f.userKey(a.ID, alice.ID)
	alice2 := &NewKey(t, f.s, f.h, keyward.Key{Role: keyward.RoleUser, AccountID: a.ID, UserID: alice.ID, Environment: "test"}).Key
	amy1, bob1 := f.userKey(a.ID, amy.ID), f.userKey(b.ID, bob.ID)
	all := []*keyward.Key{root, adminA, adminB, alice1, alice2, amy1, bob1}

	for _, tc := range []struct {
		name   string
		filter keyward.KeyFilter
		want   []*keyward.Key
	}{
		{"no filter lists every key", keyward.KeyFilter{}, all},
		{"by account", keyward.KeyFilter{AccountID: a.ID}, []*keyward.Key{adminA, alice1, alice2, amy1}},
		{"by user", keyward.KeyFilter{UserID: alice.ID}, []*keyward.Key{alice1, alice2}},
		{"by role", keyward.KeyFilter{Role: keyward.RoleUser}, []*keyward.Key{alice1, alice2, amy1, bob1}},
		{"root keys", keyward.KeyFilter{Role: keyward.RoleRoot}, []*keyward.Key{root}},
		{"by account and role", keyward.KeyFilter{AccountID: b.ID, Role: keyward.RoleAccountAdmin}, []*keyward.Key{adminB}},
		{"by account and user", keyward.KeyFilter{AccountID: a.ID, UserID: amy.ID}, []*keyward.Key{amy1}},
		{"by environment", keyward.KeyFilter{Environment: "test"}, []*keyward.Key{alice2}},
		{"live keys", keyward.KeyFilter{Environment: "live", UserID: alice.ID}, []*keyward.Key{alice1}},
		{"an environment no key has matches nothing", keyward.KeyFilter{Environment: "staging"}, nil},
		{"a user of another account matches nothing", keyward.KeyFilter{AccountID: b.ID, UserID: alice.ID}, nil},
		{"an unknown account matches nothing", keyward.KeyFilter{AccountID: "acc_missing"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, next, err := f.s.Keys(f.ctx, tc.filter, keyward.Page{})
			must(t, err)
			if next != "" {
				t.Fatalf("next = %q on a page that holds everything", next)
			}
			var ids, want []string
			byID := map[string]*keyward.Key{}
			for _, k := range got {
				ids = append(ids, k.ID)
				byID[k.ID] = k
			}
			for _, k := range tc.want {
				want = append(want, k.ID)
				if g := byID[k.ID]; g != nil {
					wantKey(t, g, k)
				}
			}
			wantIDs(t, ids, want...)
		})
	}
	for _, limit := range []int{1, 2, 3, 7} {
		t.Run(fmt.Sprintf("pages of %d walk every key exactly once", limit), func(t *testing.T) {
			got := pageWalk(t, limit, func(p keyward.Page) ([]*keyward.Key, string, error) {
				return f.s.Keys(f.ctx, keyward.KeyFilter{}, p)
			}, func(k *keyward.Key) string { return k.ID })
			wantIDs(t, got, root.ID, adminA.ID, adminB.ID, alice1.ID, alice2.ID, amy1.ID, bob1.ID)
		})
	}
	t.Run("pages keep the filter", func(t *testing.T) {
		got := pageWalk(t, 1, func(p keyward.Page) ([]*keyward.Key, string, error) {
			return f.s.Keys(f.ctx, keyward.KeyFilter{AccountID: a.ID}, p)
		}, func(k *keyward.Key) string { return k.ID })
		wantIDs(t, got, adminA.ID, alice1.ID, alice2.ID, amy1.ID)
	})
}

func testDeleteKey(t *testing.T, open func(*testing.T) keyward.Store) {
	t.Run("returns the key as it was and removes it", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		k, other := f.adminKey(a.ID), f.adminKey(a.ID)
		got, err := f.s.DeleteKey(f.ctx, keyward.Change{}, k.ID)
		must(t, err)
		wantKey(t, got, k)
		_, err = f.s.Key(f.ctx, k.ID)
		wantCode(t, err, keyward.ENOTFOUND)
		_, err = f.s.KeyByHash(f.ctx, k.Hash)
		wantCode(t, err, keyward.ENOTFOUND)
		wantKey(t, f.key(other.ID), other)
		_, err = f.s.DeleteKey(f.ctx, keyward.Change{}, k.ID)
		wantCode(t, err, keyward.ENOTFOUND)
	})
	t.Run("unknown id is not_found", func(t *testing.T) {
		f := newFixture(t, open)
		_, err := f.s.DeleteKey(f.ctx, keyward.Change{}, "key_missing")
		wantCode(t, err, keyward.ENOTFOUND)
	})
}

func testTouchKeys(t *testing.T, open func(*testing.T) keyward.Store) {
	t1, t2, t3 := fixedTime, fixedTime.Add(time.Minute), fixedTime.Add(time.Hour)
	lastUsed := func(f *fixture, id string) *time.Time { f.t.Helper(); return f.key(id).LastUsedAt }
	wantLastUsed := func(t *testing.T, got *time.Time, want time.Time) {
		t.Helper()
		if got == nil || !got.Equal(want) {
			t.Fatalf("LastUsedAt = %v, want %v", got, want)
		}
	}
	t.Run("sets last_used_at and raises it", func(t *testing.T) {
		f := newFixture(t, open)
		k := f.rootKey()
		must(t, f.s.TouchKeys(f.ctx, []keyward.KeyUse{{ID: k.ID, At: t1}}))
		wantLastUsed(t, lastUsed(f, k.ID), t1)
		must(t, f.s.TouchKeys(f.ctx, []keyward.KeyUse{{ID: k.ID, At: t2}}))
		wantLastUsed(t, lastUsed(f, k.ID), t2)
	})
	t.Run("never lowers last_used_at", func(t *testing.T) {
		f := newFixture(t, open)
		k := f.rootKey()
		must(t, f.s.TouchKeys(f.ctx, []keyward.KeyUse{{ID: k.ID, At: t3}}))
		must(t, f.s.TouchKeys(f.ctx, []keyward.KeyUse{{ID: k.ID, At: t1}}))
		wantLastUsed(t, lastUsed(f, k.ID), t3)
	})
	t.Run("keeps the latest use of a batch", func(t *testing.T) {
		f := newFixture(t, open)
		k := f.rootKey()
		must(t, f.s.TouchKeys(f.ctx, []keyward.KeyUse{{ID: k.ID, At: t2}, {ID: k.ID, At: t3}, {ID: k.ID, At: t1}}))
		wantLastUsed(t, lastUsed(f, k.ID), t3)
	})
	t.Run("ignores unknown ids and touches the rest", func(t *testing.T) {
		f := newFixture(t, open)
		k1, k2 := f.rootKey(), f.rootKey()
		must(t, f.s.TouchKeys(f.ctx, []keyward.KeyUse{{ID: "key_missing", At: t1}, {ID: k1.ID, At: t2}, {ID: k2.ID, At: t3}}))
		wantLastUsed(t, lastUsed(f, k1.ID), t2)
		wantLastUsed(t, lastUsed(f, k2.ID), t3)
	})
	t.Run("touches every key of a large batch", func(t *testing.T) {
		// Stores may write a batch in parts (SQLite: 1,000 keys a
		// transaction): keys at the start, across a part's end and at the
		// end of 2,500 uses are all touched.
		f := newFixture(t, open)
		k1, k2, k3 := f.rootKey(), f.rootKey(), f.rootKey()
		uses := make([]keyward.KeyUse, 2500)
		for i := range uses {
			uses[i] = keyward.KeyUse{ID: fmt.Sprintf("key_missing_%04d", i), At: t1}
		}
		uses[0], uses[1000], uses[2499] = keyward.KeyUse{ID: k1.ID, At: t1}, keyward.KeyUse{ID: k2.ID, At: t2}, keyward.KeyUse{ID: k3.ID, At: t3}
		must(t, f.s.TouchKeys(f.ctx, uses))
		wantLastUsed(t, lastUsed(f, k1.ID), t1)
		wantLastUsed(t, lastUsed(f, k2.ID), t2)
		wantLastUsed(t, lastUsed(f, k3.ID), t3)
	})
	t.Run("changes nothing else", func(t *testing.T) {
		f := newFixture(t, open)
		k := f.rootKey()
		must(t, f.s.TouchKeys(f.ctx, []keyward.KeyUse{{ID: k.ID, At: t1}}))
		want := k.Clone()
		want.LastUsedAt = &t1
		wantKey(t, f.key(k.ID), want)
	})
	t.Run("an empty batch is fine", func(t *testing.T) {
		f := newFixture(t, open)
		must(t, f.s.TouchKeys(f.ctx, nil))
	})
}

func testBootstrapRootKey(t *testing.T, open func(*testing.T) keyward.Store) {
	t.Run("inserts the first root key", func(t *testing.T) {
		f := newFixture(t, open)
		k := minimalKey()
		must(t, f.s.BootstrapRootKey(f.ctx, keyward.Change{}, k))
		wantKey(t, f.key(k.ID), k)
	})
	t.Run("a second bootstrap is conflict and stores nothing", func(t *testing.T) {
		f := newFixture(t, open)
		must(t, f.s.BootstrapRootKey(f.ctx, keyward.Change{}, minimalKey()))
		second := minimalKey()
		wantCode(t, f.s.BootstrapRootKey(f.ctx, keyward.Change{}, second), keyward.ECONFLICT)
		_, err := f.s.Key(f.ctx, second.ID)
		wantCode(t, err, keyward.ENOTFOUND)
	})
	t.Run("any usable root key is conflict", func(t *testing.T) {
		f := newFixture(t, open)
		f.rootKey()
		wantCode(t, f.s.BootstrapRootKey(f.ctx, keyward.Change{}, minimalKey()), keyward.ECONFLICT)
	})
	t.Run("revoked, disabled and expired root keys do not count", func(t *testing.T) {
		f := newFixture(t, open)
		for _, k := range []keyward.Key{
			{RevokedAt: ptr(fixedTime)},
			{RevokedAt: ptr(fixedTime.Add(-time.Hour)), GraceUntil: ptr(fixedTime.Add(-time.Hour))},
			{Disabled: true},
			{ExpiresAt: ptr(fixedTime)},
		} {
			k.Role, k.CreatedAt, k.UpdatedAt = keyward.RoleRoot, fixedTime.Add(-24*time.Hour), fixedTime.Add(-24*time.Hour)
			NewKey(t, f.s, f.h, k)
		}
		k := minimalKey() // created at fixedTime
		must(t, f.s.BootstrapRootKey(f.ctx, keyward.Change{}, k))
		wantKey(t, f.key(k.ID), k)
	})
	t.Run("a root key in its rotation grace window or expiring later counts", func(t *testing.T) {
		for name, k := range map[string]keyward.Key{
			"grace":    {RevokedAt: ptr(fixedTime.Add(time.Second)), GraceUntil: ptr(fixedTime.Add(time.Second))},
			"expiring": {ExpiresAt: ptr(fixedTime.Add(time.Second))},
		} {
			t.Run(name, func(t *testing.T) {
				f := newFixture(t, open)
				k.Role, k.CreatedAt, k.UpdatedAt = keyward.RoleRoot, fixedTime.Add(-24*time.Hour), fixedTime.Add(-24*time.Hour)
				NewKey(t, f.s, f.h, k)
				wantCode(t, f.s.BootstrapRootKey(f.ctx, keyward.Change{}, minimalKey()), keyward.ECONFLICT)
			})
		}
	})
	t.Run("keys of other roles do not count", func(t *testing.T) {
		f := newFixture(t, open)
		f.adminKey(f.account("acme").ID)
		must(t, f.s.BootstrapRootKey(f.ctx, keyward.Change{}, minimalKey()))
	})
	t.Run("concurrent bootstraps: exactly one wins", func(t *testing.T) {
		f := newFixture(t, open)
		const n = 8
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { errs[i] = f.s.BootstrapRootKey(f.ctx, keyward.Change{}, minimalKey()) })
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch keyward.ErrorCode(err) {
			case "":
				wins++
			case keyward.ECONFLICT:
			default:
				t.Fatalf("BootstrapRootKey: %v", err)
			}
		}
		roots, _, err := f.s.Keys(f.ctx, keyward.KeyFilter{Role: keyward.RoleRoot}, keyward.Page{})
		must(t, err)
		if wins != 1 || len(roots) != 1 {
			t.Fatalf("%d bootstraps won and %d root keys exist, want 1 and 1", wins, len(roots))
		}
	})
}
