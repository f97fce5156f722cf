package verify_test

import (
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/verify"
)

// sink records the signals it receives.
type sink struct {
	mu      sync.Mutex
	signals []keyward.Signal
}

func (s *sink) Signal(sig keyward.Signal) {
	s.mu.Lock()
	s.signals = append(s.signals, sig)
	s.mu.Unlock()
}

// take returns the signals received since the last take.
func (s *sink) take() []keyward.Signal {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.signals
	s.signals = nil
	return out
}

func TestSignals(t *testing.T) {
	sk := &sink{}
	e := newEnv(t, func(c *verify.Config) { c.Signals = sk })
	now := e.clock.Now()
	k := e.key(keyward.Key{Permissions: []string{"read"}, RateLimits: []keyward.RateLimit{limit("min", 100, time.Minute)}})
	revoked := e.key(keyward.Key{RevokedAt: ptr(now)})
	unknown := unknownKey(t)
	ip := netip.MustParseAddr

	for _, tc := range []struct {
		name  string
		req   verify.Request
		want  []keyward.Signal // At is now, and KeyID/AccountID are filled below for keys
		keyed bool
	}{
		{"first use from a network", verify.Request{Key: k.Secret, IP: ip("192.0.2.1")},
			[]keyward.Signal{{Kind: keyward.SignalNetwork, Decision: keyward.DecisionValid, IP: ip("192.0.2.1"), Count: 1}}, true},
		{"same /24", verify.Request{Key: k.Secret, IP: ip("192.0.2.200")}, nil, true},
		{"same network, v4-mapped", verify.Request{Key: k.Secret, IP: ip("::ffff:192.0.2.9")}, nil, true},
		{"unknown address", verify.Request{Key: k.Secret}, nil, true},
		{"another /24", verify.Request{Key: k.Secret, IP: ip("192.0.3.1")},
			[]keyward.Signal{{Kind: keyward.SignalNetwork, Decision: keyward.DecisionValid, IP: ip("192.0.3.1"), Count: 1}}, true},
		{"IPv6", verify.Request{Key: k.Secret, IP: ip("2001:db8:0:1::1")},
			[]keyward.Signal{{Kind: keyward.SignalNetwork, Decision: keyward.DecisionValid, IP: ip("2001:db8:0:1::1"), Count: 1}}, true},
		{"same /64", verify.Request{Key: k.Secret, IP: ip("2001:db8:0:1:ffff::2")}, nil, true},
		{"another /64", verify.Request{Key: k.Secret, IP: ip("2001:db8:0:2::1")},
			[]keyward.Signal{{Kind: keyward.SignalNetwork, Decision: keyward.DecisionValid, IP: ip("2001:db8:0:2::1"), Count: 1}}, true},
		{"refused: a failure, not a network", verify.Request{Key: k.Secret, Permissions: []string{"write"}, IP: ip("198.51.100.7")},
			[]keyward.Signal{{Kind: keyward.SignalFailure, Decision: keyward.DecisionInsufficientPermissions, IP: ip("198.51.100.7"), Count: 1}}, true},
		{"rate limited", verify.Request{Key: k.Secret, Cost: 101, IP: ip("198.51.100.7")},
			[]keyward.Signal{{Kind: keyward.SignalFailure, Decision: keyward.DecisionRateLimited, IP: ip("198.51.100.7"), Count: 1,
				Limit: limit("min", 100, time.Minute)}}, true},
		{"revoked", verify.Request{Key: revoked.Secret, IP: ip("198.51.100.7")},
			[]keyward.Signal{{Kind: keyward.SignalFailure, Decision: keyward.DecisionRevoked, IP: ip("198.51.100.7"), KeyID: revoked.ID, AccountID: e.acct.ID, Count: 1}}, false},
		{"not found: no key", verify.Request{Key: unknown, IP: ip("203.0.113.5")},
			[]keyward.Signal{{Kind: keyward.SignalFailure, Decision: keyward.DecisionNotFound, IP: ip("203.0.113.5"), Count: 1}}, false},
		{"malformed", verify.Request{Key: "kw_user_nope", IP: ip("203.0.113.5")},
			[]keyward.Signal{{Kind: keyward.SignalFailure, Decision: keyward.DecisionMalformed, IP: ip("203.0.113.5"), Count: 1}}, false},
		{"unavailable: no signal", verify.Request{Key: k.Secret, Cost: -1, IP: ip("203.0.113.5")}, nil, false},
		// A scoped verifier's address is its own assertion: no IP in
		// signals, so it cannot get an address blocked for everyone.
		{"scoped verifier, failure", verify.Request{Key: unknown, IP: ip("203.0.113.9"), Account: e.acct.ID},
			[]keyward.Signal{{Kind: keyward.SignalFailure, Decision: keyward.DecisionNotFound, Count: 1}}, false},
		{"scoped verifier, valid use", verify.Request{Key: k.Secret, IP: ip("203.0.113.9"), Account: e.acct.ID}, nil, true},
	} {
		e.clock.Advance(time.Second)
		e.engine.Verify(e.ctx, tc.req)
		for i := range tc.want {
			tc.want[i].At = e.clock.Now()
			if tc.keyed {
				tc.want[i].KeyID, tc.want[i].AccountID = k.ID, e.acct.ID
			}
		}
		if got := sk.take(); !slices.Equal(got, tc.want) {
			t.Errorf("%s: signals\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}

	// A reloaded entry keeps the network: no change to report.
	stored, err := e.store.Key(e.ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	e.engine.KeyChanged(stored)
	e.engine.Verify(e.ctx, verify.Request{Key: k.Secret, IP: ip("2001:db8:0:2::99")})
	if got := sk.take(); len(got) != 0 {
		t.Errorf("after a reload, same network: %+v", got)
	}

	// Usage: every VALID use since the last flush, counted across the
	// entry replaced above, at the same instant (no resolution applies).
	e.clock.Advance(time.Second)
	for range 5 {
		e.engine.Verify(e.ctx, verify.Request{Key: k.Secret})
	}
	e.engine.Verify(e.ctx, verify.Request{Key: revoked.Secret}) // not a use
	sk.take()
	if err := e.engine.Flush(e.ctx); err != nil {
		t.Fatal(err)
	}
	// 9 valid uses before the reload (the first eight cases and the
	// scoped one), 1 after, then 5.
	want := []keyward.Signal{{Kind: keyward.SignalUsage, At: e.clock.Now(), Decision: keyward.DecisionValid, KeyID: k.ID, AccountID: e.acct.ID, Count: 15}}
	if got := sk.take(); !slices.Equal(got, want) {
		t.Errorf("usage\n got %+v\nwant %+v", got, want)
	}
	e.engine.Verify(e.ctx, verify.Request{Key: k.Secret})
	if err := e.engine.Flush(e.ctx); err != nil {
		t.Fatal(err)
	}
	want[0].Count = 1
	if got := sk.take(); !slices.Equal(got, want) {
		t.Errorf("usage after the next flush\n got %+v\nwant %+v", got, want)
	}
	if err := e.engine.Flush(e.ctx); err != nil {
		t.Fatal(err)
	}
	if got := sk.take(); len(got) != 0 {
		t.Errorf("usage with no use since: %+v", got)
	}
}
