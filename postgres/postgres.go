// Package postgres implements keyward.Store on PostgreSQL with pgx/v5 and
// a connection pool, for deployments where several keyward instances share
// one database.
//
// Every read-modify-write (UpdateAccount, UpdateKey, RotateKey) runs in one
// transaction that first locks the row with SELECT ... FOR UPDATE, so
// concurrent updates from any number of instances queue instead of losing
// each other's changes. The fn given to those methods runs while the
// transaction is open, so it must not call the Store.
//
// pgx prepares each statement once per connection and caches it (the
// default QueryExecModeCacheStatement), so KeyByHash, the verification
// cache's miss path, is one round trip of a prepared statement. Behind a
// pooler that cannot keep prepared statements, set
// default_query_exec_mode=exec in the URL.
//
// Every write method that changes state appends the audit entry of its
// keyward.Change in its own transaction; appends
// queue on an advisory lock of the schema, so entries are numbered without
// gaps across instances.
//
// The tables live in one schema (see Options.Schema) and are created and
// upgraded by embedded, numbered migrations when the store is opened, under
// an advisory lock, so instances starting together migrate once.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"regexp"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/keyward/keyward"
	"github.com/keyward/keyward/tracing"
	"go.opentelemetry.io/otel/trace"
)

// defaultConnectTimeout bounds a connection attempt when the URL sets no
// connect_timeout, so an unreachable server fails fast with EUNAVAILABLE.
const defaultConnectTimeout = 5 * time.Second

// Store is a keyward.Store on PostgreSQL. It is safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	schema string
	closed atomic.Bool
	// storage tracks disk_full episodes.
	storage keyward.StorageFull
}

var _ keyward.Store = (*Store)(nil)

// Options configure OpenOptions and Migrate.
type Options struct {
	// Schema is the schema that holds keyward's tables; it is created if
	// missing and becomes the connections' search_path. Empty means the
	// URL's search_path when it names a single schema (created if missing),
	// else the connection's current schema (usually public), which must
	// exist. A schema name is lower case letters, digits and underscores,
	// not starting with a digit, at most 63 characters.
	Schema string
	// TracerProvider traces the queries run inside a sampled request, a
	// client span each (trace.go). Nil: none.
	TracerProvider trace.TracerProvider
}

// schemaName is what Options.Schema accepts: identifiers PostgreSQL does not
// fold or need quoted.
var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Open connects to the PostgreSQL database at url (a postgres:// URL or a
// key=value DSN, as pgx accepts) with the default Options, and applies
// pending migrations. See OpenOptions.
func Open(ctx context.Context, url string) (*Store, error) {
	return OpenOptions(ctx, url, Options{})
}

// OpenOptions connects to the PostgreSQL database at url, creates the
// schema if needed and applies pending migrations. It refuses a schema
// newer than this binary knows. EUNAVAILABLE if the database cannot be
// reached, EINVALID for a bad URL or schema name. Pool settings come from
// the URL (pool_max_conns, ...); connect_timeout defaults to 5s.
func OpenOptions(ctx context.Context, url string, opts Options) (*Store, error) {
	cfg, schema, err := parseConfig(url, opts)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", mapError(err, nil))
	}
	s := &Store{pool: pool}
	if s.schema, _, _, err = migrate(ctx, pool, schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	return s, nil
}

// parseConfig parses url and settles the schema: the returned schema is ""
// when the connection's current schema is to be used as it is.
func parseConfig(url string, opts Options) (*pgxpool.Config, string, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The parse error masks passwords (best effort); it is logged, not
		// shown to clients.
		return nil, "", keyward.WrapError(keyward.EINVALID, err, "invalid PostgreSQL URL")
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	if tracer := tracing.Tracer(opts.TracerProvider); tracer != nil {
		cfg.ConnConfig.Tracer = queryTracer{tracer}
	}
	schema := opts.Schema
	if schema == "" {
		// A search_path naming one plain schema is taken as the schema, so
		// a URL alone can select it; a list is left to the server.
		if sp := cfg.ConnConfig.RuntimeParams["search_path"]; schemaName.MatchString(sp) {
			schema = sp
		}
	}
	if schema != "" {
		if !schemaName.MatchString(schema) {
			return nil, "", keyward.Errorf(keyward.EINVALID,
				"schema %q: use lower case letters, digits and underscores, not starting with a digit, at most 63 characters", schema)
		}
		cfg.ConnConfig.RuntimeParams["search_path"] = schema
	}
	return cfg, schema, nil
}

// Schema returns the name of the schema that holds the store's tables.
func (s *Store) Schema() string { return s.schema }

// Ping checks that the database answers; EUNAVAILABLE if it does not or
// the store is closed.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return keyward.Errorf(keyward.EUNAVAILABLE, "postgres: ping: store is closed")
	}
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", keyward.WrapError(keyward.EUNAVAILABLE, err, "database unavailable"))
	}
	return nil
}

// Close closes the pool, waiting for connections in use to be released. It
// is safe to call more than once.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.pool.Close()
	return nil
}

