package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/keyward/keyward"
)

// Backup writes a consistent copy of the database at src to dst, a file
// that must not exist, with mode 0600. It reads src in one transaction
// (VACUUM INTO), so it is safe while other processes write to src, and
// includes what its WAL holds. The copy is in rollback-journal mode: one
// self-contained file, ready to be put in a data directory (keyward serve
// switches it back to WAL).
func Backup(ctx context.Context, src, dst string) error {
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	if _, err := os.Lstat(dst); !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sqlite: backup: %s exists: give a new file", dst)
	}
	db, err := sql.Open("sqlite", readOnlyDSN(src, false))
	if err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	defer db.Close()
	// Create the copy first so it is private from its first byte.
	if err := os.WriteFile(dst, nil, 0o600); err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", dst); err != nil {
		os.Remove(dst)
		return fmt.Errorf("sqlite: backup of %s: %w", src, err)
	}
	cp, err := sql.Open("sqlite", dst)
	if err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	defer cp.Close()
	if _, err := cp.ExecContext(ctx, "PRAGMA journal_mode=DELETE"); err != nil {
		return fmt.Errorf("sqlite: backup: leaving WAL mode in the copy: %w", err)
	}
	return cp.Close()
}

// readOnlyDSN returns the URI opening path read-only; immutable also tells
// SQLite nothing changes the file, so it takes no locks and writes nothing
// beside it (for a copy no process writes to).
func readOnlyDSN(path string, immutable bool) string {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path)}
	q := fmt.Sprintf("mode=ro&_pragma=busy_timeout(%d)", busyTimeout.Milliseconds())
	if immutable {
		q += "&immutable=1"
	}
	return u.String() + "?" + q
}

// OpenReadOnly opens the database file at path, which must exist, read
// only and immutable, without migrating it: to inspect a backup. Every
// write method fails.
func OpenReadOnly(ctx context.Context, path string) (*Store, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db, err := sql.Open("sqlite", readOnlyDSN(path, true))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return newStore(ctx, path, db, db)
}

// CheckIntegrity runs SQLite's integrity check on the whole file: nil when
// it finds nothing wrong, else an error listing what it found.
func (s *Store) CheckIntegrity(ctx context.Context) error {
	rows, err := s.Reader().QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return fmt.Errorf("sqlite: integrity check: %w", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("sqlite: integrity check: %w", err)
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: integrity check: %w", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("sqlite: integrity check: %s", strings.Join(problems, "; "))
	}
	return nil
}

// AppliedSchemaVersion returns the schema version of the database: the
// newest migration applied to it.
func (s *Store) AppliedSchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.Reader().QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&v); err != nil {
		return 0, keyward.WrapError(keyward.EINTERNAL, err, "sqlite: reading the schema version")
	}
	return v, nil
}
