// Package postgres opens keyward's store (package internal/sqlstore) on
// PostgreSQL, through pgx's database/sql driver, for deployments where
// several keyward instances share one database.
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
// keyward.Change in its own transaction; appends queue on an advisory lock
// of the schema, so entries are numbered without gaps across instances.
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
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/tracing"
	"go.opentelemetry.io/otel/trace"
)

// defaultConnectTimeout bounds a connection attempt when the URL sets no
// connect_timeout, so an unreachable server fails fast with EUNAVAILABLE.
const defaultConnectTimeout = 5 * time.Second

// Store is a keyward.Store on PostgreSQL. It is safe for concurrent use.
type Store struct {
	*sqlstore.Store
	pool     *pgxpool.Pool
	schema   string
	replicas *replicaSet // nil without Options.Replicas
	// closeReplicas closes replicas once, as Close may be called again.
	closeReplicas sync.Once
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
	// Replicas are URLs of streaming read replicas of the database (hot
	// standbys): key lookups on a cache miss read them when they are
	// fresh enough (replica.go). Every other statement goes to the primary.
	Replicas []string
	// ReplicaMaxLag is how far behind the primary a replica may fall and
	// still be read. Default DefaultReplicaMaxLag.
	ReplicaMaxLag time.Duration
	// ReplicaPoll is how often the replicas' lag is measured. Default
	// DefaultReplicaPoll.
	ReplicaPoll time.Duration
	// Logger logs the replicas that are not read, and why. Nil:
	// slog.Default().
	Logger *slog.Logger
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
// the URL (pool_max_conns, pool_max_conn_lifetime,
// pool_max_conn_idle_time); connect_timeout defaults to 5s.
func OpenOptions(ctx context.Context, url string, opts Options) (*Store, error) {
	cfg, schema, err := parseConfig(url, opts)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", mapError(err, sqlstore.Conflicts{}))
	}
	if schema, _, _, err = migrate(ctx, pool, schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	// database/sql borrows the pool's connections, so pgx's statement
	// cache and tracer serve both.
	db := stdlib.OpenDBFromPool(pool)
	st, err := sqlstore.New(ctx, dialect{schema: schema, pool: pool}, db, db)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open: %w", mapError(err, sqlstore.Conflicts{}))
	}
	s := &Store{Store: st, pool: pool, schema: schema}
	if len(opts.Replicas) > 0 {
		if s.replicas, err = openReplicas(opts.Replicas, schema, pool, opts); err != nil {
			st.Close()
			pool.Close()
			return nil, fmt.Errorf("postgres: open: %w", err)
		}
	}
	return s, nil
}

// KeyByHash returns the key with hash h, with AccountDisabled filled;
// ENOTFOUND if none. With Options.Replicas it reads a replica fresh enough
// for ctx (see replica.go), then the primary.
func (s *Store) KeyByHash(ctx context.Context, h keyward.KeyHash) (*keyward.Key, error) {
	if s.replicas == nil {
		return s.Store.KeyByHash(ctx, h)
	}
	return s.keyByHash(ctx, h)
}

// ReplicaMaxLag implements keyward.ReplicaReader: Options.ReplicaMaxLag,
// zero without replicas.
func (s *Store) ReplicaMaxLag() time.Duration {
	if s.replicas == nil {
		return 0
	}
	return s.replicas.maxLag
}

var _ keyward.ReplicaReader = (*Store)(nil)

// Close closes the store and its connection pool, waiting for connections
// in use to be released. It is safe to call more than once.
func (s *Store) Close() error {
	if s.replicas != nil {
		s.closeReplicas.Do(s.replicas.close)
	}
	err := s.Store.Close()
	s.pool.Close()
	return err
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

// lockKey returns the advisory lock key of a named lock in schema, so that
// stores in different schemas of one database do not wait for each other.
func lockKey(schema, name string) int64 {
	h := fnv.New64a()
	io.WriteString(h, "keyward\x00"+schema+"\x00"+name)
	return int64(h.Sum64())
}

// dialect is PostgreSQL's sqlstore.Dialect: numbered placeholders, row
// locks and transaction-scoped advisory locks of the schema. It reads the
// keys of the verification cache's miss path with pgx directly
// (sqlstore.RowReader): database/sql's conversions cost about as much CPU
// as the rest of the lookup.
type dialect struct {
	schema string
	pool   *pgxpool.Pool
}

// QueryRow implements sqlstore.RowReader.
func (d dialect) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Scanner {
	return d.pool.QueryRow(ctx, query, args...)
}

func (dialect) Name() string      { return "postgres" }
func (dialect) Numbered() bool    { return true }
func (dialect) ForUpdate() string { return "FOR UPDATE" }

func (d dialect) Lock(ctx context.Context, tx *sqlstore.Tx, name string) error {
	_, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(?)", lockKey(d.schema, name))
	return err
}

func (dialect) JSONField(col, field string) string { return col + "->>'" + field + "'" }

// Classify maps a driver error by its SQLSTATE (see mapError); disk_full
// marks the storage full.
func (dialect) Classify(err error, c sqlstore.Conflicts, storage *keyward.StorageFull) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "53100" { // disk_full
		return storage.Refused(err)
	}
	return mapError(err, c)
}

