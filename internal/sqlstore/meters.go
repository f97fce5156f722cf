package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/keyward/keyward"
)

// Shared limits: the meters table holds the rate limits and credits a
// user's or an account's keys count against together
// (docs/abuse-protection.md#shared-limits). Key reads mirror the meters of
// the key's user and account (selectKey), as they mirror its account.

// selectMeter reads a meter; it is completed by a WHERE clause.
const selectMeter = "SELECT id, level, account_id, rate_limits, " + creditCols + ", updated_at FROM meters"

// mirroredMeter receives the columns of a meter that selectKey mirrors
// (um.* for the user's, am.* for the account's).
type mirroredMeter struct {
	id         sql.NullString
	rateLimits string
	credits    storedCredits
}

func (m *mirroredMeter) dest() []any {
	return append([]any{&m.id, &m.rateLimits}, m.credits.dest()...)
}

// meter returns the meter scanned at level, nil if there is none.
func (m *mirroredMeter) meter(level keyward.LimitLevel, accountID string) (*keyward.Meter, error) {
	if !m.id.Valid {
		return nil, nil
	}
	out := &keyward.Meter{ID: m.id.String, Level: level, AccountID: accountID}
	var err error
	if out.RateLimits, err = decodeList[keyward.RateLimit](m.rateLimits); err != nil {
		return nil, fmt.Errorf("meter %s: stored rate_limits: %w", out.ID, err)
	}
	if out.Credits, err = m.credits.credits(); err != nil {
		return nil, fmt.Errorf("meter %s: %w", out.ID, err)
	}
	return out, nil
}

func scanMeter(row scanner) (*keyward.Meter, error) {
	var (
		m          keyward.Meter
		level      string
		rateLimits string
		credits    storedCredits
		updated    storedTime
	)
	dest := append([]any{&m.ID, &level, &m.AccountID, &rateLimits}, credits.dest()...)
	if err := row.Scan(append(dest, &updated)...); err != nil {
		return nil, err
	}
	m.Level, m.UpdatedAt = keyward.LimitLevel(level), updated.Time
	var err error
	if m.RateLimits, err = decodeList[keyward.RateLimit](rateLimits); err != nil {
		return nil, fmt.Errorf("meter %s: stored rate_limits: %w", m.ID, err)
	}
	if m.Credits, err = credits.credits(); err != nil {
		return nil, fmt.Errorf("meter %s: %w", m.ID, err)
	}
	return &m, nil
}

// Meter returns the shared limits of the user or account with id.
// ENOTFOUND if it has none.
func (s *Store) Meter(ctx context.Context, id string) (*keyward.Meter, error) {
	m, err := scanMeter(s.r.QueryRowContext(ctx, selectMeter+" WHERE id = ?", id))
	if err != nil {
		return nil, s.errorf("shared limits of %s: %w", id, s.meterError(err, id))
	}
	return m, nil
}

// meterError maps a failed read of the meter of id.
func (s *Store) meterError(err error, id string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return keyward.Errorf(keyward.ENOTFOUND, "%s has no shared limits or credits", id)
	}
	return s.dbError(err, Conflicts{})
}

