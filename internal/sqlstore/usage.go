package sqlstore

import (
	"context"
	"time"

	"github.com/keyward/keyward"
)

// AddUsage adds the count of each row to its minute row in one write
// transaction. See keyward.Store.
func (s *Store) AddUsage(ctx context.Context, rows []keyward.UsageRow) error {
	if len(rows) == 0 {
		return nil
	}
	for _, r := range rows {
		if err := r.ValidateAdd(); err != nil {
			return s.errorf("add usage: %w", err)
		}
	}
	err := s.WriteUnaudited(ctx, func(tx *Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO usage_counts (granularity, start, key_id, account_id, code, count)
			VALUES ('minute', ?, ?, ?, ?, ?)
			ON CONFLICT (granularity, start, key_id, account_id, code) DO UPDATE SET count = usage_counts.count + excluded.count`)
		if err != nil {
			return s.dbError(err, Conflicts{})
		}
		defer st.Close()
		for _, r := range rows {
			start := FormatTime(keyward.UsageMinute.Truncate(r.Start))
			if _, err := st.ExecContext(ctx, start, r.KeyID, r.AccountID, string(r.Code), r.Count); err != nil {
				return s.dbError(err, Conflicts{})
			}
		}
		return nil
	})
	if err != nil {
		return s.errorf("add %d usage rows: %w", len(rows), err)
	}
	return nil
}

// usageRollUps are the steps of RollUpUsage, finest first, so hours made
// from minutes roll up to days in the same call. trunc is the SQL that
// truncates a stored start to the period of to.
var usageRollUps = []struct {
	from, to keyward.UsageGranularity
	trunc    string
}{
	{keyward.UsageMinute, keyward.UsageHour, `substr(start, 1, 13) || ':00:00.000000Z'`},
	{keyward.UsageHour, keyward.UsageDay, `substr(start, 1, 10) || 'T00:00:00.000000Z'`},
}

// RollUpUsage adds the part of each minute and hour row not yet rolled up
// to the next coarser row, for complete periods before before, in one write
// transaction. See keyward.Store.
func (s *Store) RollUpUsage(ctx context.Context, before time.Time) error {
	err := s.WriteUnaudited(ctx, func(tx *Tx) error {
		for _, r := range usageRollUps {
			cutoff := FormatTime(r.to.Truncate(before))
			if _, err := tx.ExecContext(ctx, `INSERT INTO usage_counts (granularity, start, key_id, account_id, code, count)
				SELECT ?1, `+r.trunc+`, key_id, account_id, code, SUM(count - rolled) FROM usage_counts
				WHERE granularity = ?2 AND start < ?3 AND count > rolled
				GROUP BY 2, key_id, account_id, code
				ON CONFLICT (granularity, start, key_id, account_id, code) DO UPDATE SET count = usage_counts.count + excluded.count`,
				string(r.to), string(r.from), cutoff); err != nil {
				return s.dbError(err, Conflicts{})
			}
			if _, err := tx.ExecContext(ctx, `UPDATE usage_counts SET rolled = count
				WHERE granularity = ? AND start < ? AND count > rolled`, string(r.from), cutoff); err != nil {
				return s.dbError(err, Conflicts{})
			}
		}
		return nil
	})
	if err != nil {
		return s.errorf("roll up usage before %s: %w", FormatTime(before), err)
	}
	return nil
}

// Usage lists the rows of f.Granularity matching f. See keyward.Store.
func (s *Store) Usage(ctx context.Context, f keyward.UsageFilter) ([]keyward.UsageRow, error) {
	if err := f.Validate(); err != nil {
		return nil, s.errorf("list usage: %w", err)
	}
	query := "SELECT start, key_id, account_id, code, count FROM usage_counts WHERE granularity = ?"
	args := []any{string(f.Granularity)}
	for _, c := range []struct{ col, v string }{{"key_id", f.KeyID}, {"account_id", f.AccountID}} {
		if c.v != "" {
			query += " AND " + c.col + " = ?"
			args = append(args, c.v)
		}
	}
	if f.UserID != "" {
		query += " AND key_id IN (SELECT id FROM keys WHERE user_id = ?)"
		args = append(args, f.UserID)
	}
	if !f.Since.IsZero() {
		query += " AND start >= ?"
		args = append(args, FormatTime(f.Since))
	}
	if !f.Until.IsZero() {
		query += " AND start < ?"
		args = append(args, FormatTime(f.Until))
	}
	query += " ORDER BY start, key_id, code, account_id LIMIT ?"
	args = append(args, keyward.MaxUsageRows+1)
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, s.errorf("list usage: %w", s.dbError(err, Conflicts{}))
	}
	defer rows.Close()
	usage := []keyward.UsageRow{}
	for rows.Next() {
		r := keyward.UsageRow{Granularity: f.Granularity}
		var start, code string
		if err := rows.Scan(&start, &r.KeyID, &r.AccountID, &code, &r.Count); err != nil {
			return nil, s.errorf("list usage: %w", s.dbError(err, Conflicts{}))
		}
		if r.Start, err = parseTime(start); err != nil {
			return nil, s.errorf("list usage: %w", err)
		}
		r.Code = keyward.Decision(code)
		usage = append(usage, r)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf("list usage: %w", s.dbError(err, Conflicts{}))
	}
	if len(usage) > keyward.MaxUsageRows {
		return nil, s.errorf("list usage: %w", keyward.ErrTooManyUsageRows(f))
	}
	return usage, nil
}

// DeleteUsageBefore deletes the rows of granularity g that start before
// before. See keyward.Store.
func (s *Store) DeleteUsageBefore(ctx context.Context, g keyward.UsageGranularity, before time.Time) (int64, error) {
	if err := g.Validate(); err != nil {
		return 0, s.errorf("delete usage: %w", err)
	}
	var n int64
	err := s.WriteUnaudited(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM usage_counts WHERE granularity = ? AND start < ?",
			string(g), FormatTime(before))
		if err != nil {
			return s.dbError(err, Conflicts{})
		}
		n, err = res.RowsAffected()
		return s.dbError(err, Conflicts{})
	})
	if err != nil {
		return 0, s.errorf("delete %s usage before %s: %w", g, FormatTime(before), err)
	}
	return n, nil
}
