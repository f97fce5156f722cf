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
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keyward/keyward"
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
		if _, err := conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Logf("dropping schema %s: %v", schema, err)
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
