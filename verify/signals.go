package verify

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/ratelimit"
)

// signalFailure reports a refused verification to the sink.
func (e *Engine) signalFailure(req *Request, res *Result, now time.Time) {
	s := keyward.Signal{Kind: keyward.SignalFailure, At: now, Decision: res.Decision, IP: req.signalIP(), Count: 1}
	if en := res.key; en != nil {
		s.KeyID, s.AccountID = en.signalIDs()
	}
	if res.Decision == keyward.DecisionRateLimited {
		if d, ok := ratelimit.Denied(res.RateLimits()); ok {
			s.Limit = d.Limit
		}
	}
	e.signals.Signal(s)
}

// signalIP is the client address signals may carry: none when a scoped
// verifier (Request.Account) asserts it, since a tenant must not make the
// brute-force rule block an address for everyone, nor an anomaly action
// act on one.
func (r *Request) signalIP() netip.Addr {
	if r.Account != "" {
		return netip.Addr{}
	}
	return r.IP
}

// validUse counts a VALID use of en for the next usage flush, and reports a
// use from another network than the previous one seen through en (or the
// entry it replaced). The first use with a known address counts as a
// change: the sink hears of every network a key is used from, once per
// change. Called only with a sink.
func (e *Engine) validUse(en *entry, ip netip.Addr, now time.Time) {
	en.uses.Add(1)
	e.queue(en)
	n := networkOf(ip)
	if n == 0 || en.network.Load() == n || en.network.Swap(n) == n {
		return
	}
	sig := keyward.Signal{Kind: keyward.SignalNetwork, At: now, Decision: keyward.DecisionValid, IP: ip, Count: 1}
	sig.KeyID, sig.AccountID = en.signalIDs()
	e.signals.Signal(sig)
}

// ipv4Tag marks an IPv4 network in networkOf's value: its top 32 bits are
// those of ffff:ffff::/32, multicast space that is never a client's source
// address, so no IPv6 /64 has them.
const ipv4Tag = uint64(0xffff_ffff) << 32

// networkOf returns ip's network (IPv4 /24, IPv6 /64) as a comparable
// integer for an atomic, 0 for an unknown address: the 64 prefix bits of
// an IPv6 address (::/64, loopback and unspecified, becomes 1), or ipv4Tag
// with the 24 prefix bits of an IPv4 address.
func networkOf(ip netip.Addr) uint64 {
	ip = ip.Unmap()
	switch {
	case ip.Is4():
		b := ip.As4()
		return ipv4Tag | uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8
	case ip.Is6():
		b := ip.As16()
		return max(binary.BigEndian.Uint64(b[:8]), 1)
	}
	return 0
}

// usageSignals reports the VALID uses counted in batch since its entries'
// previous flush, one SignalUsage per key at now. Called by flush only
// with a sink, after it cleared each entry's queuedBit: a use counted
// after the swap below queues its entry again.
func (e *Engine) usageSignals(batch []*entry, now time.Time) {
	type usage struct {
		accountID string
		n         int64
	}
	byKey := make(map[string]usage, len(batch))
	order := make([]string, 0, len(batch))
	for _, en := range batch {
		n := en.uses.Swap(0)
		if n == 0 {
			continue
		}
		if u, seen := byKey[en.keyID()]; seen {
			byKey[en.keyID()] = usage{u.accountID, u.n + n}
			continue
		}
		id, accountID := en.signalIDs()
		order = append(order, id)
		byKey[id] = usage{accountID, n}
	}
	for _, id := range order {
		u := byKey[id]
		e.signals.Signal(keyward.Signal{
			Kind: keyward.SignalUsage, At: now, Decision: keyward.DecisionValid,
			KeyID: id, AccountID: u.accountID, Count: u.n,
		})
	}
}
