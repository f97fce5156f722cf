package verify_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/verify"
)

// autoRule stores a global block as brute-force blocking makes it and
// applies it.
func (e *env) autoRule(cidr string) *keyward.IPRule {
	e.t.Helper()
	r := &keyward.IPRule{ID: apikey.NewID("ipr"), Action: keyward.IPBlock, CIDR: netip.MustParsePrefix(cidr),
		CreatedAt: e.clock.Now(), Automatic: true, Reason: "keyward abuse detection: brute_force"}
	if err := e.store.CreateIPRule(e.ctx, keyward.Change{}, r); err != nil {
		e.t.Fatalf("CreateIPRule: %v", err)
	}
	if err := e.engine.ReloadIPRules(e.ctx); err != nil {
		e.t.Fatalf("ReloadIPRules: %v", err)
	}
	return r
}

// TestAutomaticBlock: an automatic block lets a key that verifies VALID
// through and refuses everything else with IP_BLOCKED; a block made by hand
// refuses everything, the valid key included.
func TestAutomaticBlock(t *testing.T) {
	e := newEnv(t, nil)
	k := e.key(keyward.Key{Permissions: []string{"read"}})
	revoked := e.key(keyward.Key{})
	e.revoke(revoked.Key.ID)
	elsewhere := e.key(keyward.Key{IPAllow: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}})
	e.autoRule("203.0.113.7/32")
	e.autoRule("2001:db8:bad::/64")
	e.rule("", keyward.IPBlock, "192.0.2.66/32", nil)

	for _, tc := range []struct {
		name, raw, ip string
		perms         []string
		want          keyward.Decision
	}{
		{"valid key passes the automatic block", k.Secret, "203.0.113.7", nil, keyward.DecisionValid},
		{"valid key passes, IPv6", k.Secret, "2001:db8:bad::1", nil, keyward.DecisionValid},
		{"valid key passes, IPv4-mapped", k.Secret, "::ffff:203.0.113.7", nil, keyward.DecisionValid},
		{"what the key may not do is its own answer", k.Secret, "203.0.113.7", []string{"write"}, keyward.DecisionInsufficientPermissions},
		{"the key's allow list still applies", elsewhere.Secret, "203.0.113.7", nil, keyward.DecisionIPNotAllowed},
		{"malformed is blocked", "not a key", "203.0.113.7", nil, keyward.DecisionIPBlocked},
		{"bad checksum is blocked", badChecksum(k.Secret), "203.0.113.7", nil, keyward.DecisionIPBlocked},
		{"unknown key is blocked", unknownKey(t), "203.0.113.7", nil, keyward.DecisionIPBlocked},
		{"revoked key is blocked", revoked.Secret, "203.0.113.7", nil, keyward.DecisionIPBlocked},
		{"hand-made block refuses the valid key", k.Secret, "192.0.2.66", nil, keyward.DecisionIPBlocked},
		{"elsewhere, revoked is revoked", revoked.Secret, "192.0.2.1", nil, keyward.DecisionRevoked},
		{"elsewhere, garbage is malformed", "not a key", "192.0.2.1", nil, keyward.DecisionMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := e.engine.Verify(e.ctx, verify.Request{Key: tc.raw, IP: netip.MustParseAddr(tc.ip), Permissions: tc.perms})
			if res.Decision != tc.want {
				t.Fatalf("decision %s, want %s", res.Decision, tc.want)
			}
			if tc.want == keyward.DecisionIPBlocked && res.KeyID() != "" {
				t.Fatalf("IP_BLOCKED names key %s", res.KeyID())
			}
		})
	}
}

