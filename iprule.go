package keyward

import (
	"context"
	"net/netip"
	"strings"
	"time"
)

// IPAction is what an IP rule does to the networks it names.
type IPAction string

// The two actions of an IP rule.
const (
	// IPBlock refuses requests from the rule's network (IP_BLOCKED).
	IPBlock IPAction = "block"
	// IPAllow restricts keys to the networks of the allow rules of their
	// scope (IP_NOT_ALLOWED from anywhere else).
	IPAllow IPAction = "allow"
)

// Valid reports whether a is block or allow.
func (a IPAction) Valid() bool { return a == IPBlock || a == IPAllow }

// IPRule blocks or allows a network (docs/architecture.md, verification steps 2 and 6).
//
// A global rule (AccountID "") applies to every request before any key
// lookup: a global block answers IP_BLOCKED, and when global allow rules
// exist, a request from outside all of them answers IP_NOT_ALLOWED. An
// account rule applies to that account's keys once the key is found: a
// block answers IP_BLOCKED, and when the account has allow rules, its keys
// verify only from their networks (IP_NOT_ALLOWED). Blocks win over allows.
// An expired rule no longer applies.
//
// An Automatic rule is a global block made by brute-force blocking: it
// refuses every request from its network except one whose key verifies
// VALID (a guessed key is refused, a real one is not locked out by others
// guessing from its address). A rule made by hand blocks everything.
type IPRule struct {
	ID string `json:"id"`
	// AccountID scopes the rule to one account's keys; "" is global.
	AccountID string   `json:"account_id,omitempty"`
	Action    IPAction `json:"action"`
	// CIDR is the network, masked (10.1.2.3/8 is stored as 10.0.0.0/8). A
	// bare address is a /32 (IPv4) or /128 (IPv6).
	CIDR   netip.Prefix `json:"cidr"`
	Reason string       `json:"reason,omitempty"`
	// ExpiresAt, when set, is when the rule stops applying.
	ExpiresAt *time.Time `json:"expires_at"`
	CreatedAt time.Time  `json:"created_at"`
	// CreatedBy is the id of the key that created the rule.
	CreatedBy string `json:"created_by,omitempty"`
	// Automatic marks a block made by abuse detection, not by hand.
	Automatic bool `json:"automatic,omitempty"`
}

// Active reports whether r applies at now.
func (r *IPRule) Active(now time.Time) bool { return r.ExpiresAt == nil || now.Before(*r.ExpiresAt) }

// IPRuleFilter narrows an IP rule list. The zero value lists every rule.
type IPRuleFilter struct {
	// AccountID lists only that account's rules.
	AccountID string
	// Global lists only global rules. It cannot be combined with
	// AccountID.
	Global bool
}

// IPRuleCreate is the input of IPRuleService.CreateIPRule. CIDR is a
// network ("10.0.0.0/8", "2001:db8::/32") or a bare address.
type IPRuleCreate struct {
	AccountID string     `json:"account_id,omitempty"`
	Action    IPAction   `json:"action"`
	CIDR      string     `json:"cidr"`
	Reason    string     `json:"reason,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Automatic makes a global block an automatic one (see IPRule). Only
	// keyward's abuse detection sets it, in process: it is not part of
	// the API.
	Automatic bool `json:"-"`
}

// IPRuleList is one page of IP rules.
type IPRuleList struct {
	Items []*IPRule `json:"items"`
	Next  string    `json:"next,omitempty"`
}

// IPRuleService manages IP rules. Root manages global rules and those of
// every account; an account admin only its own account's; a user none
// (EFORBIDDEN). Implemented by admin.Abuse and client.Client.
type IPRuleService interface {
	CreateIPRule(ctx context.Context, c IPRuleCreate) (*IPRule, error)
	IPRules(ctx context.Context, f IPRuleFilter, p Page) (*IPRuleList, error)
	DeleteIPRule(ctx context.Context, id string) error
}

// ParsePrefix reads a network for an IP rule or an allow list: CIDR
// notation ("10.0.0.0/8", "2001:db8::/32") or a bare address (a /32 or
// /128). The result is masked (host bits cleared). IPv4-mapped IPv6 forms
// and zones are refused: write the IPv4 form. The error is EINVALID and
// names the value.
func ParsePrefix(s string) (netip.Prefix, error) {
	bad := func(why string) (netip.Prefix, error) {
		return netip.Prefix{}, Errorf(EINVALID, "invalid CIDR %q: %s", truncate(s, 64), why)
	}
	if s == "" {
		return bad("use a network such as 10.0.0.0/8 or 2001:db8::/32, or a single address")
	}
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return bad("use a network such as 10.0.0.0/8 or 2001:db8::/32, or a single address")
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return bad("use a network such as 10.0.0.0/8 or 2001:db8::/32, or a single address")
		}
		if a.Zone() != "" {
			return bad("an address with a zone cannot be matched")
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr().Is4In6() {
		return bad("write the IPv4 form of an IPv4-mapped address")
	}
	return p.Masked(), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// ParsePrefixes reads a list with ParsePrefix and returns it sorted
// without duplicates, never nil.
func ParsePrefixes(ss []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		p, err := ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return SortPrefixes(out), nil
}

// SortPrefixes sorts ps in place by address then length, removes
// duplicates and returns the result.
func SortPrefixes(ps []netip.Prefix) []netip.Prefix {
	for i := 1; i < len(ps); i++ { // insertion sort: lists are short
		for j := i; j > 0 && comparePrefix(ps[j], ps[j-1]) < 0; j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
	out := ps[:0]
	for i, p := range ps {
		if i == 0 || p != ps[i-1] {
			out = append(out, p)
		}
	}
	return out
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// PrefixesContain reports whether addr lies in one of ps. An invalid
// (unknown) address lies in none; a zone (fe80::1%eth0) is ignored, as the
// engine's rule matcher ignores it.
func PrefixesContain(ps []netip.Prefix, addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}
	addr = addr.Unmap().WithZone("")
	for _, p := range ps {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// PrefixCovered reports whether network p lies wholly inside one of ps.
func PrefixCovered(ps []netip.Prefix, p netip.Prefix) bool {
	for _, q := range ps {
		if q.Bits() <= p.Bits() && q.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// Validate checks what every store requires of a rule: an id, a valid
// action and a valid, masked CIDR. It returns EINVALID.
func (r *IPRule) Validate() error {
	switch {
	case r.ID == "":
		return Errorf(EINVALID, "ip rule id is required")
	case !r.Action.Valid():
		return Errorf(EINVALID, "action %q is not one of block, allow", r.Action)
	case !r.CIDR.IsValid() || r.CIDR.Addr().Is4In6() || r.CIDR.Addr().Zone() != "":
		return Errorf(EINVALID, "invalid CIDR %q", r.CIDR.String())
	case r.CIDR != r.CIDR.Masked():
		return Errorf(EINVALID, "CIDR %s has host bits set: use %s", r.CIDR, r.CIDR.Masked())
	case r.Automatic && (r.AccountID != "" || r.Action != IPBlock):
		return Errorf(EINVALID, "only a global block can be automatic")
	}
	return nil
}
