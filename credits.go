package keyward

import (
	"context"
	"time"
)

// Credits is a key's quota (docs/architecture.md, verification step 7): each verification
// spends its cost from Remaining, and a key with too few remaining answers
// USAGE_EXCEEDED. Remaining never goes below zero. With a Refill, Remaining
// is raised back to Refill.Amount (never lowered: credits topped up beyond it
// are kept) once per Refill.Interval, counted from RefilledAt, or, for a
// monthly refill, at the start of every Refill.Day.
type Credits struct {
	Remaining int64         `json:"remaining"`
	Refill    *CreditRefill `json:"refill,omitempty"`
	// RefilledAt is when the current refill period began: when the
	// credits were set, or the last refill.
	RefilledAt time.Time `json:"refilled_at"`
	// Version orders the writes of a counter kept outside the store
	// (Redis): a store ignores a write-back older than what it holds.
	Version int64 `json:"-"`
}

// CreditRefill raises a key's credits to Amount every Interval, or, with
// Day set instead, every month at midnight UTC starting that day of the
// month (the month's last day when it has fewer days).
type CreditRefill struct {
	Amount   int64    `json:"amount"`
	Interval Duration `json:"interval,omitempty"`
	// Day is the day of the month, 1 to 31, of a monthly refill; 0 for a
	// refill every Interval.
	Day int `json:"day,omitempty"`
}

// PeriodStart returns when the monthly refill period holding t began:
// midnight UTC of the latest refill day (Day, or the month's last day when
// the month is shorter) at or before t. r must have a Day.
func (r *CreditRefill) PeriodStart(t time.Time) time.Time {
	t = t.UTC()
	y, m, _ := t.Date()
	start := refillDay(y, m, r.Day)
	if start.After(t) {
		start = refillDay(y, m-1, r.Day)
	}
	return start
}

// refillDay returns midnight UTC of day of month m of year y, or of the
// month's last day when it has fewer days (m may be 0: December of y-1).
func refillDay(y int, m time.Month, day int) time.Time {
	last := time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
	return time.Date(y, m, min(day, last), 0, 0, 0, 0, time.UTC)
}

// Bounds of Credits, checked by Validate.
const (
	MaxCredits          = 1 << 53 // exact in JSON numbers and Lua doubles
	MinRefillInterval   = time.Second
	MaxRefillInterval   = 366 * 24 * time.Hour
	MaxVerificationCost = 1 << 20
	MaxRefillDay        = 31
)

// Validate returns EINVALID, naming the field, unless Remaining is between 0
// and MaxCredits and a Refill has an Amount of 1 to MaxCredits and either an
// Interval between a second and 366 days or a Day of 1 to 31.
func (c *Credits) Validate() error {
	if c.Remaining < 0 || c.Remaining > MaxCredits {
		return Errorf(EINVALID, "credits remaining must be between 0 and %d, got %d", int64(MaxCredits), c.Remaining)
	}
	if r := c.Refill; r != nil {
		if r.Amount < 1 || r.Amount > MaxCredits {
			return Errorf(EINVALID, "credit refill amount must be between 1 and %d, got %d", int64(MaxCredits), r.Amount)
		}
		switch iv := time.Duration(r.Interval); {
		case r.Day != 0 && iv != 0:
			return Errorf(EINVALID, "credit refill: give an interval or a day of the month (a monthly refill), not both")
		case r.Day != 0:
			if r.Day < 1 || r.Day > MaxRefillDay {
				return Errorf(EINVALID, "credit refill day must be a day of the month, 1 to %d (the month's last day when it has fewer), got %d", MaxRefillDay, r.Day)
			}
		case iv < MinRefillInterval || iv > MaxRefillInterval:
			return Errorf(EINVALID, "credit refill interval must be between %v and %v, got %v", MinRefillInterval, MaxRefillInterval, iv)
		}
	}
	return nil
}

// At returns the credits as they stand at now, with every refill due by then
// applied: Remaining raised to Refill.Amount and RefilledAt advanced by whole
// intervals, or, for a monthly refill, to the start of the period holding
// now. A clock that went backwards refills nothing.
func (c Credits) At(now time.Time) Credits {
	if c.Refill == nil {
		return c
	}
	if c.Refill.Day != 0 {
		if start := c.Refill.PeriodStart(now); start.After(c.RefilledAt) {
			c.RefilledAt = start
			c.Remaining = max(c.Remaining, c.Refill.Amount)
		}
		return c
	}
	iv := time.Duration(c.Refill.Interval)
	elapsed := now.Sub(c.RefilledAt)
	if iv <= 0 || elapsed < iv {
		return c
	}
	c.RefilledAt = c.RefilledAt.Add(elapsed / iv * iv)
	c.Remaining = max(c.Remaining, c.Refill.Amount)
	return c
}

// Spend returns the credits at now after spending cost, and whether enough
// remained; when not, nothing is spent (but due refills are applied).
func (c Credits) Spend(cost int64, now time.Time) (Credits, bool) {
	c = c.At(now)
	if cost > c.Remaining {
		return c, false
	}
	c.Remaining -= cost
	return c, true
}

