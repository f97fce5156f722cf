package verify_test

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/verify"
)

// rule stores an IP rule and applies it (as the admin service does).
func (e *env) rule(accountID string, action keyward.IPAction, cidr string, expires *time.Time) *keyward.IPRule {
	e.t.Helper()
	r := &keyward.IPRule{ID: apikey.NewID("ipr"), AccountID: accountID, Action: action,
		CIDR: netip.MustParsePrefix(cidr), ExpiresAt: expires, CreatedAt: e.clock.Now()}
	if err := e.store.CreateIPRule(e.ctx, keyward.Change{}, r); err != nil {
		e.t.Fatalf("CreateIPRule: %v", err)
	}
	if err := e.engine.ReloadIPRules(e.ctx); err != nil {
		e.t.Fatalf("ReloadIPRules: %v", err)
	}
	return r
}

func (e *env) verifyFrom(raw, ip string) verify.Result {
	var a netip.Addr
	if ip != "" {
		a = netip.MustParseAddr(ip)
	}
	return e.engine.Verify(e.ctx, verify.Request{Key: raw, IP: a})
}

func TestIPRules(t *testing.T) {
	e := newEnv(t, nil)
	other := newAccount(e, "other")
	k := e.key(keyward.Key{})
	allowListed := e.key(keyward.Key{IPAllow: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8:aa::/48")}})
	otherKey := e.otherKey(other.ID)

	e.rule("", keyward.IPBlock, "203.0.113.0/24", nil)
	e.rule("", keyward.IPBlock, "2001:db8:bad::/48", nil)
	e.rule(e.acct.ID, keyward.IPBlock, "192.0.2.66/32", nil)
	e.rule(other.ID, keyward.IPAllow, "10.0.0.0/8", nil)

	for _, tc := range []struct {
		name string
		raw  string
		ip   string
		want keyward.Decision
	}{
		{"global block, IPv4", k.Secret, "203.0.113.9", keyward.DecisionIPBlocked},
		{"global block, IPv6", k.Secret, "2001:db8:bad::1", keyward.DecisionIPBlocked},
		{"global block refuses even garbage", "not a key", "203.0.113.9", keyward.DecisionIPBlocked},
		{"garbage from elsewhere is malformed", "not a key", "192.0.2.1", keyward.DecisionMalformed},
		{"account block", k.Secret, "192.0.2.66", keyward.DecisionIPBlocked},
		{"account block is not another account's", otherKey, "10.0.0.66", keyward.DecisionValid},
		{"outside the blocks", k.Secret, "192.0.2.67", keyward.DecisionValid},
		{"unknown address: no block applies", k.Secret, "", keyward.DecisionValid},
		{"account allow list, inside", otherKey, "10.9.9.9", keyward.DecisionValid},
		{"account allow list, outside", otherKey, "192.0.2.1", keyward.DecisionIPNotAllowed},
		{"account allow list, unknown address", otherKey, "", keyward.DecisionIPNotAllowed},
		{"key allow list, inside", allowListed.Secret, "198.51.100.200", keyward.DecisionValid},
		{"key allow list, IPv6 inside", allowListed.Secret, "2001:db8:aa::7", keyward.DecisionValid},
		{"key allow list, IPv4-mapped inside", allowListed.Secret, "::ffff:198.51.100.1", keyward.DecisionValid},
		{"key allow list, outside", allowListed.Secret, "192.0.2.1", keyward.DecisionIPNotAllowed},
		{"key allow list, unknown address", allowListed.Secret, "", keyward.DecisionIPNotAllowed},
		{"key allow list does not beat a block", allowListed.Secret, "203.0.113.1", keyward.DecisionIPBlocked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := e.verifyFrom(tc.raw, tc.ip)
			if res.Decision != tc.want {
				t.Fatalf("decision %s, want %s", res.Decision, tc.want)
			}
		})
	}

	t.Run("a global block costs no lookup", func(t *testing.T) {
		fresh := e.key(keyward.Key{})
		before := e.lookups()
		for range 3 {
			if d := e.verifyFrom(fresh.Secret, "203.0.113.1").Decision; d != keyward.DecisionIPBlocked {
				t.Fatalf("decision %s", d)
			}
		}
		e.wantLookups(before, 0)
	})

	t.Run("a key refused by its allow list names the key; permissions come after", func(t *testing.T) {
		res := e.engine.Verify(e.ctx, verify.Request{Key: allowListed.Secret, IP: netip.MustParseAddr("192.0.2.1"), Permissions: []string{"nope"}})
		if res.Decision != keyward.DecisionIPNotAllowed || res.KeyID() != allowListed.ID {
			t.Fatalf("got %s with key %q, want IP_NOT_ALLOWED naming %s", res.Decision, res.KeyID(), allowListed.ID)
		}
	})
}

// newAccount creates an account in the env's store.
func newAccount(e *env, name string) *keyward.Account {
	e.t.Helper()
	now := e.clock.Now()
	a := &keyward.Account{ID: apikey.NewID("acc"), Name: name, CreatedAt: now, UpdatedAt: now}
	if err := e.store.CreateAccount(e.ctx, keyward.Change{}, a); err != nil {
		e.t.Fatal(err)
	}
	return a
}

// otherKey creates an account_admin key of accountID and returns its secret.
func (e *env) otherKey(accountID string) string {
	return e.key(keyward.Key{Role: keyward.RoleAccountAdmin, AccountID: accountID}).Secret
}

func TestGlobalAllowRules(t *testing.T) {
	e := newEnv(t, nil)
	k := e.key(keyward.Key{})
	e.rule("", keyward.IPAllow, "10.0.0.0/8", nil)
	e.rule("", keyward.IPBlock, "10.6.6.0/24", nil)
	before := e.lookups()
	for ip, want := range map[string]keyward.Decision{
		"192.0.2.1": keyward.DecisionIPNotAllowed,
		"":          keyward.DecisionIPNotAllowed,
		"10.6.6.6":  keyward.DecisionIPBlocked, // blocks win
	} {
		if d := e.verifyFrom(k.Secret, ip).Decision; d != want {
			t.Errorf("from %q: %s, want %s", ip, d, want)
		}
	}
	e.wantLookups(before, 0)
	if d := e.verifyFrom(k.Secret, "10.1.2.3").Decision; d != keyward.DecisionValid {
		t.Errorf("from inside the allow list: %s", d)
	}
}

func TestIPRuleExpiryAndDelete(t *testing.T) {
	e := newEnv(t, nil)
	k := e.key(keyward.Key{})
	exp := e.clock.Now().Add(time.Minute)
	r := e.rule("", keyward.IPBlock, "192.0.2.0/24", &exp)
	if d := e.verifyFrom(k.Secret, "192.0.2.1").Decision; d != keyward.DecisionIPBlocked {
		t.Fatalf("before expiry: %s", d)
	}
	e.clock.Advance(time.Minute)
	if d := e.verifyFrom(k.Secret, "192.0.2.1").Decision; d != keyward.DecisionValid {
		t.Fatalf("at expiry: %s, want VALID without a reload", d)
	}

	r2 := e.rule("", keyward.IPBlock, "192.0.2.0/24", nil)
	if d := e.verifyFrom(k.Secret, "192.0.2.1").Decision; d != keyward.DecisionIPBlocked {
		t.Fatalf("after a new rule: %s", d)
	}
	for _, id := range []string{r.ID, r2.ID} {
		if _, err := e.store.DeleteIPRule(e.ctx, keyward.Change{}, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.engine.ReloadIPRules(e.ctx); err != nil {
		t.Fatal(err)
	}
	if d := e.verifyFrom(k.Secret, "192.0.2.1").Decision; d != keyward.DecisionValid {
		t.Fatalf("after delete: %s", d)
	}
}

// TestIPRulesRefresh: a rule written by another instance (straight to the
// store here) applies within IPRuleRefresh, without ReloadIPRules.
func TestIPRulesRefresh(t *testing.T) {
	e := newEnv(t, func(c *verify.Config) { c.IPRuleRefresh = 20 * time.Millisecond })
	k := e.key(keyward.Key{})
	r := &keyward.IPRule{ID: apikey.NewID("ipr"), Action: keyward.IPBlock, CIDR: netip.MustParsePrefix("192.0.2.0/24"), CreatedAt: e.clock.Now()}
	if err := e.store.CreateIPRule(e.ctx, keyward.Change{}, r); err != nil {
		t.Fatal(err)
	}
	keywardtest.WaitFor(t, "the rule to apply", func() bool {
		return e.verifyFrom(k.Secret, "192.0.2.1").Decision == keyward.DecisionIPBlocked
	})
}

// failingRules is an IPRuleLoader that cannot answer.
type failingRules struct{}

func (failingRules) ActiveIPRules(context.Context, time.Time) ([]*keyward.IPRule, error) {
	return nil, keyward.Errorf(keyward.EUNAVAILABLE, "store is down")
}

// TestIPRulesNeverLoadedFailClosed: until the rules load once, no request
// verifies; a failed reload later keeps the rules in force.
func TestIPRulesNeverLoadedFailClosed(t *testing.T) {
	e := newEnv(t, func(c *verify.Config) { c.IPRules = failingRules{} })
	k := e.key(keyward.Key{})
	if d := e.verifyFrom(k.Secret, "192.0.2.1").Decision; d != keyward.DecisionUnavailable {
		t.Fatalf("rules never loaded: %s, want UNAVAILABLE", d)
	}
	if err := e.engine.ReloadIPRules(e.ctx); keyward.ErrorCode(err) != keyward.EUNAVAILABLE {
		t.Fatalf("ReloadIPRules = %v, want unavailable", err)
	}
}

func TestIPRuleReloadFailureKeepsRules(t *testing.T) {
	rules := &switchRules{}
	e := newEnv(t, func(c *verify.Config) { c.IPRules = rules })
	k := e.key(keyward.Key{})
	rules.set([]*keyward.IPRule{{ID: "r", Action: keyward.IPBlock, CIDR: netip.MustParsePrefix("192.0.2.0/24")}}, nil)
	if err := e.engine.ReloadIPRules(e.ctx); err != nil {
		t.Fatal(err)
	}
	rules.set(nil, keyward.Errorf(keyward.EUNAVAILABLE, "down"))
	if err := e.engine.ReloadIPRules(e.ctx); err == nil {
		t.Fatal("ReloadIPRules succeeded on a failing loader")
	}
	if d := e.verifyFrom(k.Secret, "192.0.2.1").Decision; d != keyward.DecisionIPBlocked {
		t.Fatalf("after a failed reload: %s, want the rules kept (IP_BLOCKED)", d)
	}
}

type switchRules struct {
	mu    sync.Mutex
	rules []*keyward.IPRule
	err   error
}

func (s *switchRules) set(rules []*keyward.IPRule, err error) {
	s.mu.Lock()
	s.rules, s.err = rules, err
	s.mu.Unlock()
}

func (s *switchRules) ActiveIPRules(context.Context, time.Time) ([]*keyward.IPRule, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rules, s.err
}
