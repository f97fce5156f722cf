package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/sqlstore"
)

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
// unrolled. It replaces sqlstore's, whose statements rely on SQLite's
// single writer.
func (s *Store) RollUpUsage(ctx context.Context, before time.Time) error {
	err := s.WriteUnaudited(ctx, func(tx *sqlstore.Tx) error {
		// One roll-up at a time per schema: two concurrent ones would both
		// read the same unrolled counts before either marks them.
		if err := (dialect{schema: s.schema}).Lock(ctx, tx, "usage_rollup"); err != nil {
			return s.Error(err, sqlstore.Conflicts{})
		}
		for _, r := range usageRollUps {
			// One statement, so one snapshot: the rows it sums are the rows
			// it marks. FOR UPDATE makes a concurrent AddUsage to a source
			// row wait, and rolled is set to the count that was summed, so
			// a count added meanwhile is left for the next roll-up. The
			// rows are locked in AddUsage's order, so the two never
			// deadlock.
			if _, err := tx.ExecContext(ctx, `WITH src AS (
					SELECT start, key_id, account_id, code, count, rolled FROM usage_counts
					WHERE granularity = ?2 AND start < ?3 AND count > rolled
					ORDER BY start, key_id, account_id, code
					FOR UPDATE
				), marked AS (
					UPDATE usage_counts u SET rolled = src.count FROM src
					WHERE u.granularity = ?2 AND u.start = src.start AND u.key_id = src.key_id
						AND u.account_id = src.account_id AND u.code = src.code
				)
				INSERT INTO usage_counts (granularity, start, key_id, account_id, code, count)
				SELECT ?1, date_trunc(?4, start AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', key_id, account_id, code,
					sum(count - rolled)
				FROM src GROUP BY 2, key_id, account_id, code
				ON CONFLICT (granularity, start, key_id, account_id, code)
				DO UPDATE SET count = usage_counts.count + excluded.count`,
				string(r.to), string(r.from), sqlstore.FormatTime(r.to.Truncate(before)), r.unit); err != nil {
				return s.Error(err, sqlstore.Conflicts{})
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: roll up usage before %s: %w", before.UTC().Format(time.RFC3339), err)
	}
	return nil
}
