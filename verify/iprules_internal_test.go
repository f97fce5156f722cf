package verify

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

func TestNetSet(t *testing.T) {
	set := newNetSet([]netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("10.1.0.0/16"), // nested: merged away
		netip.MustParsePrefix("192.0.2.7/32"),
		netip.MustParsePrefix("0.0.0.0/1"),
		netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("2001:db8:ffff::/48"),
		netip.MustParsePrefix("fe80::1/128"),
	})
	for addr, want := range map[string]bool{
		"10.0.0.0": true, "10.255.255.255": true, "11.0.0.0": true, // 0.0.0.0/1 holds 11.x
		"127.255.255.255": true, "128.0.0.0": false, "192.0.2.7": true, "192.0.2.6": false, "192.0.2.8": false,
		"255.255.255.255": false, "::ffff:10.1.2.3": true, // mapped forms match their IPv4 rule
		"2001:db8::": true, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff": true, "2001:db9::": false,
		"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff": false, "fe80::1": true, "fe80::2": false, "::": false,
		"::a00:1": false, // ::10.0.0.1 is IPv6, not IPv4
	} {
		if got := set.contains(netip.MustParseAddr(addr)); got != want {
			t.Errorf("contains(%s) = %v, want %v", addr, got, want)
		}
	}
	if set.contains(netip.Addr{}) {
		t.Error("an unknown address matched")
	}
	if len(set.v4) != 2 || len(set.v6) != 2 {
		t.Errorf("ranges not merged: v4 %d, v6 %d; want 2 and 2", len(set.v4), len(set.v6))
	}
	all := newNetSet([]netip.Prefix{netip.MustParsePrefix("::/0"), netip.MustParsePrefix("0.0.0.0/0")})
	for _, a := range []string{"0.0.0.0", "255.255.255.255", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"} {
		if !all.contains(netip.MustParseAddr(a)) {
			t.Errorf("/0 does not contain %s", a)
		}
	}
}

// TestNetSetMatchesContains compares the set with netip.Prefix.Contains on
// random prefixes and addresses.
func TestNetSetMatchesContains(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	randAddr := func(v4 bool) netip.Addr {
		if v4 {
			return netip.AddrFrom4([4]byte{byte(r.IntN(4)), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
		}
		var b [16]byte
		b[0] = byte(r.IntN(4))
		for i := 1; i < 16; i++ {
			b[i] = byte(r.Uint32())
		}
		return netip.AddrFrom16(b)
	}
	for range 200 {
		var ps []netip.Prefix
		for range r.IntN(8) {
			v4 := r.IntN(2) == 0
			a := randAddr(v4)
			ps = append(ps, netip.PrefixFrom(a, r.IntN(a.BitLen()+1)).Masked())
		}
		set := newNetSet(append([]netip.Prefix(nil), ps...))
		for range 50 {
			a := randAddr(r.IntN(2) == 0)
			if got, want := set.contains(a), keyward.PrefixesContain(ps, a); got != want {
				t.Fatalf("prefixes %v, address %s: set says %v, Contains says %v", ps, a, got, want)
			}
		}
	}
}

func TestMatcherExpiry(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	soon := now.Add(time.Minute)
	rules := []*keyward.IPRule{
		{ID: "1", Action: keyward.IPBlock, CIDR: netip.MustParsePrefix("192.0.2.0/24"), ExpiresAt: &soon},
		{ID: "2", AccountID: "acc", Action: keyward.IPAllow, CIDR: netip.MustParsePrefix("2001:db8::/32")},
	}
	m := compileIPRules(rules, now)
	ip := netip.MustParseAddr("192.0.2.1")
	if d, _ := m.global(ip); d != keyward.DecisionIPBlocked {
		t.Fatalf("before expiry: %s, want IP_BLOCKED", d)
	}
	if m.validUntil != soon.UnixNano() {
		t.Fatalf("validUntil = %d, want the expiry %d", m.validUntil, soon.UnixNano())
	}
	later := compileIPRules(rules, soon)
	if d, _ := later.global(ip); d != keyward.DecisionValid {
		t.Fatalf("after expiry: %s, want VALID", d)
	}
	if d := later.forAccount("acc", ip); d != keyward.DecisionIPNotAllowed {
		t.Fatalf("account allow list: %s, want IP_NOT_ALLOWED", d)
	}
	if d := later.forAccount("acc", netip.MustParseAddr("2001:db8::5")); d != keyward.DecisionValid {
		t.Fatalf("account allow list, allowed address: %s, want VALID", d)
	}
	if d := later.forAccount("other", ip); d != keyward.DecisionValid {
		t.Fatalf("another account: %s, want VALID", d)
	}
}

func BenchmarkNetSetContains(b *testing.B) {
	var ps []netip.Prefix
	for i := range 10000 {
		ps = append(ps, netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(i >> 8), byte(i), 0, 0}), 24))
	}
	set := newNetSet(ps)
	a := netip.MustParseAddr("20.30.0.1")
	b.ReportAllocs()
	for b.Loop() {
		set.contains(a)
	}
}
