package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/server"
	"github.com/keyward/keyward/keywardtest"
)

// backend is a store for an in-process server, with a way to change its
// database behind keyward's back, as someone with write access to the
// database (and no master key) could.
type backend struct {
	name string
	// env configures the server; it keeps the data directory, so the
	// server can be stopped and started again on the same store.
	env map[string]string
	// exec runs a statement on the store's database.
	exec func(t *testing.T, query string)
	// rebuildAt replaces the stopped store's database with one built by
	// the backend's migration files up to version, holding the rows of the
	// old one in the columns that version has.
	rebuildAt func(t *testing.T, version int)
}

// migrationFiles returns the paths of the first version migration files
// of a backend (sqlite or postgres), in version order.
func migrationFiles(t *testing.T, backend string, version int) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", backend, "migrations", "*.sql"))
	if err != nil || len(files) < version {
		t.Fatalf("%s migration files: %v, %v; want at least %d", backend, files, err, version)
	}
	slices.Sort(files)
	return files[:version]
}

// applyMigrations runs backend's first version migration files with run,
// each followed by record (its version and file name as arguments).
func applyMigrations(t *testing.T, backend string, version int, run func(query string, args ...any), record string) {
	t.Helper()
	for i, f := range migrationFiles(t, backend, version) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		run(string(b))
		run(record, i+1, filepath.Base(f))
	}
}

