package admin

import (
	"context"
	"net/netip"

	"github.com/keyward/keyward"
)

// A key's IP allow list (keyward.Key.IPAllow) and the rule that a key may
// not grant networks beyond its own.

// maxIPAllow bounds a key's allow list.
const maxIPAllow = 100

// checkIPAllow parses a key's allow list and applies the no-escalation
// rule: a non-root caller whose own key has an allow list may only give
// networks inside it (so not an empty list, which means "anywhere"). It
// returns the list sorted, nil for none.
func (s *Keys) checkIPAllow(ctx context.Context, id *keyward.Identity, list []string) ([]netip.Prefix, error) {
	if len(list) > maxIPAllow {
		return nil, keyward.Errorf(keyward.EINVALID, "ip_allow holds at most %d networks", maxIPAllow)
	}
	ps, err := keyward.ParsePrefixes(list)
	if err != nil {
		return nil, err
	}
	own, err := s.callerIPAllow(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := withinIPAllow(own, ps); err != nil {
		return nil, err
	}
	return nilIfEmpty(ps), nil
}

// callerIPAllow returns the allow list of the caller's own key: nil for
// root, for a key with no list, and for a caller that is not a stored key
// (a simple mode).
func (s *Keys) callerIPAllow(ctx context.Context, id *keyward.Identity) ([]netip.Prefix, error) {
	if isRoot(id) {
		return nil, nil
	}
	own, err := s.store.Key(ctx, id.KeyID)
	if keyward.ErrorCode(err) == keyward.ENOTFOUND {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return own.IPAllow, nil
}

// withinIPAllow refuses a key allow list ps that reaches beyond own, the
// caller's list: with a list of its own, a caller may grant only keys bound
// to networks inside it.
func withinIPAllow(own, ps []netip.Prefix) error {
	if len(own) == 0 {
		return nil
	}
	if len(ps) == 0 {
		return keyward.Errorf(keyward.EFORBIDDEN, "the calling key may be used only from its ip_allow networks: a key it grants needs an ip_allow within them")
	}
	for _, p := range ps {
		if !keyward.PrefixCovered(own, p) {
			return keyward.Errorf(keyward.EFORBIDDEN, "cannot allow %s: it is outside the calling key's ip_allow", p)
		}
	}
	return nil
}
