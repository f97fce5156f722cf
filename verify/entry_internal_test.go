package verify

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/permission"
)

// TestEntryMatchesKey checks that a cache entry answers every question a
// verification asks as the keyward.Key it was made from does, and that
// Result.Key gives that key back without the fields the cache drops.
func TestEntryMatchesKey(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	limits := []keyward.RateLimit{{Name: "min", Limit: 10, Window: keyward.Duration(time.Minute)}}
	accountLimits := []keyward.RateLimit{{Name: "day", Limit: 1000, Window: keyward.Duration(24 * time.Hour)}}
	var hash, older keyward.KeyHash
	hash[0], older[0] = 1, 2
	base := keyward.Key{
		ID: "key_1", Hash: hash, PepperVersion: 2, Start: "kw_user_abcd", Prefix: "kw_user_", Name: "ci",
		Role: keyward.RoleUser, AccountID: "acc_1", UserID: "usr_1", Permissions: []string{"a:read", "a:write"},
		RotatedFrom: "key_0", GraceUntil: at(time.Hour), CreatedAt: now.Add(-time.Hour), CreatedBy: "key_9",
		LastUsedAt: at(-time.Minute), UpdatedAt: now.Add(-time.Minute),
	}
	with := func(change func(k *keyward.Key)) keyward.Key {
		k := base
		change(&k)
		return k
	}
	keys := map[string]keyward.Key{
		"plain":            base,
		"root":             with(func(k *keyward.Key) { k.Role, k.AccountID, k.UserID, k.Permissions = keyward.RoleRoot, "", "", nil }),
		"no permissions":   with(func(k *keyward.Key) { k.Permissions = []string{} }),
		"disabled":         with(func(k *keyward.Key) { k.Disabled = true }),
		"account disabled": with(func(k *keyward.Key) { k.AccountDisabled = true }),
		"revoked":          with(func(k *keyward.Key) { k.RevokedAt = at(-time.Second) }),
		"retiring":         with(func(k *keyward.Key) { k.RevokedAt = at(time.Second) }),
		"expired":          with(func(k *keyward.Key) { k.ExpiresAt = at(0) }),
		"expires":          with(func(k *keyward.Key) { k.ExpiresAt = at(time.Hour) }),
		"revoked before expiry": with(func(k *keyward.Key) {
			k.RevokedAt, k.ExpiresAt = at(time.Minute), at(time.Hour)
		}),
		"expiry before revocation": with(func(k *keyward.Key) {
			k.RevokedAt, k.ExpiresAt = at(time.Hour), at(time.Minute)
		}),
		"own limits":     with(func(k *keyward.Key) { k.RateLimits, k.AccountRateLimits = limits, accountLimits }),
		"account limits": with(func(k *keyward.Key) { k.AccountRateLimits = accountLimits }),
		"meter":          with(func(k *keyward.Key) { k.MeterID = "key_0" }),
		"credits":        with(func(k *keyward.Key) { k.Credits = &keyward.Credits{Remaining: 5} }),
		"wildcards":      with(func(k *keyward.Key) { k.Permissions = []string{"a:read", "b:*"} }),
		"everything":     with(func(k *keyward.Key) { k.Role, k.Permissions = keyward.RoleAccountAdmin, []string{"*"} }),
		"live":           with(func(k *keyward.Key) { k.Environment = keyward.DefaultEnvironment }),
		"named roles": with(func(k *keyward.Key) {
			k.Roles, k.RolePermissions = []string{"ops", "reader"}, []string{"a:read", "b:*", "c"}
		}),
		"test": with(func(k *keyward.Key) { k.Environment = "test" }),
		// The ids and the name ("ci") fill the entry's buffer (100 bytes),
		// then overflow it by a byte; then a long name alone overflows it.
		"ids filling the entry": with(func(k *keyward.Key) { k.ID = "key_" + strings.Repeat("k", 100-4-12) }),
		"ids longer than the entry holds": with(func(k *keyward.Key) {
			k.ID, k.UserID = "key_"+strings.Repeat("k", 100-4-12), "usr_12"
		}),
		"a name longer than the entry holds": with(func(k *keyward.Key) { k.Name = strings.Repeat("n", 91) }),
		"shared limits": with(func(k *keyward.Key) {
			k.UserMeter = &keyward.Meter{ID: "usr_1", Level: keyward.LevelUser, AccountID: "acc_1", RateLimits: limits}
			k.AccountMeter = &keyward.Meter{ID: "acc_1", Level: keyward.LevelAccount, AccountID: "acc_1", Credits: &keyward.Credits{Remaining: 5}}
		}),
		"extras": with(func(k *keyward.Key) {
			k.Meta = json.RawMessage(`{"plan":"pro"}`)
			k.SecretMeta, k.HasSecretMeta = &keyward.Sealed{Version: 1, Data: []byte("k")}, true
			k.AccountSecretMeta = &keyward.Sealed{Version: 1, Data: []byte("a")}
			k.IPAllow = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
		}),
		"user identity": with(func(k *keyward.Key) {
			k.Meta = json.RawMessage(`{"plan":"pro"}`)
			k.UserExternalID = "alice@example.com"
			k.UserMeta = json.RawMessage(`{"plan":"free","region":"eu"}`)
			k.UserSecretMeta = &keyward.Sealed{Version: 1, Data: []byte("u")}
		}),
		"user meta alone": with(func(k *keyward.Key) { k.UserMeta = json.RawMessage(`{"region":"eu"}`) }),
	}
	queries := []*permission.Query{nil}
	for _, q := range []string{"a:read", "a:write AND (b:read OR c)", "b:* OR a:write", "c AND d"} {
		parsed, err := permission.Parse(q)
		if err != nil {
			t.Fatal(err)
		}
		queries = append(queries, parsed)
	}
	var e Engine
	for name, k := range keys {
		for _, cachedUnder := range []keyward.KeyHash{hash, older} {
			en := e.newEntry(&k, cachedUnder, 0)
			for _, d := range []time.Duration{-time.Hour, 0, 30 * time.Second, 2 * time.Hour} {
				if got, want := en.status(now.Add(d)), k.Status(now.Add(d)); got != want {
					t.Errorf("%s: status at %v = %s, want %s", name, d, got, want)
				}
			}
			for _, want := range [][]string{nil, {"a:read"}, {"a:read", "a:write"}, {"b:read"}, {"b:x.y"}, {"b:*"}, {"*"}} {
				if got, want := en.hasPermissions(want), k.HasPermissions(want); got != want {
					t.Errorf("%s: hasPermissions = %t, want %t", name, got, want)
				}
				for _, q := range queries {
					for _, role := range []keyward.Role{"", keyward.RoleUser, keyward.RoleAccountAdmin, keyward.RoleRoot, "reader", "writer"} {
						ok, missing, missingRole := k.Allows(want, q, role)
						if got := en.allows(want, q, role); got != ok {
							t.Errorf("%s: allows(%q, %v, %q) = %t, want %t", name, want, q, role, got, ok)
						}
						res := Result{Decision: keyward.DecisionInsufficientPermissions, key: en, need: need{want, q, role}}.VerifyResult()
						if !reflect.DeepEqual(res.MissingPermissions, missing) || res.MissingRole != missingRole {
							t.Errorf("%s: missing %q %q, want %q %q", name, res.MissingPermissions, res.MissingRole, missing, missingRole)
						}
					}
				}
			}
			if got, want := en.effectiveRateLimits(), k.EffectiveRateLimits(); !reflect.DeepEqual(got, want) {
				t.Errorf("%s: effectiveRateLimits = %v, want %v", name, got, want)
			}
			if got, want := en.meter(), k.Meter(); got != want {
				t.Errorf("%s: meter = %q, want %q", name, got, want)
			}
			// The key as a store returns it: an empty environment is stored as live.
			stored := k
			stored.Environment = keyward.EnvironmentOf(k.Environment)
			if got, want := en.identity("agent"), keyward.IdentityOf(&stored, "agent"); !reflect.DeepEqual(got, want) {
				t.Errorf("%s: identity = %+v, want %+v", name, got, want)
			}
			valid := Result{Decision: keyward.DecisionValid, key: en}.VerifyResult()
			if got, want := string(valid.Meta), string(keyward.MergeMeta(k.UserMeta, k.Meta)); got != want {
				t.Errorf("%s: verified meta = %s, want %s", name, got, want)
			}
			if stored, under, legacy := en.legacy(); legacy != (cachedUnder != k.Hash) || legacy && (stored != k.Hash || under != cachedUnder) {
				t.Errorf("%s cached under %x: legacy = %x, %x, %t; want %x, %x, %t", name, cachedUnder[0], stored, under, legacy, k.Hash, cachedUnder, cachedUnder != k.Hash)
			}
			if en.keyID() != k.ID || en.accountID() != k.AccountID || en.userID() != k.UserID {
				t.Errorf("%s: ids %q, %q, %q; want %q, %q, %q", name, en.keyID(), en.accountID(), en.userID(), k.ID, k.AccountID, k.UserID)
			}
			want := k
			want.Hash, want.PepperVersion, want.Start, want.Prefix = keyward.KeyHash{}, 0, "", ""
			want.RotatedFrom, want.GraceUntil, want.CreatedAt, want.CreatedBy = "", nil, time.Time{}, ""
			want.LastUsedAt, want.UpdatedAt = nil, time.Time{}
			want.Environment = keyward.EnvironmentOf(k.Environment)
			// The entry holds the effective permissions as the key's own.
			want.Permissions, want.RolePermissions = k.EffectivePermissions(), nil
			if got := en.environment(); got != want.Environment {
				t.Errorf("%s: environment = %q, want %q", name, got, want.Environment)
			}
			if got := (Result{key: en}).Key(); !reflect.DeepEqual(got, &want) {
				t.Errorf("%s: Result.Key =\n%+v, want\n%+v", name, got, &want)
			}
		}
	}
}

