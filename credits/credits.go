// Package credits implements keyward.CreditLedger, the live credit counts
// of keys (docs/architecture.md, verification step 7). StoreLedger keeps them in the store
// itself, each spend one atomic update: simple, and right for one instance
// or a modest verification rate. Package redisledger keeps them in Redis,
// written back to the store, for many instances and high rates.
package credits

import (
	"context"
	"fmt"
	"time"

	"github.com/keyward/keyward"
)

// StoreLedger is the keyward.CreditLedger on the store alone: every spend
// is Store.SpendCredits, atomic in the database, so any number of instances
// sharing the store never spend more than a key has. Safe for concurrent
// use; it holds no state but the store.
type StoreLedger struct {
	store keyward.Store
}

var _ keyward.CreditLedger = (*StoreLedger)(nil)

// NewStoreLedger returns a StoreLedger on store, which it does not close.
func NewStoreLedger(store keyward.Store) *StoreLedger {
	return &StoreLedger{store: store}
}

// Spend implements keyward.CreditLedger. The store's credits decide, not
// k's; a k without credits spends nothing and reaches no store.
func (l *StoreLedger) Spend(ctx context.Context, k *keyward.Key, cost int64, now time.Time) (int64, bool, error) {
	if k.Credits == nil {
		return 0, true, nil
	}
	if err := CheckCost(cost); err != nil {
		return 0, false, err
	}
	c, ok, err := l.store.SpendCredits(ctx, k.ID, cost, now)
	if err != nil {
		return 0, false, fmt.Errorf("credits: spend %d of key %s: %w", cost, k.ID, err)
	}
	if c == nil {
		return 0, true, nil
	}
	return c.Remaining, ok, nil
}

// Credits implements keyward.CreditLedger.
func (l *StoreLedger) Credits(ctx context.Context, keyID string, now time.Time) (*keyward.Credits, error) {
	k, err := l.store.Key(ctx, keyID)
	if err != nil {
		return nil, fmt.Errorf("credits: credits of key %s: %w", keyID, err)
	}
	if k.Credits == nil {
		return nil, nil
	}
	c := k.Credits.At(now)
	return &c, nil
}