// SpendVersioned is Spend for a store that keeps the credits: it also
// reports whether they changed (spent or refilled), and raises Version when
// they did, so a store writes only what changed.
func (c Credits) SpendVersioned(cost int64, now time.Time) (next Credits, ok, changed bool) {
	next, ok = c.Spend(cost, now)
	if !ok && next.RefilledAt.Equal(c.RefilledAt) {
		return next, false, false // neither spent nor refilled
	}
	next.Version++
	return next, ok, true
}

// CreditService reads and changes the credits of keys for a caller (the
// identity in ctx): anyone who may see a key reads its live credits; only
// root sets or tops them up. Implemented by admin.Keys and client.Client.
type CreditService interface {
	// Credits returns the key's live credits; ENOTFOUND if it has none.
	Credits(ctx context.Context, keyID string) (*Credits, error)
	// SetCredits replaces the key's credits (nil removes them) and
	// returns them as now stored.
	SetCredits(ctx context.Context, keyID string, c *Credits) (*Credits, error)
	// TopUpCredits adds n credits and returns the live credits.
	TopUpCredits(ctx context.Context, keyID string, n int64) (*Credits, error)
}

// CreditLedger holds the live credit counts of keys: the store itself
// (every spend an atomic update), or a counter in Redis written back to the
// store. Verifications spend through it, and the admin API sets, tops up and
// reads credits through it, so the counter that decides is the one changed.
// Implemented by package credits.
type CreditLedger interface {
	// Spend applies the refills due at now to k's credits and spends cost
	// if that much remains, atomically across every instance sharing the
	// ledger. It returns what remains after the call and whether cost
	// was spent. k is the key as the caller knows it (possibly a cached
	// snapshot): its id and refill settings are used, never its
	// Remaining. A key without credits spends nothing: (0, true, nil).
	// EUNAVAILABLE if the ledger cannot decide; nothing is then spent.
	Spend(ctx context.Context, k *Key, cost int64, now time.Time) (remaining int64, ok bool, err error)
	// Credits returns the live credits of the key at now, nil if it has
	// none. ENOTFOUND if the key does not exist.
	Credits(ctx context.Context, keyID string, now time.Time) (*Credits, error)
	// SetCredits replaces the key's credits (nil removes them; RefilledAt
	// is set to now), recording ch with the stored change, and returns the
	// key as stored.
	SetCredits(ctx context.Context, ch Change, keyID string, c *Credits, now time.Time) (*Key, error)
	// TopUpCredits adds n (>= 1) to what remains after due refills and
	// returns the key as stored, its Credits live. EINVALID if the key has
	// no credits (set them first) or the sum exceeds MaxCredits.
	TopUpCredits(ctx context.Context, keyID string, n int64, now time.Time) (*Key, error)
	// DecrementCredits takes n (>= 1) from what remains after due
	// refills, leaving zero when fewer than n remain, and returns the key
	// as stored, its Credits live. EINVALID if the key has no credits.
	DecrementCredits(ctx context.Context, keyID string, n int64, now time.Time) (*Key, error)

	// SpendLevels spends cost from the credits of every level of k that
	// has credits (k.CreditLevels: its own, its user's and its account's,
	// docs/abuse-protection.md#shared-limits), all or nothing, atomically
	// across every instance sharing the ledger: when one level has too
	// few, nothing is spent from any. k is the key as the caller knows it
	// (possibly a cached snapshot): which levels have credits and their
	// refill settings come from it, never their Remaining. A k without
	// credits at any level spends nothing. EUNAVAILABLE if the ledger
	// cannot decide; nothing is then spent.
	SpendLevels(ctx context.Context, k *Key, cost int64, now time.Time) (LevelSpend, error)
	// MeterCredits returns the live shared credits of the user or account
	// with id at now, nil if it has none. ENOTFOUND if it has no meter.
	MeterCredits(ctx context.Context, id string, now time.Time) (*Credits, error)
	// SetMeter stores m, the shared limits and credits of a user or an
	// account (its credits starting a refill period at now, with a
	// version above any before), recording ch with it, and returns it as
	// stored.
	SetMeter(ctx context.Context, ch Change, m *Meter, now time.Time) (*Meter, error)
	// DeleteMeter removes the shared limits and credits of the user or
	// account with id, recording ch. ENOTFOUND if it has none.
	DeleteMeter(ctx context.Context, ch Change, m *Meter) error
}

// LevelSpend is the outcome of CreditLedger.SpendLevels.
type LevelSpend struct {
	// Remaining holds what remains at each level with credits, in the
	// order of Key.CreditLevels, after the call.
	Remaining []LevelCredits
	// Refused is the first level with too few credits; empty when cost
	// was spent from every level.
	Refused LimitLevel
}

// LevelCredits is what remains of the credits at one level.
type LevelCredits struct {
	Level     LimitLevel
	Remaining int64
}

// Least returns the smallest Remaining of s, what the key can still spend,
// and whether any level has credits.
func (s LevelSpend) Least() (int64, bool) {
	if len(s.Remaining) == 0 {
		return 0, false
	}
	least := s.Remaining[0].Remaining
	for _, lc := range s.Remaining[1:] {
		least = min(least, lc.Remaining)
	}
	return least, true
}
