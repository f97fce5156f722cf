// Package sqlite implements keyward.Store on an embedded SQLite database,
// using the pure-Go driver modernc.org/sqlite.
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
// keyward.Change in its own transaction; the single
// writer numbers the entries without gaps.
//
// The schema is created and upgraded by embedded, numbered migrations when
// the database is opened.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward"
	driver "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// busyTimeout is how long a connection waits for a lock held by another
// connection (a checkpoint, another process) before SQLITE_BUSY.
const busyTimeout = 5 * time.Second

// Store is a keyward.Store on SQLite. It is safe for concurrent use.
type Store struct {
	path string
	w    *sql.DB // one connection: every write goes through it
	r    *sql.DB // read-only pool

	keyByHash *sql.Stmt
	keyByID   *sql.Stmt

	closed atomic.Bool
	// storage tracks SQLITE_FULL episodes.
	storage keyward.StorageFull
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

	s := &Store{path: path}
	pragmas := fmt.Sprintf("_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)", busyTimeout.Milliseconds())
	// synchronous(FULL): a revocation must survive a power cut; writes are
	// rare admin operations and batched usage, so the fsync is affordable.
	s.w, err = sqlOpen(path+"?"+pragmas+"&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate", opts.TracerProvider)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)

	if err := migrate(ctx, s.w, from); err != nil {
		s.w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}

	s.r, err = sqlOpen(path+"?"+pragmas+"&_pragma=query_only(1)", opts.TracerProvider)
	if err != nil {
		s.w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	s.r.SetMaxOpenConns(n)
	s.r.SetMaxIdleConns(n)
	s.r.SetConnMaxLifetime(0)
	s.r.SetConnMaxIdleTime(0)

	if s.keyByHash, err = s.r.PrepareContext(ctx, selectKey+" WHERE k.key_hash = ?"); err == nil {
		s.keyByID, err = s.r.PrepareContext(ctx, selectKey+" WHERE k.id = ?")
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: open %s: prepare: %w", path, err)
	}
	return s, nil
}

// Path returns the database file path.
func (s *Store) Path() string { return s.path }

// Storage implements keyward.StorageReporter: whether writes are refused
// with SQLITE_FULL (the disk, or the database's max_page_count).
func (s *Store) Storage() *keyward.StorageFull { return &s.storage }

// Ping checks that the database answers a query; EUNAVAILABLE if it does
// not or the store is closed.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return keyward.Errorf(keyward.EUNAVAILABLE, "sqlite: ping: store is closed")
	}
	var one int
	if err := s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("sqlite: ping: %w", keyward.WrapError(keyward.EUNAVAILABLE, err, "database unavailable"))
	}
	return nil
}

// Close closes the database. It is safe to call more than once; later
// calls return nil.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	var errs []error
	for _, st := range []*sql.Stmt{s.keyByHash, s.keyByID} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// write runs fn in a transaction on the writer connection (see
// writeUnaudited) and, if fn succeeds, writes the events of ch to the
// outbox, records its key notice and appends its audit entry in the same
// transaction, so the change, its
// announcements and its entry commit together or not at all. Every write
// method that changes state uses it, except the hot-path bookkeeping.
func (s *Store) write(ctx context.Context, ch keyward.Change, fn func(tx *sql.Tx) error) error {
	return s.writeUnaudited(ctx, func(tx *sql.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if err := insertEvents(ctx, tx, ch.Events); err != nil {
			return err
		}
		if n := ch.Notice; n != nil {
			if err := s.insertKeyNotice(ctx, tx, n); err != nil {
				return err
			}
		}
		if e := ch.Audit; e != nil {
			return s.appendAudit(ctx, tx, e)
		}
		return nil
	})
}

