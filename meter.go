package keyward

import (
	"context"
	"slices"
	"time"
)

// LimitLevel is a level at which rate limits and credits apply to a
// verification (docs/abuse-protection.md#shared-limits): the key's own, its
// user's (shared by all the user's keys) and its account's (shared by all
// the account's keys). A verification counts against every level that
// applies, all or nothing, and a refusal names the level that refused.
type LimitLevel string

// The levels, in the order a verification reports them.
const (
	LevelKey     LimitLevel = "key"
	LevelUser    LimitLevel = "user"
	LevelAccount LimitLevel = "account"
)

// Meter is the shared rate limits and credits of a user or an account:
// every key of the user (or of the account) counts against them, together,
// next to its own limits and credits. They are not the account's default
// limits (Account.RateLimits), which each key counts alone.
type Meter struct {
	// ID is the user's or the account's id.
	ID string `json:"id"`
	// Level is LevelUser or LevelAccount.
	Level     LimitLevel `json:"level"`
	AccountID string     `json:"account_id"`
	// RateLimits are shared by all the keys of the user or account.
	RateLimits []RateLimit `json:"rate_limits,omitempty"`
	// Credits, when set, are spent by all the keys of the user or account.
	// In a meter read with a key from the cache it is a snapshot: the
	// ledger holds the live count.
	Credits   *Credits  `json:"credits,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Validate returns EINVALID unless the level is user or account, the ids
// are set, and the rate limits and credits validate.
func (m *Meter) Validate() error {
	if m.Level != LevelUser && m.Level != LevelAccount {
		return Errorf(EINVALID, "shared limits belong to a user or an account, not %q", m.Level)
	}
	if m.ID == "" || m.AccountID == "" || m.Level == LevelAccount && m.ID != m.AccountID {
		return Errorf(EINVALID, "shared limits of a %s need its id and its account's", m.Level)
	}
	if err := ValidateRateLimits(m.RateLimits); err != nil {
		return err
	}
	if m.Credits != nil {
		return m.Credits.Validate()
	}
	return nil
}

// Empty reports whether m sets neither rate limits nor credits.
func (m *Meter) Empty() bool { return len(m.RateLimits) == 0 && m.Credits == nil }

// Clone returns a deep copy of m; nil for nil.
func (m *Meter) Clone() *Meter {
	if m == nil {
		return nil
	}
	c := *m
	c.RateLimits = slices.Clone(m.RateLimits)
	c.Credits = m.Credits.clone()
	return &c
}

// clone returns a deep copy of c; nil for nil.
func (c *Credits) clone() *Credits {
	if c == nil {
		return nil
	}
	cr := *c
	if cr.Refill != nil {
		rf := *cr.Refill
		cr.Refill = &rf
	}
	return &cr
}

// LevelRef names the holder of credits at a level: a key (its id), a user
// or an account (the meter's id).
type LevelRef struct {
	Level LimitLevel
	ID    string
}

// CreditLevels returns the holders of credits a verification of k spends
// from, key first: k itself if it has credits, then its user's and its
// account's meters that have credits.
func (k *Key) CreditLevels() []LevelRef {
	var refs []LevelRef
	if k.Credits != nil {
		refs = append(refs, LevelRef{Level: LevelKey, ID: k.ID})
	}
	for _, m := range [...]*Meter{k.UserMeter, k.AccountMeter} {
		if m != nil && m.Credits != nil {
			refs = append(refs, LevelRef{Level: m.Level, ID: m.ID})
		}
	}
	return refs
}

// MeterSet is the body that sets a user's or an account's shared limits:
// it replaces both the rate limits and the credits (whose refill period
// starts anew). At least one must be set; removing both is a delete.
type MeterSet struct {
	RateLimits []RateLimit `json:"rate_limits,omitempty"`
	// Credits: Remaining and Refill are used; RefilledAt is set by keyward.
	Credits *Credits `json:"credits,omitempty"`
}

// MeterService reads and sets the shared rate limits and credits of
// accounts and users (docs/abuse-protection.md#shared-limits) for a caller
// (the identity in ctx). userID "" names the account's own. Only root sets
// or removes them (they are how a provider meters its tenants); root and
// the account's admins read them, a user its own, with live credits.
// Implemented by admin.Keys and client.Client.
type MeterService interface {
	// Meter returns the shared limits; ENOTFOUND if there are none.
	Meter(ctx context.Context, accountID, userID string) (*Meter, error)
	// SetMeter replaces the shared limits and returns them as stored.
	SetMeter(ctx context.Context, accountID, userID string, m MeterSet) (*Meter, error)
	// DeleteMeter removes the shared limits; ENOTFOUND if there are none.
	DeleteMeter(ctx context.Context, accountID, userID string) error
}
