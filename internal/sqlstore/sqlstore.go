// Package sqlstore implements keyward.Store once for the SQL backends, on
// database/sql: SQLite (package sqlite, driver modernc.org/sqlite) and
// PostgreSQL (package postgres, pgx through its database/sql driver). What
// the two databases do differently is behind a Dialect: placeholders,
// locking, constraint errors, batch statements. The backend packages open
// the database, migrate it, classify its errors and deliver invalidations;
// everything else lives here.
//
// Queries are written with ? placeholders; the dialect rewrites them
// (PostgreSQL: $1, $2, ...) once per distinct query. Times are stored in
// UTC with microseconds: as fixed-width text on SQLite, whose string order
// is time order, and as timestamptz on PostgreSQL, which parses the same
// text.
//
// Every write method that changes state runs in one transaction with the
// audit entry, events and key notice of its keyward.Change, so a change and
// its records commit together or not at all. Read-modify-writes read their
// rows with the dialect's locking clause (PostgreSQL: FOR UPDATE; SQLite:
// none, its single writer connection serialises them), so concurrent
// updates queue instead of losing each other's changes. The fn given to the
// Update and Rotate methods runs while the transaction is open, so it must
// not call the Store.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward"
)

// Dialect is what a backend tells the store about its database.
type Dialect interface {
	// Name prefixes the store's error messages ("sqlite", "postgres").
	Name() string
	// Numbered reports whether placeholders are numbered ($1, $2, ...)
	// rather than ?.
	Numbered() bool
	// ForUpdate is the clause that locks the rows a read-modify-write
	// reads ("FOR UPDATE"), "" when the writer is already exclusive.
	ForUpdate() string
	// Lock takes the lock of name until tx ends, so that writers of every
	// instance sharing the database take turns (an audit append, a
	// bootstrap); nil when the writer is already exclusive.
	Lock(ctx context.Context, tx *Tx, name string) error
	// List and ListDest encode and decode a list of strings stored in one
	// column: a JSON array on SQLite, text[] on PostgreSQL. nil is stored
	// as the empty list.
	List(xs []string) any
	ListDest(xs *[]string) any
	// Micros is the expression of a time column as Unix microseconds.
	Micros(col string) string
	// NoTime is the SQL value of a time column that holds none where the
	// column is NOT NULL on SQLite ('') and nullable on PostgreSQL (NULL).
	NoTime() string
	// JSONField is the expression of the text of field in the JSON object
	// of column col.
	JSONField(col, field string) string
	// Classify maps a driver error to a *keyward.Error (with ECONFLICT,
	// ENOTFOUND and EINVALID for the constraint violations, their message
	// from c), keeping the driver error as the cause; errors it does not
	// recognise come back unchanged. storage records a full disk.
	Classify(err error, c Conflicts, storage *keyward.StorageFull) error
}

// Scanner reads the columns of a row: a *sql.Row, *sql.Rows or a driver's
// own row.
type Scanner interface {
	Scan(dest ...any) error
}

// RowReader is implemented by a Dialect that reads one row faster than
// database/sql can (PostgreSQL: pgx itself, without database/sql's
// conversions); the store then reads the keys of Key and KeyByHash, the
// verification cache's miss path, with it. A missing row is an error that
// is sql.ErrNoRows.
type RowReader interface {
	QueryRow(ctx context.Context, query string, args ...any) Scanner
}

// BatchInserter is implemented by a Dialect with a faster way than
// multi-row INSERTs to insert many rows in a transaction (PostgreSQL:
// COPY). The values of rows are those the store binds to an INSERT's
// parameters, times as FormatTime writes them.
type BatchInserter interface {
	InsertRows(ctx context.Context, tx *Tx, table string, cols []string, rows [][]any) error
}

// Conflicts holds the client-safe messages for the constraint violations a
// statement can cause.
type Conflicts struct {
	PK     string // the primary key (the id) is taken
	Unique string // another unique column is taken
	FK     string // a referenced row is missing
}

// Store is a keyward.Store on a SQL database. It is safe for concurrent use.
type Store struct {
	d    Dialect
	name string
	w    *DB // every write goes through it
	r    *DB // reads; the same pool as w on PostgreSQL

	// The key lookups (KeyByHash's two steps and Key): prepared
	// statements, or the queries of rows.
	keyByHashStmt, metersStmt, keyByIDStmt *sql.Stmt
	rows                                   RowReader
	keyByHashSQL, metersSQL, keyByIDSQL    string

	closed atomic.Bool
	// storage tracks full-disk episodes.
	storage keyward.StorageFull
}

var _ keyward.Store = (*Store)(nil)

