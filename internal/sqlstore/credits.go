package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/keyward/keyward"
)

// creditCols are the credits columns of keys and meters, in creditArgs' and
// storedCredits' order. A monthly refill has a day and no interval.
const creditCols = "credits_remaining, credits_refill_amount, credits_refill_interval, credits_refilled_at, credits_version, credits_refill_day"

// creditArgs returns the values of c for creditCols: NULLs and version 0
// for a key without credits.
func creditArgs(c *keyward.Credits) []any {
	if c == nil {
		return []any{nil, nil, nil, nil, 0, nil}
	}
	var amount, interval, day any
	switch r := c.Refill; {
	case r == nil:
	case r.Day != 0:
		amount, day = r.Amount, r.Day
	default:
		amount, interval = r.Amount, int64(r.Interval)
	}
	return []any{c.Remaining, amount, interval, FormatTime(c.RefilledAt), c.Version, day}
}

// storedCredits receives creditCols.
type storedCredits struct {
	remaining, amount, interval sql.NullInt64
	refilledAt                  storedTime
	version                     int64
	day                         sql.NullInt64
}

func (c *storedCredits) dest() []any {
	return []any{&c.remaining, &c.amount, &c.interval, &c.refilledAt, &c.version, &c.day}
}

// credits returns the credits scanned, nil if the key has none.
func (c *storedCredits) credits() (*keyward.Credits, error) {
	if !c.remaining.Valid {
		return nil, nil
	}
	out := &keyward.Credits{Remaining: c.remaining.Int64, Version: c.version}
	if c.amount.Valid {
		out.Refill = &keyward.CreditRefill{Amount: c.amount.Int64, Interval: keyward.Duration(c.interval.Int64), Day: int(c.day.Int64)}
	}
	out.RefilledAt = c.refilledAt.Time
	return out, nil
}

// SpendCredits applies the refills due at now to the key's credits and
// spends cost if that much remains, in one write transaction: spends of
// a key run one after another (its row is locked, or the writer is single),
// so they never overspend.
// Every spend or refill raises Version. It returns the credits after the
// call and whether cost was spent; a key without credits gives (nil, true).
// ENOTFOUND if the key does not exist, EINVALID if cost is below 1.
func (s *Store) SpendCredits(ctx context.Context, keyID string, cost int64, now time.Time) (*keyward.Credits, bool, error) {
	if cost < 1 {
		return nil, false, keyward.Errorf(keyward.EINVALID, "%s: spend credits of key %s: cost must be at least 1, got %d", s.name, keyID, cost)
	}
	var (
		c  *keyward.Credits
		ok bool
	)
	err := s.WriteUnaudited(ctx, func(tx *Tx) error {
		var sc storedCredits
		err := tx.QueryRowContext(ctx, s.locked(tx, "SELECT "+creditCols+" FROM keys WHERE id = ?", ""), keyID).Scan(sc.dest()...)
		if err != nil {
			return s.rowError(err, "key", keyID)
		}
		if c, err = sc.credits(); err != nil {
			return err
		}
		if c == nil {
			ok = true
			return nil
		}
		var changed bool
		if *c, ok, changed = c.SpendVersioned(cost, now); !changed {
			return nil
		}
		_, err = tx.ExecContext(ctx, `UPDATE keys SET credits_remaining = ?, credits_refilled_at = ?, credits_version = ?
			WHERE id = ?`, c.Remaining, FormatTime(c.RefilledAt), c.Version, keyID)
		return s.dbError(err, Conflicts{})
	})
	if err != nil {
		return nil, false, s.errorf("spend credits of key %s: %w", keyID, err)
	}
	return c, ok, nil
}

// WriteCredits stores credits counted elsewhere in one write transaction:
// each write replaces Remaining, RefilledAt and Version of a key (or of a
// meter, WriteMeterCredits) that has credits of an older version. Other writes are ignored. EINVALID, and
// nothing written, if a Remaining is negative.
func (s *Store) WriteCredits(ctx context.Context, writes []keyward.CreditWrite) error {
	if len(writes) == 0 {
		return nil
	}
	keys, meters := SplitCreditWrites(writes)
	err := s.WriteUnaudited(ctx, func(tx *Tx) error {
		if err := s.WriteMeterCredits(ctx, tx, meters); err != nil {
			return err
		}
		st, err := tx.PrepareContext(ctx, `UPDATE keys SET credits_remaining = ?1, credits_refilled_at = ?2, credits_version = ?3
			WHERE id = ?4 AND credits_remaining IS NOT NULL AND credits_version < ?3`)
		if err != nil {
			return s.dbError(err, Conflicts{})
		}
		defer st.Close()
		for _, w := range keys {
			if _, err := st.ExecContext(ctx, w.Remaining, FormatTime(w.RefilledAt), w.Version, w.KeyID); err != nil {
				return s.dbError(err, Conflicts{})
			}
		}
		return nil
	})
	if err != nil {
		return s.errorf("write credits of %d keys: %w", len(writes), err)
	}
	return nil
}