func TestInternerSharesEqualPermissionLists(t *testing.T) {
	var in interner
	sa := in.set([]string{"a:read", "a:write"})
	a, b := sa.List(), in.set([]string{"a:read", "a:write"}).List()
	if &a[0] != &b[0] || in.set([]string{"a:read", "a:write"}) != sa {
		t.Error("equal lists are not shared")
	}
	if c := in.set([]string{"a:read"}).List(); &c[0] == &a[0] {
		t.Error("a shorter list shares a longer one")
	}
	// Length prefixes keep lists apart that concatenate alike.
	if c := in.set([]string{"a:reada:write"}).List(); len(c) != 1 {
		t.Errorf("got %q", c)
	}
	if cap(a) != len(a) {
		t.Errorf("cap = %d, want the length %d: an append would write into the shared list", cap(a), len(a))
	}
	if p := in.set(nil).List(); p != nil {
		t.Errorf("nil became %q", p)
	}
	if p := in.set([]string{}).List(); p == nil {
		t.Error("an empty list became nil")
	}
	for i := range maxInterned / internOverhead {
		in.set([]string{strconv.Itoa(i)})
	}
	if n := len(in.sets); n == 0 || n > maxInterned/(3*internOverhead) {
		t.Errorf("the interner holds %d sets, want 1 to %d", n, maxInterned/(3*internOverhead))
	}
	// A list over the bound is returned as it is, never held.
	huge := []string{strings.Repeat("x", maxInterned)}
	again := slices.Clone(huge)
	if p, q := in.set(huge).List(), in.set(again).List(); &p[0] != &huge[0] || &q[0] != &again[0] {
		t.Error("a list over the bound was interned")
	}
	if in.size > maxInterned {
		t.Errorf("the interner holds %d bytes, over %d", in.size, maxInterned)
	}
}