// New returns a store on w, which takes every write, and r, which takes the
// reads (it may be w). The schema must be migrated. The store owns w and r:
// Close closes them.
func New(ctx context.Context, d Dialect, w, r *sql.DB) (*Store, error) {
	s := &Store{d: d, name: d.Name()}
	s.w = &DB{DB: w, d: d}
	s.r = &DB{DB: r, d: d}
	s.keyByHashSQL, s.metersSQL = rebind(d, selectKeyRow), rebind(d, selectMeters)
	s.keyByIDSQL = rebind(d, selectKey+" WHERE k.id = ?")
	if rr, ok := d.(RowReader); ok {
		s.rows = rr
		return s, nil
	}
	var err error
	for _, st := range []struct {
		stmt  **sql.Stmt
		query string
	}{{&s.keyByHashStmt, selectKeyRow}, {&s.metersStmt, selectMeters}, {&s.keyByIDStmt, selectKey + " WHERE k.id = ?"}} {
		if *st.stmt, err = s.r.PrepareContext(ctx, st.query); err != nil {
			break
		}
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("%s: prepare: %w", s.name, err)
	}
	return s, nil
}

// Storage implements keyward.StorageReporter: whether writes are refused
// because the disk (or a database size limit) is full.
func (s *Store) Storage() *keyward.StorageFull { return &s.storage }

// Writer returns the database writes go through, for the backend's own
// statements (PRAGMAs, the invalidation bus).
func (s *Store) Writer() *DB { return s.w }

// Reader returns the database reads go through.
func (s *Store) Reader() *DB { return s.r }

// Ping checks that the database answers a query; EUNAVAILABLE if it does
// not or the store is closed.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return keyward.Errorf(keyward.EUNAVAILABLE, "%s: ping: store is closed", s.name)
	}
	var one int
	if err := s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("%s: ping: %w", s.name, keyward.WrapError(keyward.EUNAVAILABLE, err, "database unavailable"))
	}
	return nil
}

// Close closes the databases. It is safe to call more than once; later
// calls return nil.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	var errs []error
	for _, st := range []*sql.Stmt{s.keyByHashStmt, s.metersStmt, s.keyByIDStmt} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if s.r.DB != s.w.DB {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: close: %w", s.name, err)
	}
	return nil
}

// errorf is fmt.Errorf with the dialect's name as prefix.
func (s *Store) errorf(format string, args ...any) error {
	return fmt.Errorf(s.name+": "+format, args...)
}

// write runs fn in a transaction (see WriteUnaudited) and, if fn succeeds,
// writes the events of ch to the outbox, records its key notice and
// appends its audit entry in the same transaction, so the change, its
// announcements and its entry commit together or not at all. Every write
// method that changes state uses it, except the hot-path bookkeeping.
func (s *Store) write(ctx context.Context, ch keyward.Change, fn func(tx *Tx) error) error {
	return s.WriteUnaudited(ctx, func(tx *Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return s.writeChange(ctx, tx, ch)
	})
}

// writeChange writes the records of a change in its transaction: its
// events, key notice and audit entry.
func (s *Store) writeChange(ctx context.Context, tx *Tx, ch keyward.Change) error {
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
}

// WriteUnaudited runs fn in a transaction on the writer and commits it
// unless fn fails, without touching the audit log: it is for bookkeeping of
// the hot path (TouchKeys, SpendCredits, WriteCredits), for AppendAudit and
// for the backends' own writes. Errors of fn are returned as they are.
func (s *Store) WriteUnaudited(ctx context.Context, fn func(tx *Tx) error) error {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return s.Error(err, Conflicts{})
	}
	defer conn.Close()
	sqlTx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return s.Error(err, Conflicts{})
	}
	tx := &Tx{Tx: sqlTx, conn: conn, d: s.d}
	if err := fn(tx); err != nil {
		sqlTx.Rollback()
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return s.Error(err, Conflicts{})
	}
	s.storage.Wrote()
	return nil
}

// Error maps a driver error to a *keyward.Error (see Dialect.Classify), and
// any error of a closed store or a canceled request to EUNAVAILABLE.
// *keyward.Error values pass through unchanged.
func (s *Store) Error(err error, c Conflicts) error {
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
	return s.d.Classify(err, c, &s.storage)
}

// dbError is Error, for the store's own statements.
func (s *Store) dbError(err error, c Conflicts) error { return s.Error(err, c) }

// DB is a *sql.DB whose queries are written with ? placeholders.
type DB struct {
	*sql.DB
	d Dialect
}

// Tx is a *sql.Tx whose queries are written with ? placeholders.
type Tx struct {
	*sql.Tx
	conn *sql.Conn
	d    Dialect
}

// Raw runs f with the driver's connection of the transaction (see
// sql.Conn.Raw), for a statement database/sql cannot express.
func (tx *Tx) Raw(f func(driverConn any) error) error { return tx.conn.Raw(f) }

// rebound caches the queries rewritten for numbered placeholders.
var rebound sync.Map