// writeUnaudited runs fn in a transaction on the writer connection, without
// touching the audit log: it is for bookkeeping of the hot path (TouchKeys,
// SpendCredits, WriteCredits) and for AppendAudit. The transaction begins
// IMMEDIATE and the writer is a single connection, so concurrent writes run
// one after another and a read inside fn sees the latest commit. fn must
// not call the Store: the writer is busy with fn's transaction.
func (s *Store) writeUnaudited(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.dbError(err, conflicts{})
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return s.dbError(err, conflicts{})
	}
	s.storage.Wrote()
	return nil
}

// conflicts holds the client-safe messages for the constraint violations
// an operation can cause.
type conflicts struct {
	pk     string // primary key (the id) taken
	unique string // another unique column taken
	fk     string // a referenced row is missing
}

// dbError maps a driver error to a *keyward.Error by its SQLite result code
// (never by message text), keeping the driver error as the internal cause.
// *keyward.Error values pass through unchanged.
func (s *Store) dbError(err error, c conflicts) error {
	if err == nil {
		return nil
	}
	var ke *keyward.Error
	if errors.As(err, &ke) {
		return err
	}
	if s.closed.Load() {
		return keyward.WrapError(keyward.EUNAVAILABLE, err, "database unavailable: store is closed")
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return keyward.WrapError(keyward.EUNAVAILABLE, err, "database request canceled or timed out")
	}
	var se *driver.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return keyward.WrapError(keyward.ECONFLICT, err, "%s", or(c.pk, "id already exists"))
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE:
		return keyward.WrapError(keyward.ECONFLICT, err, "%s", or(c.unique, "value already exists"))
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return keyward.WrapError(keyward.ENOTFOUND, err, "%s", or(c.fk, "referenced record does not exist"))
	case sqlite3.SQLITE_CONSTRAINT_CHECK, sqlite3.SQLITE_CONSTRAINT_NOTNULL, sqlite3.SQLITE_CONSTRAINT_DATATYPE:
		return keyward.WrapError(keyward.EINVALID, err, "value cannot be stored")
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_FULL:
		return s.storage.Refused(err)
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

// timeLayout is how times are stored: UTC, fixed width, microseconds, so
// that string order is time order.
const timeLayout = "2006-01-02T15:04:05.000000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// nullTime returns the stored form of an optional time.
func nullTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return formatTime(*t)
}

// nullString stores "" as NULL.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("stored time %q: %w", s, err)
	}
	return t.UTC(), nil
}

func parseNullTime(s sql.NullString) (*time.Time, error) {
	if !s.Valid {
		return nil, nil
	}
	t, err := parseTime(s.String)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// order is the direction of a list by id.
type order bool

// The orders of lists: by ascending id (oldest first), or newest first.
const (
	ascending   order = false
	newestFirst order = true
)

// pageQuery appends the cursor condition, order and limit (one more than
// the page size, to learn whether another page follows) to a query whose
// WHERE clause is already open ("WHERE 1=1" or conditions).
func pageQuery(query, idCol string, o order, args []any, p keyward.Page) (string, []any) {
	cmp, dir := " > ", ""
	if o == newestFirst {
		cmp, dir = " < ", " DESC"
	}
	if p.After != "" {
		query += " AND " + idCol + cmp + "?"
		args = append(args, p.After)
	}
	query += " ORDER BY " + idCol + dir + " LIMIT ?"
	return query, append(args, p.Size()+1)
}

// page trims items fetched by pageQuery to the page size and returns the
// cursor of the next page, "" if this is the last.
func page[T any](items []T, p keyward.Page, id func(T) string) ([]T, string) {
	if len(items) <= p.Size() {
		return items, ""
	}
	items = items[:p.Size()]
	return items, id(items[len(items)-1])
}

// queryRows runs query on q and scans every row with scan.
func queryRows[T any](ctx context.Context, q querier, query string, args []any, scan func(scanner) (T, error)) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		x, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, rows.Err()
}

// nonNil returns xs, or an empty slice for nil, so it is stored as [].
func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}