// backends returns a fresh SQLite store and a fresh PostgreSQL schema.
func backends(t *testing.T) []backend {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	sqliteEnv := map[string]string{"KEYWARD_DATA": data}
	bs := []backend{{name: "sqlite", env: sqliteEnv, exec: func(t *testing.T, query string) {
		t.Helper()
		db, err := sql.Open("sqlite", filepath.Join(data, "keyward.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.ExecContext(t.Context(), query); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}, rebuildAt: func(t *testing.T, version int) {
		t.Helper()
		ctx := t.Context()
		path, built := filepath.Join(data, "keyward.db"), filepath.Join(t.TempDir(), "keyward.db")
		db, err := sql.Open("sqlite", built)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		db.SetMaxOpenConns(1) // the attached database is the connection's
		run := func(query string, args ...any) {
			t.Helper()
			if _, err := db.ExecContext(ctx, query, args...); err != nil {
				t.Fatalf("%.200s: %v", query, err)
			}
		}
		run("CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL) STRICT")
		applyMigrations(t, "sqlite", version, run, "INSERT INTO schema_migrations VALUES (?, ?, '2026-01-01T00:00:00.000000Z')")
		run("ATTACH DATABASE ? AS old", path)
		var copies []string
		rows, err := db.QueryContext(ctx, `SELECT 'INSERT INTO main."' || t.name || '" (' || group_concat('"' || c.name || '"', ', ') ||
				') SELECT ' || group_concat('"' || c.name || '"', ', ') || ' FROM old."' || t.name || '"'
			FROM main.sqlite_schema t, pragma_table_info(t.name, 'main') c
			WHERE t.type = 'table' AND t.name NOT LIKE 'sqlite_%' AND t.name <> 'schema_migrations'
			GROUP BY t.name`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var q string
			if err := rows.Scan(&q); err != nil {
				t.Fatal(err)
			}
			copies = append(copies, q)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		for _, q := range copies {
			run(q)
		}
		run("DETACH DATABASE old")
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{path + "-wal", path + "-shm"} {
			if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
		}
		if err := os.Rename(built, path); err != nil {
			t.Fatal(err)
		}
	}}}

	pg := keywardtest.PostgresURL(t)
	b := make([]byte, 32)
	rand.Read(b)
	schema := "kw_keyed_" + hex.EncodeToString(b[:6])
	connect := func(t testing.TB) *pgx.Conn {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, pg)
		if err != nil {
			t.Fatal(err)
		}
		return conn
	}
	t.Cleanup(func() {
		conn := connect(t)
		defer conn.Close(context.Background())
		// rebuildAt's schema is left only by a test that failed in it.
		for _, s := range []string{schema, schema + "_built"} {
			if _, err := conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+s+" CASCADE"); err != nil {
				t.Logf("dropping schema %s: %v", s, err)
			}
		}
	})
	pgEnv := map[string]string{
		"KEYWARD_DATA":        filepath.Join(t.TempDir(), "data"),
		"KEYWARD_STORE":       withParam(t, pg, "search_path", schema),
		"KEYWARD_PEPPER":      "hex:" + hex.EncodeToString(b),
		"KEYWARD_MASTER_KEYS": "1:hex:" + strings.Repeat("5a", 32),
	}
	return append(bs, backend{name: "postgres", env: pgEnv, exec: func(t *testing.T, query string) {
		t.Helper()
		conn := connect(t)
		defer conn.Close(context.Background())
		if _, err := conn.Exec(t.Context(), "SET search_path TO "+schema+"; "+query); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}, rebuildAt: func(t *testing.T, version int) {
		t.Helper()
		ctx := t.Context()
		conn := connect(t)
		defer conn.Close(context.Background())
		run := func(query string, args ...any) {
			t.Helper()
			if _, err := conn.Exec(ctx, query, args...); err != nil {
				t.Fatalf("%.200s: %v", query, err)
			}
		}
		built := schema + "_built"
		run("CREATE SCHEMA " + built)
		run("SET search_path TO " + built)
		run("CREATE TABLE schema_migrations (version integer NOT NULL PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
		applyMigrations(t, "postgres", version, run, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)")
		rows, err := conn.Query(ctx, `SELECT format('INSERT INTO %I.%I (%s) SELECT %s FROM %I.%I', $1::text, c.table_name,
				string_agg(quote_ident(c.column_name), ', ' ORDER BY c.ordinal_position),
				string_agg(quote_ident(c.column_name), ', ' ORDER BY c.ordinal_position), $2::text, c.table_name)
			FROM information_schema.columns c JOIN information_schema.tables t USING (table_schema, table_name)
			WHERE c.table_schema = $1 AND t.table_type = 'BASE TABLE' AND c.table_name <> 'schema_migrations' AND c.is_generated = 'NEVER'
			GROUP BY c.table_name`, built, schema)
		if err != nil {
			t.Fatal(err)
		}
		copies, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		// The rows go in table by table, not in the order their foreign
		// keys need.
		run("SET session_replication_role = replica")
		for _, q := range copies {
			run(q)
		}
		run("RESET session_replication_role")
		run("DROP SCHEMA " + schema + " CASCADE")
		run("ALTER SCHEMA " + built + " RENAME TO " + schema)
	}})
}

// giteaStub is an HTTP server that answers a Gitea connection check as a
// Gitea admin would, and records the requests it gets.
type giteaStub struct {
	*httptest.Server
	mu       sync.Mutex
	requests []string // "METHOD PATH basic-auth-user"
}

func newGiteaStub(t *testing.T) *giteaStub {
	t.Helper()
	g := &giteaStub{}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, _, _ := r.BasicAuth()
		g.mu.Lock()
		g.requests = append(g.requests, r.Method+" "+r.URL.Path+" "+user)
		g.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/api/v1/version":
			json.NewEncoder(w).Encode(map[string]string{"version": "1.22.0"})
		case "/api/v1/user":
			json.NewEncoder(w).Encode(map[string]any{"login": user, "is_admin": true})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(g.Close)
	return g
}

// received returns the requests g got so far.
func (g *giteaStub) received() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.requests...)
}