// SetCredits implements keyward.CreditLedger. EINVALID if c does not
// validate.
func (l *StoreLedger) SetCredits(ctx context.Context, ch keyward.Change, keyID string, c *keyward.Credits, now time.Time) (*keyward.Key, error) {
	if c != nil {
		if err := c.Validate(); err != nil {
			return nil, err
		}
	}
	k, err := l.store.UpdateKey(ctx, ch, keyID, func(k *keyward.Key) error {
		if c == nil {
			k.Credits = nil
			return nil
		}
		var prev int64
		if k.Credits != nil {
			prev = k.Credits.Version
		}
		k.Credits = Fresh(c, now, NextVersion(prev, now))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("credits: set credits of key %s: %w", keyID, err)
	}
	return k, nil
}

// TopUpCredits implements keyward.CreditLedger.
func (l *StoreLedger) TopUpCredits(ctx context.Context, keyID string, n int64, now time.Time) (*keyward.Key, error) {
	k, err := l.store.UpdateKey(ctx, keyward.Change{}, keyID, func(k *keyward.Key) error {
		var c *keyward.Credits
		if k.Credits != nil {
			at := k.Credits.At(now)
			c = &at
		}
		if err := CheckTopUp(keyID, c, n); err != nil {
			return err
		}
		c.Remaining += n
		c.Version++
		k.Credits = c
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("credits: top up key %s: %w", keyID, err)
	}
	return k, nil
}

// DecrementCredits implements keyward.CreditLedger.
func (l *StoreLedger) DecrementCredits(ctx context.Context, keyID string, n int64, now time.Time) (*keyward.Key, error) {
	k, err := l.store.UpdateKey(ctx, keyward.Change{}, keyID, func(k *keyward.Key) error {
		var c *keyward.Credits
		if k.Credits != nil {
			at := k.Credits.At(now)
			c = &at
		}
		if err := CheckDecrement(keyID, c, n); err != nil {
			return err
		}
		c.Remaining -= min(n, c.Remaining)
		c.Version++
		k.Credits = c
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("credits: decrement key %s: %w", keyID, err)
	}
	return k, nil
}

// RefillCredits stores the refills due at now in the key's credits, so
// that reads of the store (key lists) show them; spends apply them anyway.
// It writes with the next version of the credits it read (WriteCredits),
// so a spend that commits first (and refills itself) wins and nothing is
// refilled twice. It reports whether a refill was due.
func (l *StoreLedger) RefillCredits(ctx context.Context, keyID string, now time.Time) (bool, error) {
	k, err := l.store.Key(ctx, keyID)
	if err != nil {
		return false, fmt.Errorf("credits: refill key %s: %w", keyID, err)
	}
	if k.Credits == nil {
		return false, nil
	}
	c := k.Credits.At(now)
	if c.RefilledAt.Equal(k.Credits.RefilledAt) {
		return false, nil
	}
	w := keyward.CreditWrite{KeyID: keyID, Remaining: c.Remaining, RefilledAt: c.RefilledAt, Version: k.Credits.Version + 1}
	if err := l.store.WriteCredits(ctx, []keyward.CreditWrite{w}); err != nil {
		return false, fmt.Errorf("credits: refill key %s: %w", keyID, err)
	}
	return true, nil
}

// Fresh returns a copy of c as SetCredits stores it at now: Remaining and
// Refill from c, the refill period starting at now, and version.
func Fresh(c *keyward.Credits, now time.Time, version int64) *keyward.Credits {
	out := &keyward.Credits{
		Remaining:  c.Remaining,
		RefilledAt: now.UTC().Truncate(time.Microsecond),
		Version:    version,
	}
	if c.Refill != nil {
		r := *c.Refill
		out.Refill = &r
	}
	return out
}

// NextVersion returns the version of credits set at now that replace
// credits of version prev: above prev, and above now in Unix microseconds.
// The latter makes a key's versions rise across a removal and a new set
// (the store forgets the version with the credits), so a late write-back
// of the old counter can never overwrite the new one.
func NextVersion(prev int64, now time.Time) int64 {
	return max(prev, now.UnixMicro()) + 1
}

// CheckCost returns EINVALID unless cost is between 1 and
// keyward.MaxVerificationCost: what a ledger may spend in one call.
func CheckCost(cost int64) error {
	if cost < 1 || cost > keyward.MaxVerificationCost {
		return keyward.Errorf(keyward.EINVALID, "credit cost must be between 1 and %d, got %d", int64(keyward.MaxVerificationCost), cost)
	}
	return nil
}

// CheckTopUp returns EINVALID unless n credits may be added to c, the
// credits of key keyID after due refills: n must be at least 1, c not nil
// (a key without credits gets them set, not topped up), and the sum at
// most keyward.MaxCredits.
func CheckTopUp(keyID string, c *keyward.Credits, n int64) error {
	switch {
	case n < 1:
		return keyward.Errorf(keyward.EINVALID, "credit top-up must be at least 1, got %d", n)
	case c == nil:
		return keyward.Errorf(keyward.EINVALID, "key %s has no credits to top up: set its credits first", keyID)
	case n > keyward.MaxCredits-c.Remaining:
		return keyward.Errorf(keyward.EINVALID, "key %s has %d credits: topping up %d would exceed the maximum of %d", keyID, c.Remaining, n, int64(keyward.MaxCredits))
	}
	return nil
}

// CheckDecrement returns EINVALID unless n credits may be taken from c,
// the credits of key keyID after due refills: n must be between 1 and
// keyward.MaxCredits and c not nil. Taking more than remains leaves zero.
func CheckDecrement(keyID string, c *keyward.Credits, n int64) error {
	switch {
	case n < 1 || n > keyward.MaxCredits:
		return keyward.Errorf(keyward.EINVALID, "credit decrement must be between 1 and %d, got %d", int64(keyward.MaxCredits), n)
	case c == nil:
		return keyward.Errorf(keyward.EINVALID, "key %s has no credits to decrement: set its credits first", keyID)
	}
	return nil
}

// SpendLevels implements keyward.CreditLedger: one Store.SpendLevelCredits,
// so every level is spent in one transaction.
func (l *StoreLedger) SpendLevels(ctx context.Context, k *keyward.Key, cost int64, now time.Time) (keyward.LevelSpend, error) {
	refs := k.CreditLevels()
	if len(refs) == 0 {
		return keyward.LevelSpend{}, nil
	}
	if err := CheckCost(cost); err != nil {
		return keyward.LevelSpend{}, err
	}
	cs, refused, err := l.store.SpendLevelCredits(ctx, refs, cost, now)
	if err != nil {
		return keyward.LevelSpend{}, fmt.Errorf("credits: spend %d of key %s and its user and account: %w", cost, k.ID, err)
	}
	return LevelOutcome(refs, cs, refused), nil
}

// LevelOutcome returns the LevelSpend of a spend from refs that left cs (nil
// for a holder without credits) and was refused by refs[refused] (-1: spent).
func LevelOutcome(refs []keyward.LevelRef, cs []*keyward.Credits, refused int) keyward.LevelSpend {
	var out keyward.LevelSpend
	for i, c := range cs {
		if c != nil {
			out.Remaining = append(out.Remaining, keyward.LevelCredits{Level: refs[i].Level, Remaining: c.Remaining})
		}
	}
	if refused >= 0 {
		out.Refused = refs[refused].Level
	}
	return out
}

// MeterCredits implements keyward.CreditLedger.
func (l *StoreLedger) MeterCredits(ctx context.Context, id string, now time.Time) (*keyward.Credits, error) {
	m, err := l.store.Meter(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("credits: shared credits of %s: %w", id, err)
	}
	if m.Credits == nil {
		return nil, nil
	}
	c := m.Credits.At(now)
	return &c, nil
}

// SetMeter implements keyward.CreditLedger. EINVALID if m does not
// validate.
func (l *StoreLedger) SetMeter(ctx context.Context, ch keyward.Change, m *keyward.Meter, now time.Time) (*keyward.Meter, error) {
	out, err := PrepareMeter(ctx, l.store, m, now)
	if err != nil {
		return nil, err
	}
	if err := l.store.SetMeter(ctx, ch, out); err != nil {
		return nil, fmt.Errorf("credits: set shared limits of %s: %w", m.ID, err)
	}
	return out, nil
}

// PrepareMeter returns a copy of m as a ledger stores it at now: validated,
// updated at now, its credits (if any) Fresh with a version above those
// of the meter stored before.
func PrepareMeter(ctx context.Context, store keyward.Store, m *keyward.Meter, now time.Time) (*keyward.Meter, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	out := m.Clone()
	out.UpdatedAt = now.UTC().Truncate(time.Microsecond)
	if m.Credits == nil {
		return out, nil
	}
	var prev int64
	old, err := store.Meter(ctx, m.ID)
	switch {
	case err == nil && old.Credits != nil:
		prev = old.Credits.Version
	case err != nil && keyward.ErrorCode(err) != keyward.ENOTFOUND:
		return nil, fmt.Errorf("credits: set shared limits of %s: %w", m.ID, err)
	}
	out.Credits = Fresh(m.Credits, now, NextVersion(prev, now))
	return out, nil
}

// DeleteMeter implements keyward.CreditLedger.
func (l *StoreLedger) DeleteMeter(ctx context.Context, ch keyward.Change, m *keyward.Meter) error {
	if err := l.store.DeleteMeter(ctx, ch, m.ID); err != nil {
		return fmt.Errorf("credits: remove shared limits of %s: %w", m.ID, err)
	}
	return nil
}
