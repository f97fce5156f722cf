// Package sqlite opens keyward's store (package internal/sqlstore) on an
// embedded SQLite database, using the pure-Go driver modernc.org/sqlite.
//
// The database runs in WAL mode with foreign keys on. A Store keeps two
// connection pools on the same file: a single writer connection, whose
// transactions begin IMMEDIATE, so writes queue in Go instead of failing
// with SQLITE_BUSY and every read-modify-write sees the latest state; and a
// pool of read-only connections, so reads (above all KeyByHash, the
// verification cache's miss path) stay concurrent with each other and with
// the writer. The fn given to UpdateAccount, UpdateKey and RotateKey runs
// while the writer is held, so it must not call the Store.
//
// Every write method that changes state appends the audit entry of its
// keyward.Change in its own transaction; the single writer numbers the
// entries without gaps.
//
// The schema is created and upgraded by embedded, numbered migrations when
// the database is opened.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/sqlstore"
	driver "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// busyTimeout is how long a connection waits for a lock held by another
// connection (a checkpoint, another process) before SQLITE_BUSY.
const busyTimeout = 5 * time.Second

// Store is a keyward.Store on SQLite. It is safe for concurrent use.
type Store struct {
	*sqlstore.Store
	path string
}

var _ keyward.Store = (*Store)(nil)

// Open opens the SQLite database at path, creating the file (mode 0600) if
// it does not exist, and applies pending migrations. It refuses a database
// whose schema is newer than this binary knows. The directory of path must
// exist.
func Open(ctx context.Context, path string) (*Store, error) {
	return open(ctx, path, Options{}, nil)
}

// OpenOptions is Open with options.
func OpenOptions(ctx context.Context, path string, opts Options) (*Store, error) {
	return open(ctx, path, opts, nil)
}

// open is OpenOptions; it stores the schema version it found in *from
// when from is not nil.
func open(ctx context.Context, path string, opts Options, from *int) (*Store, error) {
	if path == "" || strings.ContainsRune(path, '?') || strings.HasPrefix(path, "file:") || path == ":memory:" {
		return nil, keyward.Errorf(keyward.EINVALID, "sqlite: database path %q must be a plain file path (no \"?\", \"file:\" or \":memory:\")", path)
	}
	// Create the file ourselves so it is private: it holds key hashes.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}

	pragmas := fmt.Sprintf("_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)", busyTimeout.Milliseconds())
	// synchronous(FULL): a revocation must survive a power cut; writes are
	// rare admin operations and batched usage, so the fsync is affordable.
	// Only tests turn it off (Options.UnsafeNoSync).
	synchronous := "FULL"
	if opts.UnsafeNoSync {
		synchronous = "OFF"
	}
	w, err := sqlOpen(path+"?"+pragmas+"&_pragma=journal_mode(WAL)&_pragma=synchronous("+synchronous+")&_txlock=immediate", opts.TracerProvider)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	if err := migrate(ctx, w, from); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}

	r, err := sqlOpen(path+"?"+pragmas+"&_pragma=query_only(1)", opts.TracerProvider)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	r.SetConnMaxLifetime(0)
	r.SetConnMaxIdleTime(0)
	return newStore(ctx, path, w, r)
}

// newStore returns the store on the writer w and the readers r of the
// database at path.
func newStore(ctx context.Context, path string, w, r *sql.DB) (*Store, error) {
	st, err := sqlstore.New(ctx, dialect{}, w, r)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return &Store{Store: st, path: path}, nil
}

// SetWriteCache sets the page cache of the writer connection to n bytes
// (SQLite's default is 2 MiB), for a bulk load: keys are inserted into
// indexes at random places (hash, id), and past a few hundred thousand keys
// each insert reads index pages a small cache no longer holds. keyward dev
// seed uses it; the cache lasts as long as the store is open.
func (s *Store) SetWriteCache(ctx context.Context, n int64) error {
	if _, err := s.Writer().ExecContext(ctx, fmt.Sprintf("PRAGMA cache_size = -%d", max(n>>10, 1))); err != nil {
		return fmt.Errorf("sqlite: set the write cache: %w", err)
	}
	return nil
}

// Path returns the database file path.
func (s *Store) Path() string { return s.path }

// dialect is SQLite's sqlstore.Dialect: ? placeholders, one writer (no
// row or advisory locks).
type dialect struct{}

func (dialect) Name() string      { return "sqlite" }
func (dialect) Numbered() bool    { return false }
func (dialect) ForUpdate() string { return "" }

func (dialect) Lock(context.Context, *sqlstore.Tx, string) error { return nil }

// Classify maps a driver error by its SQLite result code (never by message
// text).
func (dialect) Classify(err error, c sqlstore.Conflicts, storage *keyward.StorageFull) error {
	var se *driver.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return keyward.WrapError(keyward.ECONFLICT, err, "%s", or(c.PK, "id already exists"))
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE:
		return keyward.WrapError(keyward.ECONFLICT, err, "%s", or(c.Unique, "value already exists"))
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return keyward.WrapError(keyward.ENOTFOUND, err, "%s", or(c.FK, "referenced record does not exist"))
	case sqlite3.SQLITE_CONSTRAINT_CHECK, sqlite3.SQLITE_CONSTRAINT_NOTNULL, sqlite3.SQLITE_CONSTRAINT_DATATYPE:
		return keyward.WrapError(keyward.EINVALID, err, "value cannot be stored")
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_FULL:
		return storage.Refused(err)
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN,
		sqlite3.SQLITE_READONLY, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT:
		return keyward.WrapError(keyward.EUNAVAILABLE, err, "database unavailable")
	}
	return err
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (dialect) JSONField(col, field string) string {
	return "json_extract(" + col + ", '$." + field + "')"
}

// List stores a list of strings as a JSON array.
func (dialect) List(xs []string) any {
	if len(xs) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(xs)
	return string(b)
}

func (dialect) ListDest(xs *[]string) any { return jsonList{xs} }

// jsonList scans a JSON array of strings.
type jsonList struct{ xs *[]string }

func (l jsonList) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("stored list: %T is not JSON text", src)
	}
	*l.xs = nil
	return json.Unmarshal(b, l.xs)
}

// Micros reads a stored time as Unix microseconds, exactly: times are
// fixed width, so the seconds are its first 19 characters and the
// microseconds characters 21 to 26.
func (dialect) Micros(col string) string {
	return "(CAST(strftime('%s', substr(" + col + ", 1, 19)) AS INTEGER) * 1000000 + CAST(substr(" + col + ", 21, 6) AS INTEGER))"
}

func (dialect) NoTime() string { return "''" }