// TestProviderPasswordBoundToURL: a provider connection's base URL changed
// in the database (by someone without the master key) makes keyward refuse
// to use the connection: `providers test` fails and the password reaches
// no host, not even after a restart (which re-seals only passwords of an
// older keyward). Changing the URL through keyward still works.
func TestProviderPasswordBoundToURL(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			legit, attacker, moved := newGiteaStub(t), newGiteaStub(t), newGiteaStub(t)
			s := startServer(t, b.env)
			root := s.rootKey
			var acc keyward.Account
			s.okJSON(t, root, &acc, "accounts", "create", "--name", "acme")
			file := filepath.Join(t.TempDir(), "password")
			if err := os.WriteFile(file, []byte("admin-password\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			var conn keyward.ProviderConnection
			s.okJSON(t, root, &conn, "providers", "add", "--kind", "gitea", "--name", "git", "--url", legit.URL,
				"--username", "admin", "--password-file", file, "--account", acc.ID)
			s.ok(t, root, "providers", "test", conn.ID)

			// Redirected in the database; a restart empties the cache of
			// open connections and runs the re-seal of old passwords.
			s.stop(t)
			b.exec(t, "UPDATE provider_connections SET base_url = '"+attacker.URL+"' WHERE id = '"+conn.ID+"'")
			s = startServer(t, b.env)
			msg := s.fails(t, ExitConflict, root, "providers", "test", conn.ID)
			if !strings.Contains(msg, "base URL") || !strings.Contains(msg, conn.ID) {
				t.Errorf("providers test of a redirected connection: %q, want it to name the connection and the base URL", msg)
			}
			if got := attacker.received(); len(got) != 0 {
				t.Fatalf("the redirected host received %v, want nothing", got)
			}

			// Put back, it works again; moved by root through keyward, the
			// password is sealed for the new URL and goes there.
			s.stop(t)
			b.exec(t, "UPDATE provider_connections SET base_url = '"+legit.URL+"' WHERE id = '"+conn.ID+"'")
			s = startServer(t, b.env)
			s.ok(t, root, "providers", "test", conn.ID)
			s.ok(t, root, "providers", "update", conn.ID, "--url", moved.URL)
			s.ok(t, root, "providers", "test", conn.ID)
			if got := moved.received(); len(got) == 0 || !strings.HasSuffix(got[len(got)-1], " admin") {
				t.Errorf("the connection's new host received %v, want the checks with the admin's credentials", got)
			}
			if got := attacker.received(); len(got) != 0 {
				t.Fatalf("the redirected host received %v, want nothing", got)
			}
		})
	}
}

// TestAuditCheckpoint: `audit head` prints a checkpoint of the newest
// entry; after the newest rows are deleted in the database, `audit verify`
// alone still passes (what is left is a valid chain) but `audit verify
// --expect SEQ:HASH` exits 1 with one line saying the tail is missing.
// Entries edited and their hashes recomputed with plain SHA-256, as someone
// without the master keys could, fail verify; the whole log so rewritten
// (which serve keys again from its head at the next start) fails against a
// checkpoint.
func TestAuditCheckpoint(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := startServer(t, b.env)
			root := s.rootKey
			for _, name := range []string{"a", "b", "c"} {
				s.ok(t, root, "accounts", "create", "--name", name)
			}
			var head keyward.AuditCheckpoint
			s.okJSON(t, root, &head, "audit", "head")
			if head.Seq < 4 || len(head.Hash) != 64 || len(head.MAC) != 64 || head.KeyVersion != 1 {
				t.Fatalf("audit head = %+v, want the newest of at least 4 entries with a hash and a MAC", head)
			}
			if out := s.ok(t, root, "audit", "head"); !strings.Contains(out, head.String()) {
				t.Errorf("audit head prints %q, want the checkpoint %s", out, head.String())
			}
			s.ok(t, root, "audit", "verify", "--expect", head.String())
			s.fails(t, ExitUsage, root, "audit", "verify", "--expect", "4:nothex")

			s.stop(t)
			b.exec(t, "DELETE FROM audit_log WHERE seq >= "+strconv.FormatInt(head.Seq-1, 10))
			s = startServer(t, b.env)
			s.ok(t, root, "audit", "verify")
			msg := s.fails(t, ExitError, root, "audit", "verify", "--expect", head.String())
			if !strings.Contains(msg, "misses its newest entries") || !strings.Contains(msg, "entry "+strconv.FormatInt(head.Seq, 10)) {
				t.Errorf("verify --expect after deleting the tail: %q, want it to say the newest entries are missing", msg)
			}
			var left keyward.AuditCheckpoint
			s.okJSON(t, root, &left, "audit", "head")

			// Entry 2 edited, it and those after it rehashed with plain
			// SHA-256: they follow a keyed entry, so verify fails.
			s.stop(t)
			b.exec(t, "UPDATE audit_log SET action = 'account.nothing' WHERE seq = 2")
			b.rehashPlain(t, 2)
			s = startServer(t, b.env)
			if msg := s.fails(t, ExitError, root, "audit", "verify"); !strings.Contains(msg, "broken at entry 2") {
				t.Errorf("verify after rehashing entries 2- with plain SHA-256: %q, want it broken at entry 2", msg)
			}

			// The whole log rehashed: serve keys the chain again from the
			// forged head at start, and only a checkpoint shows it.
			s.stop(t)
			b.rehashPlain(t, 1)
			s = startServer(t, b.env)
			if msg := s.fails(t, ExitError, root, "audit", "verify", "--expect", left.String()); !strings.Contains(msg, "differs from the checkpoint") {
				t.Errorf("verify --expect after rehashing the whole log: %q, want the checkpoint's entry to differ", msg)
			}
		})
	}
}

