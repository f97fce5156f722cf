package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/sqlstore"
)

// migrationFiles holds the schema migrations: migrations/NNNN_name.sql,
// numbered from 1 without gaps. A released migration is never edited; a
// change to the schema is a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// loadMigrations returns the embedded migrations in version order.
func loadMigrations() ([]keyward.Migration, error) {
	return keyward.ReadMigrations(migrationFiles, "migrations/*.sql")
}

// SchemaVersion returns the newest schema version this binary knows.
func SchemaVersion() int {
	ms, err := loadMigrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].Version
}

// Migrate opens the SQLite database at path as Open does (creating it if
// missing), brings its schema up to SchemaVersion, closes it and returns the
// version it found and the version it left. It is for `keyward migrate`;
// Open migrates by itself.
func Migrate(ctx context.Context, path string) (from, to int, err error) {
	s, err := open(ctx, path, Options{}, &from)
	if err != nil {
		return 0, 0, err
	}
	if err := s.Close(); err != nil {
		return 0, 0, fmt.Errorf("sqlite: migrate: %w", err)
	}
	return from, SchemaVersion(), nil
}

// migrate brings the schema of db up to the newest embedded version in one
// transaction: either every pending migration applies or none does. A
// database whose schema is newer than this binary is refused, so an old
// binary never writes to a schema it does not understand. It stores the
// version it found in *from when from is not nil.
func migrate(ctx context.Context, db *sql.DB, from *int) error {
	ms, err := loadMigrations()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	latest := ms[len(ms)-1].Version

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()

	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at TEXT    NOT NULL
	) STRICT`); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&current); err != nil {
		return fmt.Errorf("migrate: read schema version: %w", err)
	}
	if from != nil {
		*from = current
	}
	if current > latest {
		return fmt.Errorf("migrate: %w: schema is version %d but this binary supports at most version %d: run a newer keyward binary (the database was upgraded by one)", keyward.ErrSchemaTooNew, current, latest)
	}
	for _, m := range ms[current:] {
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("migrate: apply %s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
			m.Version, m.Name, sqlstore.FormatTime(time.Now())); err != nil {
			return fmt.Errorf("migrate: record %s: %w", m.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}
