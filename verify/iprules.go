package verify

import (
	"context"
	"encoding/binary"
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/keyward/keyward"
)

// IPRuleLoader loads the IP rules the engine enforces; keyward.Store is
// one. An engine whose Config.Store implements it uses it unless
// Config.IPRules says otherwise.
type IPRuleLoader interface {
	// ActiveIPRules returns every rule that applies at now.
	ActiveIPRules(ctx context.Context, now time.Time) ([]*keyward.IPRule, error)
}

// DefaultIPRuleRefresh is the default of Config.IPRuleRefresh.
const DefaultIPRuleRefresh = 10 * time.Second

// ipRange is an inclusive range of addresses of one family, as two 64-bit
// halves (IPv4 addresses use the low half only).
type ipRange struct{ lo, hi u128 }

type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

func addrBits(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{lo: uint64(binary.BigEndian.Uint32(b[:]))}
	}
	b := a.As16()
	return u128{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:])}
}

// prefixRange returns the first and last address of p.
func prefixRange(p netip.Prefix) ipRange {
	lo := addrBits(p.Masked().Addr())
	host := p.Addr().BitLen() - p.Bits() // bits that vary
	hi := lo
	switch {
	case host >= 128:
		hi = u128{math.MaxUint64, math.MaxUint64}
	case host >= 64:
		hi.hi |= 1<<(host-64) - 1
		hi.lo = math.MaxUint64
	case host > 0:
		hi.lo |= 1<<host - 1
	}
	return ipRange{lo, hi}
}

// netSet is a set of networks as sorted, disjoint ranges per family: a
// lookup is a binary search, with no allocation.
type netSet struct{ v4, v6 []ipRange }

func newNetSet(ps []netip.Prefix) netSet {
	var s netSet
	for _, p := range ps {
		if p.Addr().Is4() {
			s.v4 = append(s.v4, prefixRange(p))
		} else {
			s.v6 = append(s.v6, prefixRange(p))
		}
	}
	s.v4, s.v6 = mergeRanges(s.v4), mergeRanges(s.v6)
	return s
}