// rehashPlain rewrites the audit log's entries from seq from on with plain
// SHA-256 hashes, as someone with write access to the database and no
// master key could. The server must be stopped.
func (b backend) rehashPlain(t *testing.T, from int64) {
	t.Helper()
	st, err := server.OpenStore(t.Context(), &config.Config{Data: b.env["KEYWARD_DATA"], Store: b.env["KEYWARD_STORE"]}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var prev []byte
	var rewrites []string
	for _, e := range keywardtest.AuditLog(t, st) {
		if e.Seq >= from {
			e.ChainVersion = 0
			e.PrevHash, e.Hash = prev, e.ChainHash(prev, nil)
			prevSQL := "NULL"
			if prev != nil {
				prevSQL = hexLiteral(b.name, prev)
			}
			rewrites = append(rewrites, "UPDATE audit_log SET chain_version = 0, prev_hash = "+prevSQL+", hash = "+hexLiteral(b.name, e.Hash)+" WHERE seq = "+strconv.FormatInt(e.Seq, 10))
		}
		prev = e.Hash
	}
	st.Close()
	for _, q := range rewrites {
		b.exec(t, q)
	}
}

// hexLiteral writes b as a byte string literal of the backend's SQL.
func hexLiteral(backend string, b []byte) string {
	if backend == "postgres" {
		return "'\\x" + hex.EncodeToString(b) + "'::bytea"
	}
	return "x'" + hex.EncodeToString(b) + "'"
}

// TestAuditUpgradeKeysChain: a database left by a keyward before the keyed
// chain (schema 15, every entry hashed with plain SHA-256; built here by the
// migration files up to 0015 and the rows a server wrote) is migrated at
// start, serve keys the chain from its head (one audit.chain_keyed entry
// naming the last plain one), and the whole log verifies, also against a
// checkpoint taken then.
func TestAuditUpgradeKeysChain(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := startServer(t, b.env)
			root := s.rootKey
			s.ok(t, root, "accounts", "create", "--name", "acme")
			s.stop(t)
			b.rehashPlain(t, 1)
			b.rebuildAt(t, 15)

			s = startServer(t, b.env)
			if !strings.Contains(s.stderr.String(), "keyed the chain from it on") {
				t.Errorf("serve did not log keying the chain; log:\n%s", s.stderr)
			}
			var l keyward.AuditList
			s.okJSON(t, root, &l, "audit", "list", "--action", "audit.chain_keyed")
			var details struct {
				PlainUntil int64 `json:"plain_until"`
			}
			if len(l.Items) != 1 || l.Items[0].ChainVersion != 1 || json.Unmarshal(l.Items[0].Details, &details) != nil || details.PlainUntil != 2 {
				t.Fatalf("audit.chain_keyed entries: %+v, want one after the 2 plain entries", l.Items)
			}
			s.ok(t, root, "accounts", "create", "--name", "beta")
			var head keyward.AuditCheckpoint
			s.okJSON(t, root, &head, "audit", "head")
			if out := s.ok(t, root, "audit", "verify", "--expect", head.String()); !strings.Contains(out, "yes") {
				t.Errorf("verify of the upgraded log: %s", out)
			}
			// A second start keys nothing more.
			s.stop(t)
			s = startServer(t, b.env)
			s.okJSON(t, root, &l, "audit", "list", "--action", "audit.chain_keyed")
			if len(l.Items) != 1 {
				t.Errorf("audit.chain_keyed entries after a second start: %d, want 1", len(l.Items))
			}
		})
	}
}
