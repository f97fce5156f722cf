package keywardtest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keyward/keyward/postgres"
)

// PostgresSchemas hands out migrated, empty schemas of the PostgreSQL test
// database to the tests of one suite. Creating a schema runs every
// migration, which costs PostgreSQL far more than most tests do; a schema
// whose test has ended is emptied (its tables truncated, the record of its
// migrations kept) and handed to the next test instead. Every schema is
// dropped when the test given to NewPostgresSchemas ends, after its
// subtests, parallel ones included.
type PostgresSchemas struct {
	suite testing.TB
	dbURL string

	mu   sync.Mutex
	free []string
}

// NewPostgresSchemas returns the schemas of the suite t runs on the
// PostgreSQL test database at dbURL.
func NewPostgresSchemas(t testing.TB, dbURL string) *PostgresSchemas {
	return &PostgresSchemas{suite: t, dbURL: dbURL}
}

// Open returns a store on a schema no other test is using, with every
// migration applied and no rows, whose commits do not wait for the WAL
// flush (PostgresNoSync). The store is closed when t ends; then its schema
// is emptied for the next test.
func (p *PostgresSchemas) Open(t testing.TB) *postgres.Store {
	t.Helper()
	p.mu.Lock()
	var schema string
	if n := len(p.free); n > 0 {
		schema, p.free = p.free[n-1], p.free[:n-1]
	}
	p.mu.Unlock()
	if schema == "" {
		// Dropped with the suite, not with t: later tests reuse it.
		schema = NewPostgresSchema(p.suite, p.dbURL)
	}
	// Registered before the store's Close, so it runs after it.
	t.Cleanup(func() {
		if err := p.empty(schema); err != nil {
			t.Errorf("empty schema %s for the next test: %v", schema, err)
			return // not reused; dropped with the suite
		}
		p.mu.Lock()
		p.free = append(p.free, schema)
		p.mu.Unlock()
	})
	s, err := postgres.OpenOptions(t.Context(), PostgresNoSync(p.dbURL), postgres.Options{Schema: schema})
	if err != nil {
		t.Fatalf("open postgres store in schema %s: %v", schema, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// empty deletes the rows of every table of schema but schema_migrations,
// a table only once no table left refers to it. (DELETE, not TRUNCATE:
// truncating makes new files for every table and index, which costs more
// than the migrations.)
func (p *PostgresSchemas) empty(schema string) error {
	// t.Context is canceled before cleanups run.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, PostgresNoSync(p.dbURL))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT c.relname, coalesce(f.relname, '') FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_constraint k ON k.conrelid = c.oid AND k.contype = 'f'
		LEFT JOIN pg_class f ON f.oid = k.confrelid
		WHERE n.nspname = $1 AND c.relkind = 'r' AND c.relname <> 'schema_migrations'`, schema)
	if err != nil {
		return err
	}
	refersTo := map[string][]string{} // table -> the tables it refers to
	var scan struct{ table, ref string }
	if _, err := pgx.ForEachRow(rows, []any{&scan.table, &scan.ref}, func() error {
		refs := refersTo[scan.table]
		if scan.ref != "" && scan.ref != scan.table {
			refs = append(refs, scan.ref)
		}
		refersTo[scan.table] = refs
		return nil
	}); err != nil {
		return err
	}
	var stmts []string
	for len(refersTo) > 0 {
		n := len(refersTo)
		for table := range refersTo {
			if !referred(refersTo, table) {
				stmts = append(stmts, "DELETE FROM "+pgx.Identifier{schema, table}.Sanitize())
				delete(refersTo, table)
			}
		}
		if len(refersTo) == n {
			return fmt.Errorf("foreign keys in a cycle among %v", refersTo)
		}
	}
	// Several statements in one Exec run in one transaction.
	_, err = conn.Exec(ctx, strings.Join(stmts, "; "))
	return err
}

// referred reports whether a table of refersTo other than table refers to it.
func referred(refersTo map[string][]string, table string) bool {
	for from, refs := range refersTo {
		if from != table && slices.Contains(refs, table) {
			return true
		}
	}
	return false
}