// TestEntryLayout: an entry fills its size class (192 bytes, so it starts
// at a multiple of 64 in its span), and what a cache hit reads lies in its
// first 64 bytes, one cache line.
func TestEntryLayout(t *testing.T) {
	var en entry
	if n := unsafe.Sizeof(en); n != 192 {
		t.Errorf("an entry is %d bytes, want 192", n)
	}
	for name, end := range map[string]uintptr{
		"expires": unsafe.Offsetof(en.expires) + 8, "lastUsed": unsafe.Offsetof(en.lastUsed) + 8,
		"until": unsafe.Offsetof(en.until) + 8, "freq": unsafe.Offsetof(en.freq) + 4,
		"off": unsafe.Offsetof(en.off) + 1, "role": unsafe.Offsetof(en.role) + 1,
		"perms": unsafe.Offsetof(en.perms) + 8, "extra": unsafe.Offsetof(en.extra) + 8,
		"tag": unsafe.Offsetof(en.tag) + unsafe.Sizeof(en.tag),
	} {
		if end > 64 {
			t.Errorf("%s ends at offset %d, outside the first cache line", name, end)
		}
	}
	if n := unsafe.Sizeof(shard{}); n%64 != 0 {
		t.Errorf("a cache shard is %d bytes, not a whole number of cache lines", n)
	}
}

// TestEntryIDsInline: a user key with the three ids keyward makes (26
// bytes each) and a name of up to 22 bytes is one allocation, the entry,
// with no extra; a longer name, or a revocation time, moves what does not
// fit behind extra.
func TestEntryIDsInline(t *testing.T) {
	now := time.Now()
	base := keyward.Key{
		ID: apikey.NewID("key"), AccountID: apikey.NewID("acc"), UserID: apikey.NewID("usr"),
		Role: keyward.RoleUser, Permissions: []string{"memories:read"}, ExpiresAt: &now,
	}
	var e Engine
	for _, c := range []struct {
		name    string
		revoked bool
		extra   bool
	}{
		{name: "", extra: false},
		{name: "production backend 22", extra: false},
		{name: "production backend 022", extra: false},
		{name: "production backend 0022", extra: true},
		{name: "ci", revoked: true, extra: true},
	} {
		k := base
		k.Name = c.name
		if c.revoked {
			k.RevokedAt = &now
		}
		en := e.newEntry(&k, k.Hash, 0)
		if got := en.extra != nil; got != c.extra {
			t.Errorf("name %q (%d bytes), revoked %t: extra %t, want %t", c.name, len(c.name), c.revoked, got, c.extra)
		}
		if en.keyID() != k.ID || en.accountID() != k.AccountID || en.userID() != k.UserID || en.name() != k.Name {
			t.Errorf("name %q: ids %q %q %q %q", c.name, en.keyID(), en.accountID(), en.userID(), en.name())
		}
		if got := en.revokedAt(); got != k.RevokedAt {
			t.Errorf("name %q: revokedAt %v, want %v", c.name, got, k.RevokedAt)
		}
	}
}