// rebind rewrites the placeholders of query for d: ?N (SQLite's numbered
// parameter) becomes $N, and each other ? the next number.
func rebind(d Dialect, query string) string {
	if !d.Numbered() || !strings.Contains(query, "?") {
		return query
	}
	if q, ok := rebound.Load(query); ok {
		return q.(string)
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		c := query[i]
		if c != '?' {
			b.WriteByte(c)
			continue
		}
		if i+1 < len(query) && query[i+1] >= '0' && query[i+1] <= '9' {
			b.WriteByte('$') // ?N is $N
			continue
		}
		n++
		b.WriteString("$" + strconv.Itoa(n))
	}
	q := b.String()
	rebound.Store(query, q)
	return q
}

func (db *DB) rebind(query string) string { return rebind(db.d, query) }

// PrepareContext is sql.DB.PrepareContext of a query with ? placeholders.
func (db *DB) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return db.DB.PrepareContext(ctx, db.rebind(query))
}

// ExecContext is sql.DB.ExecContext of a query with ? placeholders.
func (db *DB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return db.DB.ExecContext(ctx, db.rebind(query), args...)
}

// QueryContext is sql.DB.QueryContext of a query with ? placeholders.
func (db *DB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return db.DB.QueryContext(ctx, db.rebind(query), args...)
}

// QueryRowContext is sql.DB.QueryRowContext of a query with ? placeholders.
func (db *DB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return db.DB.QueryRowContext(ctx, db.rebind(query), args...)
}

// PrepareContext is sql.Tx.PrepareContext of a query with ? placeholders.
func (tx *Tx) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return tx.Tx.PrepareContext(ctx, rebind(tx.d, query))
}

// ExecContext is sql.Tx.ExecContext of a query with ? placeholders.
func (tx *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return tx.Tx.ExecContext(ctx, rebind(tx.d, query), args...)
}

// QueryContext is sql.Tx.QueryContext of a query with ? placeholders.
func (tx *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return tx.Tx.QueryContext(ctx, rebind(tx.d, query), args...)
}

// QueryRowContext is sql.Tx.QueryRowContext of a query with ? placeholders.
func (tx *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return tx.Tx.QueryRowContext(ctx, rebind(tx.d, query), args...)
}

// locked returns query with the dialect's locking clause when q is a
// transaction: the rows a read-modify-write reads stay locked until it
// commits. of names the table to lock in a join ("" for all).
func (s *Store) locked(q querier, query, of string) string {
	f := s.d.ForUpdate()
	if _, inTx := q.(*Tx); !inTx || f == "" {
		return query
	}
	if of != "" {
		f += " OF " + of
	}
	return query + " " + f
}

// claimed is locked for a claim: rows another instance holds are skipped
// rather than waited for, so instances working at the same time take
// different rows.
func (s *Store) claimed(tx *Tx, query, of string) string {
	if q := s.locked(tx, query, of); q != query {
		return q + " SKIP LOCKED"
	}
	return query
}

// timeLayout is how times are written: UTC, fixed width, microseconds, so
// that string order is time order.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// FormatTime returns the stored form of t.
func FormatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// nullTime returns the stored form of an optional time.
func nullTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return FormatTime(*t)
}

// nullString stores "" as NULL.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// parseTime parses a stored time: the text SQLite keeps, or a timestamptz
// as database/sql renders it in a string (RFC 3339).
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("stored time %q: %w", s, err)
	}
	return t.UTC(), nil
}

// storedTime scans a stored time: a time.Time (PostgreSQL) or its text
// (SQLite). Valid is false for NULL.
type storedTime struct {
	Time  time.Time
	Valid bool
}

// Scan implements sql.Scanner.
func (t *storedTime) Scan(src any) error {
	var err error
	switch v := src.(type) {
	case nil:
		*t = storedTime{}
		return nil
	case time.Time:
		t.Time = v.UTC()
	case string:
		t.Time, err = parseTime(v)
	case []byte:
		t.Time, err = parseTime(string(v))
	default:
		return fmt.Errorf("stored time: %T is not a time", src)
	}
	t.Valid = err == nil
	return err
}

// ptr returns the time, nil for NULL.
func (t storedTime) ptr() *time.Time {
	if !t.Valid {
		return nil
	}
	return &t.Time
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

// scanner is a *sql.Row, *sql.Rows or a RowReader's row.
type scanner = Scanner

// querier is a *DB or *Tx.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
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

// listPage runs query, a list filtered by args, as one page p ordered by
// idCol (pageQuery), scans its rows with scan and returns them with the
// cursor of the next page (id of the last row). what names the list in
// errors.
func listPage[T any](ctx context.Context, s *Store, what, query string, args []any, idCol string, o order, p keyward.Page, scan func(scanner) (T, error), id func(T) string) ([]T, string, error) {
	query, args = pageQuery(query, idCol, o, args, p)
	items, err := queryRows(ctx, s.r, query, args, scan)
	if err != nil {
		return nil, "", s.errorf("%s: %w", what, s.dbError(err, Conflicts{}))
	}
	items, next := page(items, p, id)
	return items, next, nil
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
