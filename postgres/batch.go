package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/sqlstore"
)

// The hot path's bookkeeping (TouchKeys, WriteCredits, AddUsage) runs in
// one statement over arrays on PostgreSQL, replacing sqlstore's statement
// per row: a batch costs one round trip, and the rows it locks are locked
// in key order, so concurrent batches of several instances never deadlock.

const touchKeys = `WITH u AS (
		SELECT t.id, max(t.at) AS at FROM unnest($1::text[], $2::timestamptz[]) AS t(id, at) GROUP BY t.id
	), locked AS MATERIALIZED (
		SELECT k.id FROM keys k JOIN u ON u.id = k.id
		WHERE k.last_used_at IS NULL OR k.last_used_at < u.at
		ORDER BY k.id FOR UPDATE OF k
	)
	UPDATE keys k SET last_used_at = GREATEST(k.last_used_at, u.at)
	FROM u, locked WHERE k.id = u.id AND k.id = locked.id`

// TouchKeys raises last_used_at of each key to the given time, never
// lowering it, in one statement. Unknown ids are ignored.
func (s *Store) TouchKeys(ctx context.Context, uses []keyward.KeyUse) error {
	if len(uses) == 0 {
		return nil
	}
	ids, ats := make([]string, len(uses)), make([]time.Time, len(uses))
	for i, u := range uses {
		ids[i], ats[i] = u.ID, u.At
	}
	if _, err := s.Writer().ExecContext(ctx, touchKeys, ids, ats); err != nil {
		return fmt.Errorf("postgres: touch %d keys: %w", len(uses), s.Error(err, sqlstore.Conflicts{}))
	}
	return nil
}

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
// credits of an older version; the writes of meters' credits are written
// by sqlstore's WriteMeterCredits first. Other writes are ignored. EINVALID,
// and nothing written, if a Remaining is negative.
func (s *Store) WriteCredits(ctx context.Context, writes []keyward.CreditWrite) error {
	if len(writes) == 0 {
		return nil
	}
	writes, meters := sqlstore.SplitCreditWrites(writes)
	if len(meters) > 0 {
		err := s.WriteUnaudited(ctx, func(tx *sqlstore.Tx) error { return s.WriteMeterCredits(ctx, tx, meters) })
		if err != nil {
			return fmt.Errorf("postgres: write shared credits of %d users and accounts: %w", len(meters), err)
		}
	}
	if len(writes) == 0 {
		return nil
	}
	n := len(writes)
	ids, remaining, refilledAt, versions := make([]string, n), make([]int64, n), make([]time.Time, n), make([]int64, n)
	for i, w := range writes {
		ids[i], remaining[i], refilledAt[i], versions[i] = w.KeyID, w.Remaining, w.RefilledAt, w.Version
	}
	if _, err := s.Writer().ExecContext(ctx, writeCredits, ids, remaining, refilledAt, versions); err != nil {
		return fmt.Errorf("postgres: write credits of %d keys: %w", n, s.Error(err, sqlstore.Conflicts{}))
	}
	return nil
}

// AddUsage adds the count of each row to its minute row with one statement.
// See keyward.Store.
func (s *Store) AddUsage(ctx context.Context, rows []keyward.UsageRow) error {
	if len(rows) == 0 {
		return nil
	}
	var (
		starts                = make([]time.Time, len(rows))
		keys, accounts, codes = make([]string, len(rows)), make([]string, len(rows)), make([]string, len(rows))
		counts                = make([]int64, len(rows))
	)
	for i, r := range rows {
		if err := r.ValidateAdd(); err != nil {
			return fmt.Errorf("postgres: add usage: %w", err)
		}
		starts[i] = keyward.UsageMinute.Truncate(r.Start)
		keys[i], accounts[i], codes[i], counts[i] = r.KeyID, r.AccountID, string(r.Code), r.Count
	}
	// GROUP BY merges rows of the batch that share a minute row: ON
	// CONFLICT DO UPDATE cannot touch one row twice in a statement. ORDER
	// BY makes the rows be inserted, and so locked, in the order of the
	// key of usage_counts, the order RollUpUsage locks them in too: two
	// instances flushing the same minute rows, or a flush beside a roll-up,
	// then wait for each other instead of deadlocking.
	_, err := s.Writer().ExecContext(ctx, `INSERT INTO usage_counts (granularity, start, key_id, account_id, code, count)
		SELECT 'minute', s, k, a, c, sum(n) FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::bigint[])
			AS u(s, k, a, c, n)
		GROUP BY s, k, a, c
		ORDER BY s, k, a, c
		ON CONFLICT (granularity, start, key_id, account_id, code)
		DO UPDATE SET count = usage_counts.count + excluded.count`,
		starts, keys, accounts, codes, counts)
	if err != nil {
		return fmt.Errorf("postgres: add %d usage rows: %w", len(rows), s.Error(err, sqlstore.Conflicts{}))
	}
	return nil
}
