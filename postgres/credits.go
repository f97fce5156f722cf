package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keyward/keyward"
)

// creditColumns are the credits columns of keys, in creditArgs' and
// storedCredits' order.
var creditColumns = []string{"credits_remaining", "credits_refill_amount", "credits_refill_interval",
	"credits_refilled_at", "credits_version"}

// creditArgs returns the values of c for creditColumns: NULLs and version
// 0 for a key without credits.
func creditArgs(c *keyward.Credits) []any {
	if c == nil {
		return []any{nil, nil, nil, nil, int64(0)}
	}
	var amount, interval any
	if c.Refill != nil {
		amount, interval = c.Refill.Amount, int64(c.Refill.Interval)
	}
	return []any{c.Remaining, amount, interval, c.RefilledAt, c.Version}
}

// storedCredits receives creditColumns.
type storedCredits struct {
	remaining, amount, interval *int64
	refilledAt                  *time.Time
	version                     int64
}

func (c *storedCredits) dest() []any {
	return []any{&c.remaining, &c.amount, &c.interval, &c.refilledAt, &c.version}
}

// credits returns the credits scanned, nil if the key has none.
func (c *storedCredits) credits() *keyward.Credits {
	if c.remaining == nil {
		return nil
	}
	out := &keyward.Credits{Remaining: *c.remaining, Version: c.version}
	if c.amount != nil && c.interval != nil {
		out.Refill = &keyward.CreditRefill{Amount: *c.amount, Interval: keyward.Duration(*c.interval)}
	}
	if c.refilledAt != nil {
		out.RefilledAt = c.refilledAt.UTC()
	}
	return out
}

// SpendCredits applies the refills due at now to the key's credits and
// spends cost if that much remains, in one transaction that locks the key's
// row first: spends from any number of instances queue on the lock, so
// they never overspend. Every spend or refill raises Version. It returns
// the credits after the call and whether cost was spent; a key without
// credits gives (nil, true). ENOTFOUND if the key does not exist, EINVALID
// if cost is below 1.
func (s *Store) SpendCredits(ctx context.Context, keyID string, cost int64, now time.Time) (*keyward.Credits, bool, error) {
	if cost < 1 {
		return nil, false, keyward.Errorf(keyward.EINVALID, "postgres: spend credits of key %s: cost must be at least 1, got %d", keyID, cost)
	}
	var (
		c  *keyward.Credits
		ok bool
	)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var sc storedCredits
		err := tx.QueryRow(ctx, "SELECT "+strings.Join(creditColumns, ", ")+" FROM keys WHERE id = $1 FOR UPDATE", keyID).Scan(sc.dest()...)
		if err != nil {
			return s.rowError(err, "key", keyID)
		}
		if c = sc.credits(); c == nil {
			ok = true
			return nil
		}
		var changed bool
		if *c, ok, changed = c.SpendVersioned(cost, now); !changed {
			return nil
		}
		_, err = tx.Exec(ctx, `UPDATE keys SET credits_remaining = $1, credits_refilled_at = $2, credits_version = $3
			WHERE id = $4`, c.Remaining, c.RefilledAt, c.Version, keyID)
		return s.dbError(err, nil)
	})
	if err != nil {
		return nil, false, fmt.Errorf("postgres: spend credits of key %s: %w", keyID, err)
	}
	return c, ok, nil
}

// writeCredits applies a batch of credit writes in one statement: the
// newest write of each key, if newer than its stored credits. The rows are
// locked in id order first, so concurrent batches cannot deadlock.
const writeCredits = `WITH w AS (
		SELECT DISTINCT ON (t.id) t.id, t.remaining, t.refilled_at, t.version
		FROM unnest($1::text[], $2::bigint[], $3::timestamptz[], $4::bigint[]) AS t(id, remaining, refilled_at, version)
		ORDER BY t.id, t.version DESC
	), locked AS MATERIALIZED (
		SELECT k.id FROM keys k JOIN w ON w.id = k.id
		WHERE k.credits_remaining IS NOT NULL AND k.credits_version < w.version
		ORDER BY k.id FOR UPDATE OF k
	)
	UPDATE keys k SET credits_remaining = w.remaining, credits_refilled_at = w.refilled_at, credits_version = w.version
	FROM w, locked
	WHERE k.id = w.id AND k.id = locked.id AND k.credits_remaining IS NOT NULL AND k.credits_version < w.version`

// WriteCredits stores credits counted elsewhere in one statement: each
// write replaces Remaining, RefilledAt and Version of a key that has
// credits of an older version. Other writes are ignored. EINVALID, and
// nothing written, if a Remaining is negative.
func (s *Store) WriteCredits(ctx context.Context, writes []keyward.CreditWrite) error {
	if len(writes) == 0 {
		return nil
	}
	n := len(writes)
	ids, remaining, refilledAt, versions := make([]string, n), make([]int64, n), make([]time.Time, n), make([]int64, n)
	for i, w := range writes {
		ids[i], remaining[i], refilledAt[i], versions[i] = w.KeyID, w.Remaining, w.RefilledAt, w.Version
	}
	if _, err := s.pool.Exec(ctx, writeCredits, ids, remaining, refilledAt, versions); err != nil {
		return fmt.Errorf("postgres: write credits of %d keys: %w", n, s.dbError(err, conflicts{
			"keys_credits_remaining_check": "credits remaining must not be negative",
		}))
	}
	return nil
}
