package postgres

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keyward/keyward"
)

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
	// CONFLICT DO UPDATE cannot touch one row twice in a statement.
	_, err := s.pool.Exec(ctx, `INSERT INTO usage_counts (granularity, start, key_id, account_id, code, count)
		SELECT 'minute', s, k, a, c, sum(n) FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::bigint[])
			AS u(s, k, a, c, n)
		GROUP BY s, k, a, c
		ON CONFLICT (granularity, start, key_id, account_id, code)
		DO UPDATE SET count = usage_counts.count + excluded.count`,
		starts, keys, accounts, codes, counts)
	if err != nil {
		return fmt.Errorf("postgres: add %d usage rows: %w", len(rows), s.dbError(err, nil))
	}
	return nil
}

// usageRollUps are the steps of RollUpUsage, finest first, so hours made
// from minutes roll up to days in the same call; unit is the date_trunc
// field of to.
var usageRollUps = []struct {
	from, to keyward.UsageGranularity
	unit     string
}{
	{keyward.UsageMinute, keyward.UsageHour, "hour"},
	{keyward.UsageHour, keyward.UsageDay, "day"},
}

// RollUpUsage adds the part of each minute and hour row not yet rolled up
// to the next coarser row, for complete periods before before, in one
// transaction. See keyward.Store. Concurrent calls (several instances)
// queue on an advisory lock, and each adds only what the previous one left
// unrolled.
func (s *Store) RollUpUsage(ctx context.Context, before time.Time) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// One roll-up at a time per schema: two concurrent ones would both
		// read the same unrolled counts before either marks them.
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey(s.schema, "usage_rollup")); err != nil {
			return s.dbError(err, nil)
		}
		for _, r := range usageRollUps {
			// One statement, so one snapshot: the rows it sums are the rows
			// it marks. FOR UPDATE makes a concurrent AddUsage to a source
			// row wait, and rolled is set to the count that was summed, so
			// a count added meanwhile is left for the next roll-up.
			if _, err := tx.Exec(ctx, `WITH src AS (
					SELECT start, key_id, account_id, code, count, rolled FROM usage_counts
					WHERE granularity = $2 AND start < $3 AND count > rolled
					FOR UPDATE
				), marked AS (
					UPDATE usage_counts u SET rolled = src.count FROM src
					WHERE u.granularity = $2 AND u.start = src.start AND u.key_id = src.key_id
						AND u.account_id = src.account_id AND u.code = src.code
				)
				INSERT INTO usage_counts (granularity, start, key_id, account_id, code, count)
				SELECT $1, date_trunc($4, start AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', key_id, account_id, code,
					sum(count - rolled)
				FROM src GROUP BY 2, key_id, account_id, code
				ON CONFLICT (granularity, start, key_id, account_id, code)
				DO UPDATE SET count = usage_counts.count + excluded.count`,
				string(r.to), string(r.from), r.to.Truncate(before), r.unit); err != nil {
				return s.dbError(err, nil)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: roll up usage before %s: %w", before.UTC().Format(time.RFC3339), err)
	}
	return nil
}

// Usage lists the rows of f.Granularity matching f. See keyward.Store.
func (s *Store) Usage(ctx context.Context, f keyward.UsageFilter) ([]keyward.UsageRow, error) {
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("postgres: list usage: %w", err)
	}
	query := "SELECT start, key_id, account_id, code, count FROM usage_counts WHERE granularity = $1"
	args := []any{string(f.Granularity)}
	for _, c := range []struct {
		cond string
		v    any
		set  bool
	}{
		{"key_id = ", f.KeyID, f.KeyID != ""},
		{"account_id = ", f.AccountID, f.AccountID != ""},
		{"start >= ", f.Since, !f.Since.IsZero()},
		{"start < ", f.Until, !f.Until.IsZero()},
	} {
		if c.set {
			args = append(args, c.v)
			query += " AND " + c.cond + "$" + strconv.Itoa(len(args))
		}
	}
	args = append(args, keyward.MaxUsageRows+1)
	query += " ORDER BY start, key_id, code, account_id LIMIT $" + strconv.Itoa(len(args))
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list usage: %w", s.dbError(err, nil))
	}
	usage, err := collect(rows, func(row pgx.Row) (keyward.UsageRow, error) {
		r := keyward.UsageRow{Granularity: f.Granularity}
		var code string
		if err := row.Scan(&r.Start, &r.KeyID, &r.AccountID, &code, &r.Count); err != nil {
			return r, err
		}
		r.Start, r.Code = r.Start.UTC(), keyward.Decision(code)
		return r, nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list usage: %w", s.dbError(err, nil))
	}
	if len(usage) > keyward.MaxUsageRows {
		return nil, fmt.Errorf("postgres: list usage: %w", keyward.ErrTooManyUsageRows(f))
	}
	return usage, nil
}

// DeleteUsageBefore deletes the rows of granularity g that start before
// before. See keyward.Store.
func (s *Store) DeleteUsageBefore(ctx context.Context, g keyward.UsageGranularity, before time.Time) (int64, error) {
	if err := g.Validate(); err != nil {
		return 0, fmt.Errorf("postgres: delete usage: %w", err)
	}
	tag, err := s.pool.Exec(ctx, "DELETE FROM usage_counts WHERE granularity = $1 AND start < $2", string(g), before)
	if err != nil {
		return 0, fmt.Errorf("postgres: delete %s usage before %s: %w", g, before.UTC().Format(time.RFC3339), s.dbError(err, nil))
	}
	return tag.RowsAffected(), nil
}
