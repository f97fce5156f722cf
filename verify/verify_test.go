package verify_test

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/verify"
)

func TestNewValidatesConfig(t *testing.T) {
	s := keywardtest.NewSQLiteStore(t)
	h := keywardtest.NewHasher(t)
	for name, cfg := range map[string]verify.Config{
		"no store":             {Hasher: h},
		"no hasher":            {Store: s},
		"negative ttl":         {Store: s, Hasher: h, CacheTTL: -time.Second},
		"negative neg ttl":     {Store: s, Hasher: h, NegativeTTL: -time.Second},
		"negative max":         {Store: s, Hasher: h, MaxNegative: -1},
		"negative flush":       {Store: s, Hasher: h, UsageFlushInterval: -time.Second},
		"negative loadtimeout": {Store: s, Hasher: h, LoadTimeout: -time.Second},
	} {
		if _, err := verify.New(cfg); keyward.ErrorCode(err) != keyward.EINVALID {
			t.Errorf("%s: New error = %v, want %s", name, err, keyward.EINVALID)
		}
	}
}

// flip returns raw with the character at i changed to another base62
// character.
func flip(raw string, i int) string {
	c := byte('a')
	if raw[i] == 'a' {
		c = 'b'
	}
	return raw[:i] + string(c) + raw[i+1:]
}