// mergeRanges sorts rs and merges overlapping ones. Ranges of prefixes
// either nest or are disjoint, so merging keeps the outermost.
func mergeRanges(rs []ipRange) []ipRange {
	slices.SortFunc(rs, func(a, b ipRange) int {
		switch {
		case a.lo.less(b.lo):
			return -1
		case b.lo.less(a.lo):
			return 1
		}
		return 0
	})
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 && !out[n-1].hi.less(r.lo) {
			if out[n-1].hi.less(r.hi) {
				out[n-1].hi = r.hi
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

func (s *netSet) empty() bool { return len(s.v4) == 0 && len(s.v6) == 0 }

// contains reports whether a lies in the set; an invalid address in none.
func (s *netSet) contains(a netip.Addr) bool {
	_, ok := s.find(a)
	return ok
}

// find returns the range of the set that holds a, if any; an invalid
// address lies in none.
func (s *netSet) find(a netip.Addr) (ipRange, bool) {
	if !a.IsValid() {
		return ipRange{}, false
	}
	a = a.Unmap()
	rs := s.v6
	if a.Is4() {
		rs = s.v4
	}
	x := addrBits(a)
	// The last range starting at or before x.
	i, j := 0, len(rs)
	for i < j {
		h := int(uint(i+j) >> 1)
		if x.less(rs[h].lo) {
			j = h
		} else {
			i = h + 1
		}
	}
	if i > 0 && !rs[i-1].hi.less(x) {
		return rs[i-1], true
	}
	return ipRange{}, false
}

// ipMatcher is the compiled form of the rules in force, replaced whole
// (never modified) on every reload.
type ipMatcher struct {
	rules []*keyward.IPRule // as loaded, for recompiling at expiry
	// globalBlock holds every global block, handBlock those made by hand
	// and autoBlock the automatic ones (keyward.IPRule.Automatic): the
	// hot path of an unblocked address tests globalBlock alone.
	globalBlock netSet
	handBlock   netSet
	autoBlock   netSet
	globalAllow netSet
	accounts    map[string]*accountNets
	// validUntil is when the earliest rule expires, Unix nanoseconds
	// (math.MaxInt64 for never): the matcher is rebuilt then.
	validUntil int64
}

type accountNets struct{ block, allow netSet }

// compileIPRules builds the matcher of the rules active at now.
func compileIPRules(rules []*keyward.IPRule, now time.Time) *ipMatcher {
	m := &ipMatcher{rules: rules, accounts: map[string]*accountNets{}, validUntil: math.MaxInt64}
	var gBlock, gAuto, gAllow []netip.Prefix
	aBlock, aAllow := map[string][]netip.Prefix{}, map[string][]netip.Prefix{}
	for _, r := range rules {
		if !r.Active(now) {
			continue
		}
		if r.ExpiresAt != nil {
			m.validUntil = min(m.validUntil, r.ExpiresAt.UnixNano())
		}
		switch {
		case r.AccountID == "" && r.Action == keyward.IPBlock && r.Automatic:
			gAuto = append(gAuto, r.CIDR)
		case r.AccountID == "" && r.Action == keyward.IPBlock:
			gBlock = append(gBlock, r.CIDR)
		case r.AccountID == "" && r.Action == keyward.IPAllow:
			gAllow = append(gAllow, r.CIDR)
		case r.Action == keyward.IPBlock:
			aBlock[r.AccountID] = append(aBlock[r.AccountID], r.CIDR)
		case r.Action == keyward.IPAllow:
			aAllow[r.AccountID] = append(aAllow[r.AccountID], r.CIDR)
		}
	}
	m.handBlock, m.autoBlock, m.globalAllow = newNetSet(gBlock), newNetSet(gAuto), newNetSet(gAllow)
	m.globalBlock = newNetSet(append(slices.Clip(gBlock), gAuto...))
	for id, ps := range aBlock {
		m.account(id).block = newNetSet(ps)
	}
	for id, ps := range aAllow {
		m.account(id).allow = newNetSet(ps)
	}
	return m
}

func (m *ipMatcher) account(id string) *accountNets {
	a := m.accounts[id]
	if a == nil {
		a = &accountNets{}
		m.accounts[id] = a
	}
	return a
}

// global decides on the rules that apply before any lookup: VALID, or
// IP_BLOCKED (a block made by hand), or IP_NOT_ALLOWED when global allow
// rules exist and ip is in none of them. auto reports a VALID address that
// only automatic blocks hold: only a key that verifies VALID may pass (see
// verifyAutoBlocked).
func (m *ipMatcher) global(ip netip.Addr) (d keyward.Decision, auto bool) {
	if m.globalBlock.contains(ip) {
		if m.handBlock.contains(ip) {
			return keyward.DecisionIPBlocked, false
		}
		auto = true
	}
	if !m.globalAllow.empty() && !m.globalAllow.contains(ip) {
		return keyward.DecisionIPNotAllowed, false
	}
	return keyward.DecisionValid, auto
}

// forAccount decides on the rules of the account of a found key.
func (m *ipMatcher) forAccount(accountID string, ip netip.Addr) keyward.Decision {
	if accountID == "" {
		return keyward.DecisionValid
	}
	a := m.accounts[accountID]
	switch {
	case a == nil:
		return keyward.DecisionValid
	case a.block.contains(ip):
		return keyward.DecisionIPBlocked
	case !a.allow.empty() && !a.allow.contains(ip):
		return keyward.DecisionIPNotAllowed
	}
	return keyward.DecisionValid
}

// ipRulesAt returns the matcher in force at now (rebuilding it once a rule
// has expired), or nil when rules are configured but were never loaded.
func (e *Engine) ipRulesAt(now time.Time) *ipMatcher {
	m := e.ipRules.Load()
	if m == nil || now.UnixNano() < m.validUntil {
		return m
	}
	// One request rebuilds; the others go on with the matcher in force,
	// where the expired rule applies a moment longer.
	if !e.ipCompiling.CompareAndSwap(false, true) {
		return m
	}
	defer e.ipCompiling.Store(false)
	next := compileIPRules(m.rules, now)
	e.ipRules.CompareAndSwap(m, next) // a concurrent reload wins
	return e.ipRules.Load()
}

// ReloadIPRules loads the rules in force from the store and applies them
// at once. The admin service calls it after every rule change it commits;
// the engine also calls it every Config.IPRuleRefresh, which bounds how
// long a change made on another instance takes to apply here. On an error
// the rules in force stay as they were. Without an IPRuleLoader it does
// nothing.
func (e *Engine) ReloadIPRules(ctx context.Context) error {
	if e.ipLoader == nil {
		return nil
	}
	e.ipMu.Lock()
	defer e.ipMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, e.loadTimeout)
	defer cancel()
	now := e.now()
	rules, err := e.ipLoader.ActiveIPRules(ctx, now)
	if err != nil {
		return err
	}
	e.ipRules.Store(compileIPRules(rules, now))
	return nil
}
