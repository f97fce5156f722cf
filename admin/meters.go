package admin

import (
	"context"

	"github.com/keyward/keyward"
)

// Shared limits (docs/abuse-protection.md#shared-limits): the rate limits
// and credits a user's or an account's keys count against together. They
// follow the metering policy of limits.go: only root sets them.

var _ keyward.MeterService = (*Keys)(nil)

// meterStore is what the shared limits read besides keyStore.
type meterStore interface {
	Meter(ctx context.Context, id string) (*keyward.Meter, error)
}

// meterOf checks that the account (and, when userID is set, its user)
// exists and returns the level and id of its meter.
func (s *Keys) meterOf(ctx context.Context, accountID, userID string) (keyward.LimitLevel, string, error) {
	if userID == "" {
		if _, err := s.store.Account(ctx, accountID); err != nil {
			return "", "", err
		}
		return keyward.LevelAccount, accountID, nil
	}
	if _, err := accountUser(ctx, s.store, accountID, userID); err != nil {
		return "", "", err
	}
	return keyward.LevelUser, userID, nil
}

// Meter returns the shared limits of an account (userID "") or of one of
// its users, with live credits: to root, the account's admins, or the user
// itself.
func (s *Keys) Meter(ctx context.Context, accountID, userID string) (*keyward.Meter, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	self := userID != "" && id.Role == keyward.RoleUser && id.AccountID == accountID && id.UserID == userID
	if !self {
		if err := requireAccountManager(id, accountID, "read shared limits"); err != nil {
			return nil, err
		}
	}
	_, meterID, err := s.meterOf(ctx, accountID, userID)
	if err != nil {
		return nil, err
	}
	if err := s.ledgerConfigured(); err != nil {
		return nil, err
	}
	m, err := s.store.Meter(ctx, meterID)
	if err != nil {
		return nil, err
	}
	if m.Credits != nil {
		if m.Credits, err = s.credits.MeterCredits(ctx, meterID, s.utc()); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// SetMeter replaces the shared limits of an account (userID "") or of one
// of its users. Root only. They apply at once to every key of the user or
// account.
func (s *Keys) SetMeter(ctx context.Context, accountID, userID string, in keyward.MeterSet) (*keyward.Meter, error) {
	id, unlock, err := s.writer(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := requireRoot(id, "set shared rate limits or credits: they are how a provider meters its tenants"); err != nil {
		return nil, err
	}
	if len(in.RateLimits) == 0 && in.Credits == nil {
		return nil, keyward.Errorf(keyward.EINVALID, "set rate_limits, credits or both; to remove shared limits, delete them")
	}
	level, meterID, err := s.meterOf(ctx, accountID, userID)
	if err != nil {
		return nil, err
	}
	m := &keyward.Meter{ID: meterID, Level: level, AccountID: accountID, RateLimits: in.RateLimits, Credits: in.Credits}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if err := s.ledgerConfigured(); err != nil {
		return nil, err
	}
	ch, err := s.audit(ctx, id, string(level)+".limits_set", string(level), meterID, accountID, in)
	if err != nil {
		return nil, err
	}
	out, err := s.credits.SetMeter(ctx, ch, m, s.utc())
	if err != nil {
		return nil, err
	}
	s.accountChanged(accountID)
	s.log.InfoContext(ctx, "shared limits set", "level", level, "id", meterID, "account_id", accountID, "by", id.KeyID)
	return out, nil
}

// DeleteMeter removes the shared limits of an account (userID "") or of
// one of its users. Root only.
func (s *Keys) DeleteMeter(ctx context.Context, accountID, userID string) error {
	id, unlock, err := s.writer(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if err := requireRoot(id, "remove shared rate limits or credits"); err != nil {
		return err
	}
	level, meterID, err := s.meterOf(ctx, accountID, userID)
	if err != nil {
		return err
	}
	if err := s.ledgerConfigured(); err != nil {
		return err
	}
	m, err := s.store.Meter(ctx, meterID)
	if err != nil {
		return err
	}
	ch, err := s.audit(ctx, id, string(level)+".limits_remove", string(level), meterID, accountID, nil)
	if err != nil {
		return err
	}
	if err := s.credits.DeleteMeter(ctx, ch, m); err != nil {
		return err
	}
	s.accountChanged(accountID)
	s.log.InfoContext(ctx, "shared limits removed", "level", level, "id", meterID, "account_id", accountID, "by", id.KeyID)
	return nil
}