// SetMeter stores m, replacing the meter of its user or account.
func (s *Store) SetMeter(ctx context.Context, ch keyward.Change, m *keyward.Meter) error {
	if err := m.Validate(); err != nil {
		return s.errorf("set shared limits of %s: %w", m.ID, err)
	}
	err := s.write(ctx, ch, func(tx *Tx) error {
		if err := s.checkMeterOwner(ctx, tx, m); err != nil {
			return err
		}
		var userID any
		if m.Level == keyward.LevelUser {
			userID = m.ID
		}
		args := append([]any{m.ID, string(m.Level), m.AccountID, userID, encodeList(m.RateLimits)}, creditArgs(m.Credits)...)
		args = append(args, FormatTime(m.UpdatedAt))
		if _, err := tx.ExecContext(ctx, "DELETE FROM meters WHERE id = ?", m.ID); err != nil {
			return s.dbError(err, Conflicts{})
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO meters (id, level, account_id, user_id, rate_limits, `+creditCols+`, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
		return s.dbError(err, Conflicts{FK: fmt.Sprintf("%s %s not found", m.Level, m.ID)})
	})
	if err != nil {
		return s.errorf("set shared limits of %s: %w", m.ID, err)
	}
	return nil
}

// checkMeterOwner returns ENOTFOUND unless m's user (in m's account) or
// account exists.
func (s *Store) checkMeterOwner(ctx context.Context, tx *Tx, m *keyward.Meter) error {
	if m.Level == keyward.LevelAccount {
		_, err := s.account(ctx, tx, m.ID)
		return err
	}
	var accountID string
	err := tx.QueryRowContext(ctx, "SELECT account_id FROM users WHERE id = ?", m.ID).Scan(&accountID)
	if errors.Is(err, sql.ErrNoRows) || err == nil && accountID != m.AccountID {
		return keyward.Errorf(keyward.ENOTFOUND, "user %s not found in account %s", m.ID, m.AccountID)
	}
	return s.dbError(err, Conflicts{})
}

// DeleteMeter removes the meter of the user or account with id.
// ENOTFOUND if it has none.
func (s *Store) DeleteMeter(ctx context.Context, ch keyward.Change, id string) error {
	err := s.write(ctx, ch, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM meters WHERE id = ?", id)
		if err != nil {
			return s.dbError(err, Conflicts{})
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return s.meterError(sql.ErrNoRows, id)
		}
		return nil
	})
	if err != nil {
		return s.errorf("remove shared limits of %s: %w", id, err)
	}
	return nil
}

// creditTable returns the table holding the credits of holders at level.
func creditTable(level keyward.LimitLevel) string {
	if level == keyward.LevelUser || level == keyward.LevelAccount {
		return "meters"
	}
	return "keys"
}

// SpendLevelCredits spends cost from the credits of every holder in refs,
// or from none, in one write transaction whose rows are locked (or whose
// writer is single), so spends never overspend.
func (s *Store) SpendLevelCredits(ctx context.Context, refs []keyward.LevelRef, cost int64, now time.Time) ([]*keyward.Credits, int, error) {
	if cost < 1 {
		return nil, -1, keyward.Errorf(keyward.EINVALID, "%s: spend credits: cost must be at least 1, got %d", s.name, cost)
	}
	cs := make([]*keyward.Credits, len(refs))
	refused := -1
	err := s.WriteUnaudited(ctx, func(tx *Tx) error {
		refused = -1
		before := make([]keyward.Credits, len(refs))
		for i, r := range refs {
			var sc storedCredits
			err := tx.QueryRowContext(ctx, s.locked(tx, "SELECT "+creditCols+" FROM "+creditTable(r.Level)+" WHERE id = ?", ""), r.ID).Scan(sc.dest()...)
			if errors.Is(err, sql.ErrNoRows) && creditTable(r.Level) == "meters" {
				continue // the meter was removed: nothing to spend
			}
			if err != nil {
				return s.rowError(err, "key", r.ID)
			}
			c, err := sc.credits()
			if err != nil {
				return err
			}
			if c == nil {
				continue
			}
			before[i] = *c
			next, ok := c.Spend(cost, now)
			if !ok && refused < 0 {
				refused = i
			}
			cs[i] = &next
		}
		for i, r := range refs {
			c := cs[i]
			if c == nil {
				continue
			}
			if refused >= 0 {
				// Nothing is spent; due refills are still kept.
				*c = before[i].At(now)
			}
			if c.Remaining == before[i].Remaining && c.RefilledAt.Equal(before[i].RefilledAt) {
				continue
			}
			c.Version = before[i].Version + 1
			_, err := tx.ExecContext(ctx, "UPDATE "+creditTable(r.Level)+` SET credits_remaining = ?, credits_refilled_at = ?, credits_version = ?
				WHERE id = ?`, c.Remaining, FormatTime(c.RefilledAt), c.Version, r.ID)
			if err != nil {
				return s.dbError(err, Conflicts{})
			}
		}
		return nil
	})
	if err != nil {
		return nil, -1, s.errorf("spend credits of %d holders: %w", len(refs), err)
	}
	return cs, refused, nil
}

// WriteMeterCredits is WriteCredits for the writes of meters' credits
// (CreditWrite.Level user or account), in the transaction tx.
func (s *Store) WriteMeterCredits(ctx context.Context, tx *Tx, writes []keyward.CreditWrite) error {
	for _, w := range writes {
		_, err := tx.ExecContext(ctx, `UPDATE meters SET credits_remaining = ?1, credits_refilled_at = ?2, credits_version = ?3
			WHERE id = ?4 AND credits_remaining IS NOT NULL AND credits_version < ?3`, w.Remaining, FormatTime(w.RefilledAt), w.Version, w.KeyID)
		if err != nil {
			return s.dbError(err, Conflicts{})
		}
	}
	return nil
}

// SplitCreditWrites returns the writes of keys' credits and those of
// meters'.
func SplitCreditWrites(writes []keyward.CreditWrite) (keys, meters []keyward.CreditWrite) {
	for _, w := range writes {
		if w.Level == keyward.LevelUser || w.Level == keyward.LevelAccount {
			meters = append(meters, w)
		} else {
			keys = append(keys, w)
		}
	}
	return keys, meters
}

// fillMeters sets the fields of k that mirror the meters of its user and
// account, read in tx; known caches the meters read by id (nil: none).
func (s *Store) fillMeters(ctx context.Context, tx *Tx, k *keyward.Key, known map[string]*keyward.Meter) error {
	k.UserMeter, k.AccountMeter = nil, nil
	read := func(id string) (*keyward.Meter, error) {
		if m, ok := known[id]; ok {
			return m, nil
		}
		m, err := scanMeter(tx.QueryRowContext(ctx, selectMeter+" WHERE id = ?", id))
		if errors.Is(err, sql.ErrNoRows) {
			m, err = nil, nil
		}
		if err != nil {
			return nil, s.dbError(err, Conflicts{})
		}
		if m != nil {
			m.UpdatedAt = time.Time{} // a key read mirrors no time
		}
		known[id] = m
		return m, nil
	}
	var err error
	if k.UserID != "" {
		if k.UserMeter, err = read(k.UserID); err != nil {
			return err
		}
	}
	if k.AccountID != "" {
		k.AccountMeter, err = read(k.AccountID)
	}
	k.UserMeter, k.AccountMeter = k.UserMeter.Clone(), k.AccountMeter.Clone()
	return err
}

// fillBatchMeters is fillMeters for every key of a batch, reading each
// meter once.
func (s *Store) fillBatchMeters(ctx context.Context, tx *Tx, keys []*keyward.Key) error {
	known := map[string]*keyward.Meter{}
	for _, k := range keys {
		if err := s.fillMeters(ctx, tx, k, known); err != nil {
			return err
		}
	}
	return nil
}