// mapError maps a driver error to a *keyward.Error by its SQLSTATE, never
// by message text, keeping the driver error as the internal cause; c gives
// the messages of the constraint violations. Errors it does not recognise
// are returned unchanged (EINTERNAL).
func mapError(err error, c sqlstore.Conflicts) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch code := sqlstateCode(pe.Code); code {
		case keyward.ECONFLICT:
			msg := c.Unique
			if strings.HasSuffix(pe.ConstraintName, "_pkey") {
				msg = c.PK
			}
			return keyward.WrapError(code, err, "%s", or(msg, "value already exists"))
		case keyward.ENOTFOUND:
			return keyward.WrapError(code, err, "%s", or(c.FK, "referenced record does not exist"))
		case keyward.EINVALID:
			return keyward.WrapError(code, err, "value cannot be stored")
		case keyward.EUNAVAILABLE:
			return keyward.WrapError(code, err, "database unavailable")
		}
		return err
	}
	switch {
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

// typeMaps holds pgtype.Maps, which decode PostgreSQL values database/sql
// does not know (arrays); a Map is not safe for concurrent use.
var typeMaps = sync.Pool{New: func() any { return pgtype.NewMap() }}

// List passes a list of strings as it is: pgx encodes it as text[].
func (dialect) List(xs []string) any {
	if xs == nil {
		return []string{}
	}
	return xs
}

func (dialect) ListDest(xs *[]string) any { return textArray{xs} }

// textArray scans a text[]: from database/sql (sql.Scanner, the array's
// text) and from pgx (pgtype.ArraySetter, its elements).
type textArray struct{ xs *[]string }

func (a textArray) Scan(src any) error {
	m := typeMaps.Get().(*pgtype.Map)
	defer typeMaps.Put(m)
	return m.SQLScanner(a.xs).Scan(src)
}

// SetDimensions implements pgtype.ArraySetter.
func (a textArray) SetDimensions(dims []pgtype.ArrayDimension) error {
	if len(dims) == 0 {
		*a.xs = nil
		return nil
	}
	n := 1
	for _, d := range dims {
		n *= int(d.Length)
	}
	*a.xs = make([]string, n)
	return nil
}

// ScanIndex implements pgtype.ArraySetter.
func (a textArray) ScanIndex(i int) any { return &(*a.xs)[i] }

// ScanIndexType implements pgtype.ArraySetter.
func (a textArray) ScanIndexType() any { return new(string) }

func (dialect) Micros(col string) string {
	return "CAST(EXTRACT(EPOCH FROM " + col + ") * 1000000 AS bigint)"
}

func (dialect) NoTime() string { return "NULL" }

// timestamptzColumns caches, per table, which columns hold times.
var timestamptzColumns sync.Map // table -> map[string]bool

// InsertRows implements sqlstore.BatchInserter with one COPY. COPY encodes
// binary, so the times the store passes as text are parsed first.
func (dialect) InsertRows(ctx context.Context, tx *sqlstore.Tx, table string, cols []string, rows [][]any) error {
	return tx.Raw(func(dc any) error {
		conn := dc.(*stdlib.Conn).Conn()
		times, err := timeColumns(ctx, conn, table, cols)
		if err != nil {
			return err
		}
		for _, row := range rows {
			for i, v := range row {
				if s, ok := v.(string); ok && times[cols[i]] {
					if row[i], err = time.Parse(time.RFC3339Nano, s); err != nil {
						return err
					}
				}
			}
		}
		_, err = conn.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(rows))
		return err
	})
}

// timeColumns returns which of cols of table are timestamptz.
func timeColumns(ctx context.Context, conn *pgx.Conn, table string, cols []string) (map[string]bool, error) {
	if m, ok := timestamptzColumns.Load(table); ok {
		return m.(map[string]bool), nil
	}
	rows, err := conn.Query(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM "+pgx.Identifier{table}.Sanitize()+" LIMIT 0")
	if err != nil {
		return nil, err
	}
	rows.Close()
	m := map[string]bool{}
	for _, fd := range rows.FieldDescriptions() {
		m[fd.Name] = fd.DataTypeOID == pgtype.TimestamptzOID
	}
	timestamptzColumns.Store(table, m)
	return m, rows.Err()
}