// TestAutomaticBlockLookupBudget: from an automatically blocked network,
// a token that fails its checksum and a hash the negative cache knows cost
// no lookup; other unknown hashes cost at most BlockedLookupBurst lookups,
// then one per BlockedLookupInterval, per blocked network. A key cached
// before is reloaded outside the budget. Unblocked addresses are not
// bounded.
func TestAutomaticBlockLookupBudget(t *testing.T) {
	e := newEnv(t, nil)
	k := e.key(keyward.Key{})
	e.autoRule("203.0.113.7/32")
	e.autoRule("203.0.113.8/32")
	from := func(raw, ip string) keyward.Decision {
		return e.engine.Verify(e.ctx, verify.Request{Key: raw, IP: netip.MustParseAddr(ip)}).Decision
	}

	start := e.lookups()
	for range 10 {
		if d := from("kw_garbage", "203.0.113.7"); d != keyward.DecisionIPBlocked {
			t.Fatalf("garbage: %s", d)
		}
	}
	e.wantLookups(start, 0)

	var guessed []string
	for range 3 * verify.BlockedLookupBurst {
		raw := unknownKey(t)
		guessed = append(guessed, raw)
		if d := from(raw, "203.0.113.7"); d != keyward.DecisionIPBlocked {
			t.Fatalf("unknown key: %s", d)
		}
	}
	e.wantLookups(start, verify.BlockedLookupBurst)
	// The guesses that were looked up are in the negative cache: free.
	for _, raw := range guessed[:verify.BlockedLookupBurst] {
		from(raw, "203.0.113.7")
	}
	e.wantLookups(start, verify.BlockedLookupBurst)

	// The budget refills one lookup per interval.
	e.clock.Advance(verify.BlockedLookupInterval)
	from(unknownKey(t), "203.0.113.7")
	from(unknownKey(t), "203.0.113.7")
	e.wantLookups(start, verify.BlockedLookupBurst+1)

	// Another blocked network has a budget of its own.
	for range 2 * verify.BlockedLookupBurst {
		from(unknownKey(t), "203.0.113.8")
	}
	e.wantLookups(start, 2*verify.BlockedLookupBurst+1)

	// With the budget spent, a valid key the cache does not know is
	// refused like a guess: that is the limit of the protection.
	if d := from(k.Secret, "203.0.113.7"); d != keyward.DecisionIPBlocked {
		t.Fatalf("uncached valid key with the budget spent: %s, want IP_BLOCKED", d)
	}
	// Once the key is cached (a use from anywhere, or a lookup within the
	// budget), it passes; and when its entry expires it is reloaded,
	// outside the budget.
	before := e.lookups()
	if d := from(k.Secret, "192.0.2.1"); d != keyward.DecisionValid {
		t.Fatalf("from an unblocked address: %s", d)
	}
	for range 3 {
		if d := from(k.Secret, "203.0.113.7"); d != keyward.DecisionValid {
			t.Fatalf("cached valid key from the blocked address: %s", d)
		}
	}
	e.wantLookups(before, 1)
	e.clock.Advance(verify.DefaultCacheTTL + time.Second)
	for range 2 * verify.BlockedLookupBurst { // spend the refilled budget
		from(unknownKey(t), "203.0.113.7")
	}
	before = e.lookups()
	if d := from(k.Secret, "203.0.113.7"); d != keyward.DecisionValid {
		t.Fatalf("expired cached valid key from the blocked address: %s", d)
	}
	e.wantLookups(before, 1)

	// Unblocked addresses are not bounded.
	before = e.lookups()
	for range 3 * verify.BlockedLookupBurst {
		if d := from(unknownKey(t), "192.0.2.1"); d != keyward.DecisionNotFound {
			t.Fatalf("unknown key from an unblocked address: %s", d)
		}
	}
	e.wantLookups(before, 3*verify.BlockedLookupBurst)
}

// badChecksum returns raw with its last character changed.
func badChecksum(raw string) string {
	last := byte('x')
	if raw[len(raw)-1] == last {
		last = 'y'
	}
	return raw[:len(raw)-1] + string(last)
}

// TestAutomaticBlockCacheHitAllocatesNothing: automatic blocks in force add
// no allocation to a cache hit, from an unblocked address or, for a valid
// key, from a blocked one.
func TestAutomaticBlockCacheHitAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	e := newEnv(t, nil)
	k := e.key(keyward.Key{})
	e.autoRule("203.0.113.7/32")
	for _, ip := range []string{"192.0.2.1", "203.0.113.7"} {
		req := verify.Request{Key: k.Secret, IP: netip.MustParseAddr(ip)}
		if d := e.engine.Verify(e.ctx, req).Decision; d != keyward.DecisionValid {
			t.Fatalf("from %s: %s", ip, d)
		}
		if n := testing.AllocsPerRun(100, func() { e.engine.Verify(e.ctx, req) }); n != 0 {
			t.Errorf("a cache hit from %s allocates %v times, want 0", ip, n)
		}
	}
}