// write runs fn in a transaction (see inTx) and, if fn succeeds, writes the
// events of ch to the outbox, records its key notice and appends its audit
// entry in the same transaction, so
// the change, its announcements and its entry commit together or not at
// all. Every write method that changes state uses it, except the hot-path
// bookkeeping (TouchKeys, SpendCredits, WriteCredits).
func (s *Store) write(ctx context.Context, ch keyward.Change, fn func(tx pgx.Tx) error) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if err := s.insertEvents(ctx, tx, ch.Events); err != nil {
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

// inTx runs fn in a transaction and commits it unless fn fails. Errors of
// fn are returned as they are; fn maps its own driver errors. It does not
// touch the audit log: see write.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return s.dbError(err, nil)
	}
	defer tx.Rollback(ctx) // after Commit, a no-op
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return s.dbError(err, nil)
	}
	s.storage.Wrote()
	return nil
}

// lockKey returns the advisory lock key of a named lock in schema, so that
// stores in different schemas of one database do not wait for each other.
func lockKey(schema, name string) int64 {
	h := fnv.New64a()
	io.WriteString(h, "keyward\x00"+schema+"\x00"+name)
	return int64(h.Sum64())
}

// conflicts maps constraint names to the client-safe message of their
// violation.
type conflicts map[string]string

// dbError maps a driver error to a *keyward.Error (see mapError), and any
// error of a closed store to EUNAVAILABLE. *keyward.Error values pass
// through unchanged.
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
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "53100" { // disk_full
		return s.storage.Refused(err)
	}
	return mapError(err, c)
}

// Storage implements keyward.StorageReporter: whether writes are refused
// with disk_full (SQLSTATE 53100).
func (s *Store) Storage() *keyward.StorageFull { return &s.storage }

// mapError maps a driver error to a *keyward.Error by its SQLSTATE, never
// by message text, keeping the driver error as the internal cause; c gives
// the messages of named constraints. Errors it does not recognise are
// returned unchanged (EINTERNAL).
func mapError(err error, c conflicts) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		msg := c[pe.ConstraintName]
		switch code := sqlstateCode(pe.Code); code {
		case keyward.ECONFLICT:
			return keyward.WrapError(code, err, "%s", or(msg, "value already exists"))
		case keyward.ENOTFOUND:
			return keyward.WrapError(code, err, "%s", or(msg, "referenced record does not exist"))
		case keyward.EINVALID:
			return keyward.WrapError(code, err, "%s", or(msg, "value cannot be stored"))
		case keyward.EUNAVAILABLE:
			return keyward.WrapError(code, err, "database unavailable")
		}
		return err
	}
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return keyward.WrapError(keyward.ENOTFOUND, err, "not found")
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err):
		return keyward.WrapError(keyward.EUNAVAILABLE, err, "database request canceled or timed out")
	case isConnError(err):
		return keyward.WrapError(keyward.EUNAVAILABLE, err, "database unavailable")
	}
	return err
}

// sqlstateCode returns the keyward error code of a SQLSTATE, "" if it has
// none.
func sqlstateCode(sqlstate string) string {
	switch sqlstate {
	case "23505": // unique_violation
		return keyward.ECONFLICT
	case "23503": // foreign_key_violation
		return keyward.ENOTFOUND
	case "23502", "23514": // not_null_violation, check_violation
		return keyward.EINVALID
	case "57P01", "57P02", "57P03", // admin_shutdown, crash_shutdown, cannot_connect_now
		"57014",          // query_canceled (statement_timeout)
		"40001", "40P01": // serialization_failure, deadlock_detected: worth a retry
		return keyward.EUNAVAILABLE
	}
	switch sqlstate[:min(2, len(sqlstate))] {
	case "22": // data exception: 22P02 invalid text, 22P05 \u0000 in jsonb, 22021 bad encoding, ...
		return keyward.EINVALID
	case "08", "53": // connection exception, insufficient resources
		return keyward.EUNAVAILABLE
	}
	return ""
}

// isConnError reports whether err means the server could not be reached or
// the connection broke.
func isConnError(err error) bool {
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// nullString stores "" as NULL.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// utc returns t in UTC; pgx reads timestamptz in the local zone.
func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
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
// WHERE clause is already open ("WHERE true" or conditions).
func pageQuery(query, idCol string, o order, args []any, p keyward.Page) (string, []any) {
	cmp, dir := " > ", ""
	if o == newestFirst {
		cmp, dir = " < ", " DESC"
	}
	if p.After != "" {
		args = append(args, p.After)
		query += " AND " + idCol + cmp + "$" + strconv.Itoa(len(args))
	}
	args = append(args, p.Size()+1)
	return query + " ORDER BY " + idCol + dir + " LIMIT $" + strconv.Itoa(len(args)), args
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

// collect reads every row with scan into a non-nil slice.
func collect[T any](rows pgx.Rows, scan func(pgx.Row) (T, error)) ([]T, error) {
	defer rows.Close()
	items := []T{}
	for rows.Next() {
		it, err := scan(rows)
		if err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	return items, rows.Err()
}