func TestDecisions(t *testing.T) {
	e := newEnv(t, nil)
	now := e.clock.Now()
	valid := e.key(keyward.Key{Permissions: []string{"memories:read"}})
	root := keywardtest.NewRootKey(t, e.store, e.hasher)
	admin := keywardtest.NewAdminKey(t, e.store, e.hasher, e.acct.ID, "keys:verify")
	disabled := e.key(keyward.Key{Disabled: true})
	revoked := e.key(keyward.Key{RevokedAt: ptr(now.Add(-time.Minute))})
	expired := e.key(keyward.Key{ExpiresAt: ptr(now.Add(-time.Minute))})
	expiresLater := e.key(keyward.Key{ExpiresAt: ptr(now.Add(time.Hour))})
	revokedLater := e.key(keyward.Key{RevokedAt: ptr(now.Add(time.Hour))})
	// A key of a disabled account is DISABLED, whatever its own state.
	other := keywardtest.NewAccount(t, e.store, "other")
	ofDisabled := keywardtest.NewAdminKey(t, e.store, e.hasher, other.ID)
	if _, err := e.store.UpdateAccount(e.ctx, keyward.Change{}, other.ID, func(a *keyward.Account) error {
		a.Disabled = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	body := len(valid.Secret) - apikey.BodyLen

	for _, tc := range []struct {
		name  string
		raw   string
		perms []string
		want  keyward.Decision
		key   *keyward.CreatedKey // the key the result names, if any
	}{
		{"valid user key", valid.Secret, nil, keyward.DecisionValid, valid},
		{"valid with a permission it holds", valid.Secret, []string{"memories:read"}, keyward.DecisionValid, valid},
		{"valid admin key", admin.Secret, []string{"keys:verify"}, keyward.DecisionValid, admin},
		{"root holds every permission", root.Secret, []string{"memories:write", "anything"}, keyward.DecisionValid, root},
		{"valid until its expiry", expiresLater.Secret, nil, keyward.DecisionValid, expiresLater},
		{"valid until its revocation time", revokedLater.Secret, nil, keyward.DecisionValid, revokedLater},
		{"missing a permission", valid.Secret, []string{"memories:read", "memories:write"}, keyward.DecisionInsufficientPermissions, valid},
		{"admin without the permission", admin.Secret, []string{"memories:read"}, keyward.DecisionInsufficientPermissions, admin},
		{"empty", "", nil, keyward.DecisionMalformed, nil},
		{"garbage", "hello world", nil, keyward.DecisionMalformed, nil},
		{"wrong checksum", flip(valid.Secret, len(valid.Secret)-1), nil, keyward.DecisionMalformed, nil},
		{"typo in the random part", flip(valid.Secret, body+5), nil, keyward.DecisionMalformed, nil},
		{"truncated", valid.Secret[:len(valid.Secret)-1], nil, keyward.DecisionMalformed, nil},
		{"bad character", valid.Secret[:body+3] + "-" + valid.Secret[body+4:], nil, keyward.DecisionMalformed, nil},
		{"surrounding space", " " + valid.Secret, nil, keyward.DecisionMalformed, nil},
		{"too long", strings.Repeat("a", 200) + valid.Secret, nil, keyward.DecisionMalformed, nil},
		{"well-formed but unknown", unknownKey(t), nil, keyward.DecisionNotFound, nil},
		{"disabled key", disabled.Secret, nil, keyward.DecisionDisabled, disabled},
		{"key of a disabled account", ofDisabled.Secret, nil, keyward.DecisionDisabled, ofDisabled},
		{"revoked", revoked.Secret, nil, keyward.DecisionRevoked, revoked},
		{"expired", expired.Secret, nil, keyward.DecisionExpired, expired},
		{"status before permissions", revoked.Secret, []string{"nope"}, keyward.DecisionRevoked, revoked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.lookups()
			// Twice: once from the store, once from the cache.
			for range 2 {
				res := e.verify(tc.raw, tc.perms...)
				if res.Decision != tc.want {
					t.Fatalf("Decision = %s, want %s", res.Decision, tc.want)
				}
				if res.Agent != "test-agent" {
					t.Errorf("Agent = %q", res.Agent)
				}
				if tc.key == nil {
					if res.Key() != nil || res.KeyID() != "" || res.Identity() != nil {
						t.Fatalf("a %s result names key %v", res.Decision, res.Key())
					}
					continue
				}
				if res.KeyID() != tc.key.ID || res.Key().ID != tc.key.ID {
					t.Fatalf("Key = %v, want %s", res.Key(), tc.key.ID)
				}
				id := res.Identity()
				if id.KeyID != tc.key.ID || id.AccountID != tc.key.AccountID || id.UserID != tc.key.UserID ||
					id.Role != tc.key.Role || id.Agent != "test-agent" {
					t.Fatalf("Identity = %+v, want that of %s with agent test-agent", id, tc.key.ID)
				}
			}
			switch {
			case tc.want == keyward.DecisionMalformed:
				e.wantLookups(before, 0) // no lookup, not even a cached one
			case tc.key == nil:
				e.wantLookups(before, 1) // the negative entry answers the second time
			}
		})
	}
}

func TestRotatedKeyValidUntilGraceEnds(t *testing.T) {
	for _, ttl := range []time.Duration{0, 24 * time.Hour} {
		t.Run("cache ttl "+ttl.String(), func(t *testing.T) {
			e := newEnv(t, func(c *verify.Config) { c.CacheTTL = ttl })
			old := e.key(keyward.Key{Name: "ci"})
			e.want(old.Secret, keyward.DecisionValid)

			// Rotate as the admin service does, and tell the engine.
			grace := e.clock.Now().Add(10 * time.Minute)
			secret, err := apikey.Generate(old.Prefix)
			if err != nil {
				t.Fatal(err)
			}
			o, n, err := e.store.RotateKey(e.ctx, keyward.Change{}, old.ID, func(k *keyward.Key) (*keyward.Key, error) {
				k.RevokedAt, k.GraceUntil = &grace, &grace
				n := k.Clone()
				n.ID, n.RotatedFrom = apikey.NewID("key"), k.ID
				n.Hash, n.Start = e.hasher.Hash(secret.Reveal()), apikey.Start(secret.Reveal())
				n.RevokedAt, n.GraceUntil, n.LastUsedAt = nil, nil, nil
				return n, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			e.engine.KeyChanged(o)
			e.engine.KeyChanged(n)

			e.want(old.Secret, keyward.DecisionValid)
			e.want(secret.Reveal(), keyward.DecisionValid)
			e.clock.Advance(10*time.Minute - time.Second)
			e.want(old.Secret, keyward.DecisionValid)
			e.clock.Advance(time.Second)
			e.want(old.Secret, keyward.DecisionRevoked)
			e.want(secret.Reveal(), keyward.DecisionValid)
		})
	}
}

func TestExpiryDecidedOnCachedKey(t *testing.T) {
	e := newEnv(t, func(c *verify.Config) { c.CacheTTL = 24 * time.Hour })
	k := e.key(keyward.Key{ExpiresAt: ptr(e.clock.Now().Add(time.Hour))})
	e.want(k.Secret, keyward.DecisionValid)
	before := e.lookups()
	e.clock.Advance(time.Hour - time.Nanosecond)
	e.want(k.Secret, keyward.DecisionValid)
	e.clock.Advance(time.Nanosecond)
	e.want(k.Secret, keyward.DecisionExpired)
	e.wantLookups(before, 0)
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, nil)
	k := e.key(keyward.Key{})
	e.want(k.Secret, keyward.DecisionValid)
	e.want(k.Secret, keyward.DecisionValid)
	e.want(k.Secret, keyward.DecisionInsufficientPermissions, "x")
	e.want("nope", keyward.DecisionMalformed)
	e.want(unknownKey(t), keyward.DecisionNotFound)
	for _, c := range []struct {
		name string
		code keyward.Decision
		want float64
	}{
		{"keyward_verifications_total", keyward.DecisionValid, 2},
		{"keyward_verifications_total", keyward.DecisionInsufficientPermissions, 1},
		{"keyward_verifications_total", keyward.DecisionMalformed, 1},
		{"keyward_verifications_total", keyward.DecisionNotFound, 1},
		{"keyward_verifications_total", keyward.DecisionRevoked, 0},
		{"keyward_verify_duration_seconds", "", 5},
		{"keyward_verify_cache_hits_total", "", 2},
		{"keyward_verify_cache_misses_total", "", 2},
	} {
		if got := e.metric(c.name, c.code); got != c.want {
			t.Errorf("%s{code=%q} = %v, want %v", c.name, c.code, got, c.want)
		}
	}
	// Every decision code is exported from the start, at zero.
	for _, d := range keyward.Decisions {
		e.metric("keyward_verifications_total", d)
	}
}

// TestVerifyNeverPanics feeds arbitrary strings and near-misses of a valid
// key: each is answered, none but the key itself is VALID.
func TestVerifyNeverPanics(t *testing.T) {
	e := newEnv(t, nil)
	k := e.key(keyward.Key{})
	e.want(k.Secret, keyward.DecisionValid)
	r := rand.New(rand.NewPCG(1, 2))
	inputs := []string{"", "_", "kw_", "kw_user_", strings.Repeat("_", 60), strings.Repeat("z", 128),
		"\x00\xff\xfe", "kw_user_" + strings.Repeat("é", 30), k.Secret + k.Secret}
	for range 2000 {
		b := []byte(k.Secret)
		switch r.IntN(3) {
		case 0: // random bytes of any length
			b = make([]byte, r.IntN(140))
			for i := range b {
				b[i] = byte(r.UintN(256))
			}
		case 1: // the key with one byte changed
			b[r.IntN(len(b))] = byte(r.UintN(256))
		case 2: // a random cut of the key
			i := r.IntN(len(b))
			b = b[:i]
		}
		inputs = append(inputs, string(b))
	}
	for _, in := range inputs {
		res := e.engine.Verify(context.Background(), verify.Request{Key: in, Permissions: []string{in}})
		if res.Decision == keyward.DecisionValid && in != k.Secret {
			t.Fatalf("Verify(%q) = VALID", in)
		}
		if res.Decision == "" {
			t.Fatalf("Verify(%q) gave no decision", in)
		}
	}
}
