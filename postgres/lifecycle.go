package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keyward/keyward/internal/sqlstore"
)

// TryLock takes the session advisory lock of name (lockKey) on a
// connection of its own, opened for the purpose outside the pool (so locks
// held by long jobs never starve the pool their work needs) and held until
// the release: PostgreSQL drops the lock if the connection ends, so a dead
// instance never blocks the job. The release unlocks and closes the
// connection; closing alone drops the lock too.
func (s *Store) TryLock(ctx context.Context, name string) (func(), bool, error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, false, fmt.Errorf("postgres: lock %s: %w", name, s.Error(err, sqlstore.Conflicts{}))
	}
	key := lockKey(s.schema, "job:"+name)
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&ok); err != nil || !ok {
		conn.Close(context.WithoutCancel(ctx))
		if err != nil {
			return nil, false, fmt.Errorf("postgres: lock %s: %w", name, s.Error(err, sqlstore.Conflicts{}))
		}
		return nil, false, nil
	}
	release := func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", key)
		conn.Close(ctx)
	}
	return release, true, nil
}
