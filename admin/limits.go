package admin

import (
	"context"
	"slices"

	"github.com/keyward/keyward"
)

// The metering policy. Rate limits and credits are how a provider meters its
// tenants, so only root sets them (on keys, and as an account's defaults).
// Minting or rotating keys never escapes them:
//   - a key created by a non-root key inherits its creator's own limits,
//     and one created by a user key counts against its creator's buckets
//     (Key.MeterID), so a user minting keys gets no more than it had;
//   - a rotation's replacement counts against the old key's buckets, and
//     takes over its credits (the old key keeps none);
//   - a key with credits may not create keys, since its credits could not
//     bind them.
// An account admin's keys for its users each get their own buckets: per-key
// limits bound each key, not the account as a whole; shared limits of a
// user or an account (meters.go, root only too) bind all their keys
// together.

// checkMetering refuses limits or credits from a non-root caller.
func checkMetering(id *keyward.Identity, limits []keyward.RateLimit, credits *keyward.Credits) error {
	if isRoot(id) {
		return nil
	}
	if len(limits) > 0 {
		return keyward.Errorf(keyward.EFORBIDDEN, "only a root key may set rate limits: they are how a provider meters its tenants")
	}
	if credits != nil {
		return keyward.Errorf(keyward.EFORBIDDEN, "only a root key may set credits: they are how a provider meters its tenants")
	}
	return nil
}

// inherited returns the rate limits and meter a key created by id, not
// root, must carry: the caller key's own limits, and for a user key its
// meter too. EFORBIDDEN if the caller's key has credits.
func (s *Keys) inherited(ctx context.Context, id *keyward.Identity) (limits []keyward.RateLimit, meter string, err error) {
	own, err := s.store.Key(ctx, id.KeyID)
	if err != nil {
		return nil, "", err
	}
	if own.Credits != nil {
		return nil, "", keyward.Errorf(keyward.EFORBIDDEN, "key %s has credits, which would not bind the keys it creates: ask root to create the key", id.KeyID)
	}
	if own.Role == keyward.RoleUser {
		meter = own.Meter()
	}
	return slices.Clone(own.RateLimits), meter, nil
}

// Credits returns the live credits of a key the caller may see.
func (s *Keys) Credits(ctx context.Context, keyID string) (*keyward.Credits, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.visibleKey(ctx, id, keyID); err != nil {
		return nil, err
	}
	if err := s.ledgerConfigured(); err != nil {
		return nil, err
	}
	c, err := s.credits.Credits(ctx, keyID, s.utc())
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, keyward.Errorf(keyward.ENOTFOUND, "key %s has no credits: set them first", keyID)
	}
	return c, nil
}

// SetCredits replaces a key's credits (nil removes them). Root only.
func (s *Keys) SetCredits(ctx context.Context, keyID string, c *keyward.Credits) (*keyward.Credits, error) {
	id, unlock, err := s.writer(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := requireRoot(id, "set credits"); err != nil {
		return nil, err
	}
	if c != nil {
		if err := c.Validate(); err != nil {
			return nil, err
		}
	}
	if err := s.ledgerConfigured(); err != nil {
		return nil, err
	}
	target, err := s.visibleKey(ctx, id, keyID)
	if err != nil {
		return nil, err
	}
	ch, err := s.audit(ctx, id, "key.credits_set", "key", keyID, target.AccountID, c)
	if err != nil {
		return nil, err
	}
	k, err := s.credits.SetCredits(ctx, ch, keyID, c, s.utc())
	if err != nil {
		return nil, err
	}
	s.keyChanged(k)
	s.log.InfoContext(ctx, "key credits set", "key_id", keyID, "removed", c == nil, "by", id.KeyID)
	return k.Credits, nil
}

// TopUpCredits adds n credits to a key. Root only.
func (s *Keys) TopUpCredits(ctx context.Context, keyID string, n int64) (*keyward.Credits, error) {
	id, unlock, err := s.writer(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := requireRoot(id, "top up credits"); err != nil {
		return nil, err
	}
	if n < 1 || n > keyward.MaxCredits {
		return nil, keyward.Errorf(keyward.EINVALID, "top-up amount must be between 1 and %d, got %d", int64(keyward.MaxCredits), n)
	}
	if err := s.ledgerConfigured(); err != nil {
		return nil, err
	}
	k, err := s.credits.TopUpCredits(ctx, keyID, n, s.utc())
	if err != nil {
		return nil, err
	}
	// The ledger may count outside the store (Redis): the entry is
	// appended on its own, after the top-up.
	if e, err := s.auditEntry(ctx, id, "key.credits_top_up", "key", keyID, k.AccountID, keyward.AuditSuccess, map[string]any{"amount": n, "remaining": k.Credits.Remaining}); err != nil || s.store.AppendAudit(ctx, e) != nil {
		s.log.ErrorContext(ctx, "recording a credit top-up in the audit log failed", "key_id", keyID)
	}
	s.keyChanged(k)
	s.log.InfoContext(ctx, "key credits topped up", "key_id", keyID, "amount", n, "by", id.KeyID)
	return k.Credits, nil
}

// DecrementCredits takes n credits from a key, leaving zero when fewer
// remain (as the Unkey v2 API's decrement does). Root only.
func (s *Keys) DecrementCredits(ctx context.Context, keyID string, n int64) (*keyward.Credits, error) {
	id, unlock, err := s.writer(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := requireRoot(id, "decrement credits"); err != nil {
		return nil, err
	}
	if n < 1 || n > keyward.MaxCredits {
		return nil, keyward.Errorf(keyward.EINVALID, "decrement amount must be between 1 and %d, got %d", int64(keyward.MaxCredits), n)
	}
	if err := s.ledgerConfigured(); err != nil {
		return nil, err
	}
	k, err := s.credits.DecrementCredits(ctx, keyID, n, s.utc())
	if err != nil {
		return nil, err
	}
	// As a top-up: the ledger may count outside the store, so the entry
	// is appended on its own, after the decrement.
	if e, err := s.auditEntry(ctx, id, "key.credits_decrement", "key", keyID, k.AccountID, keyward.AuditSuccess, map[string]any{"amount": n, "remaining": k.Credits.Remaining}); err != nil || s.store.AppendAudit(ctx, e) != nil {
		s.log.ErrorContext(ctx, "recording a credit decrement in the audit log failed", "key_id", keyID)
	}
	s.keyChanged(k)
	s.log.InfoContext(ctx, "key credits decremented", "key_id", keyID, "amount", n, "by", id.KeyID)
	return k.Credits, nil
}

func (s *Keys) ledgerConfigured() error {
	if s.credits == nil {
		return keyward.Errorf(keyward.EINTERNAL, "admin: no credit ledger is configured")
	}
	return nil
}
