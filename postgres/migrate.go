package postgres

import (
	"context"
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
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
	if err != nil {
		return 0
	}
	return ms[len(ms)-1].Version
}

// Migrate brings the schema at url up to SchemaVersion, as OpenOptions
// does, and returns the version it found and the version it left. It is
// for `keyward migrate`; Open migrates by itself.
func Migrate(ctx context.Context, url string, opts Options) (from, to int, err error) {
	cfg, schema, err := parseConfig(url, opts)
	if err != nil {
		return 0, 0, fmt.Errorf("postgres: migrate: %w", err)
	}
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return 0, 0, fmt.Errorf("postgres: migrate: %w", mapError(err, sqlstore.Conflicts{}))
	}
	defer pool.Close()
	_, from, to, err = migrate(ctx, pool, schema)
	if err != nil {
		return 0, 0, fmt.Errorf("postgres: %w", err)
	}
	return from, to, nil
}

// migrate brings the schema up to the newest embedded version in one
// transaction, under an advisory lock of the schema, so that of several
// instances starting at once one migrates and the others then find the
// schema current. Either every pending migration applies or none does. A
// schema newer than this binary is refused, so an old binary never writes
// to a schema it does not understand. schema "" means the connection's
// current schema; migrate returns the schema it used.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string) (used string, from, to int, err error) {
	ms, err := loadMigrations()
	if err != nil {
		return "", 0, 0, fmt.Errorf("migrate: %w", err)
	}
	latest := ms[len(ms)-1].Version

	tx, err := pool.Begin(ctx)
	if err != nil {
		return "", 0, 0, fmt.Errorf("migrate: %w", mapError(err, sqlstore.Conflicts{}))
	}
	defer tx.Rollback(ctx)

	if schema == "" {
		var current *string
		if err := tx.QueryRow(ctx, "SELECT current_schema()").Scan(&current); err != nil {
			return "", 0, 0, fmt.Errorf("migrate: read current schema: %w", mapError(err, sqlstore.Conflicts{}))
		}
		if current == nil {
			return "", 0, 0, keyward.Errorf(keyward.EINVALID,
				"migrate: no schema of the search_path exists: create one, or name the schema to use (search_path=NAME in the URL)")
		}
		schema = *current
	}
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey(schema, "migrate")); err != nil {
		return "", 0, 0, fmt.Errorf("migrate: lock schema %s: %w", schema, mapError(err, sqlstore.Conflicts{}))
	}
	// Created under the lock (concurrent CREATE SCHEMA IF NOT EXISTS can
	// fail on the catalog's unique index), and only when missing: CREATE
	// SCHEMA needs the CREATE privilege on the database even when the
	// schema exists.
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema).Scan(&exists); err != nil {
		return "", 0, 0, fmt.Errorf("migrate: find schema %s: %w", schema, mapError(err, sqlstore.Conflicts{}))
	}
	if !exists {
		if _, err := tx.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
			return "", 0, 0, fmt.Errorf("migrate: create schema %s: %w", schema, mapError(err, sqlstore.Conflicts{}))
		}
	}
	// Every statement below names the schema or runs with it first on the
	// search_path.
	if _, err := tx.Exec(ctx, "SET LOCAL search_path TO "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return "", 0, 0, fmt.Errorf("migrate: %w", mapError(err, sqlstore.Conflicts{}))
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer     NOT NULL PRIMARY KEY,
		name       text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return "", 0, 0, fmt.Errorf("migrate: create schema_migrations: %w", mapError(err, sqlstore.Conflicts{}))
	}
	var current int
	if err := tx.QueryRow(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&current); err != nil {
		return "", 0, 0, fmt.Errorf("migrate: read schema version: %w", mapError(err, sqlstore.Conflicts{}))
	}
	if current > latest {
		return "", 0, 0, fmt.Errorf("migrate: %w: schema %s is version %d but this binary supports at most version %d: run a newer keyward binary (the database was upgraded by one)", keyward.ErrSchemaTooNew, schema, current, latest)
	}
	for _, m := range ms[current:] {
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return "", 0, 0, fmt.Errorf("migrate: apply %s: %w", m.Name, mapError(err, sqlstore.Conflicts{}))
		}
		if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.Version, m.Name); err != nil {
			return "", 0, 0, fmt.Errorf("migrate: record %s: %w", m.Name, mapError(err, sqlstore.Conflicts{}))
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return "", 0, 0, fmt.Errorf("migrate: commit: %w", mapError(err, sqlstore.Conflicts{}))
	}
	return schema, current, latest, nil
}
