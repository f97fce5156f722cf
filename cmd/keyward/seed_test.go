package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keyward/keyward"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/postgres"
	"github.com/keyward/keyward/sqlite"
)

// pgSchema returns the test PostgreSQL URL with the search_path of a new
// schema, dropped when the test ends, and the schema's name.
func pgSchema(t *testing.T) (storeURL, schema, baseURL string) {
	t.Helper()
	baseURL = keywardtest.PostgresURL(t)
	b := make([]byte, 6)
	rand.Read(b)
	schema = "kw_cli_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, baseURL)
		if err != nil {
			t.Logf("dropping schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Logf("dropping schema %s: %v", schema, err)
		}
	})
	return withParam(t, baseURL, "search_path", schema), schema, baseURL
}

// seedKeys is more than one CreateKeys batch and not a multiple of it.
const seedKeys = 2345

// accountKeys counts the keys of the account named name.
func accountKeys(t *testing.T, s keyward.Store, name string) int {
	t.Helper()
	accs, _, err := s.Accounts(t.Context(), keyward.Page{Limit: keyward.MaxPageLimit})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accs {
		if a.Name != name {
			continue
		}
		n, p := 0, keyward.Page{Limit: keyward.MaxPageLimit}
		for {
			keys, next, err := s.Keys(t.Context(), keyward.KeyFilter{AccountID: a.ID}, p)
			if err != nil {
				t.Fatal(err)
			}
			n += len(keys)
			if next == "" {
				return n
			}
			p.After = next
		}
	}
	t.Fatalf("no account named %q", name)
	return 0
}

// wantSeeded checks a successful seed run: the secrets on stdout and the
// final progress line on stderr.
func wantSeeded(t *testing.T, r result, keys, sample int) []string {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("dev seed: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	secrets := strings.Fields(r.stdout)
	if len(secrets) != sample {
		t.Fatalf("dev seed printed %d secrets, want %d:\n%s", len(secrets), sample, r.stdout)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, fmt.Sprintf("seeded %d/%d keys", keys, keys)) {
		t.Fatalf("dev seed: last progress line %q, want \"seeded %d/%d keys ...\"; stderr:\n%s", last, keys, keys, r.stderr)
	}
	return secrets
}

func TestSeedSQLite(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	r := runCLI(t, nil, "dev", "seed", "--keys", fmt.Sprint(seedKeys), "--data", data, "--print-sample", "3")
	secrets := wantSeeded(t, r, seedKeys, 3)

	// Again into the same account: it is reused, not duplicated.
	wantSeeded(t, runCLI(t, nil, "dev", "seed", "--keys", "10", "--data", data, "--workers", "1"), 10, 0)

	s, err := sqlite.Open(t.Context(), filepath.Join(data, "keyward.db"))
	if err != nil {
		t.Fatal(err)
	}
	if n := accountKeys(t, s, "seed"); n != seedKeys+10 {
		t.Errorf("account seed holds %d keys, want %d", n, seedKeys+10)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// The keys were hashed with the data directory's pepper: a server on
	// it verifies them.
	srv := startServer(t, map[string]string{"KEYWARD_DATA": data})
	for _, secret := range secrets {
		if r := srv.cli(t, srv.rootKey, "verify", secret); r.code != 0 {
			t.Errorf("verify of a seeded key: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	}
}

func TestSeedPostgres(t *testing.T) {
	storeURL, schema, baseURL := pgSchema(t)
	env := map[string]string{"KEYWARD_PEPPER": "hex:" + strings.Repeat("ab", 32), "KEYWARD_MASTER_KEYS": "1:hex:" + strings.Repeat("cd", 32)}
	r := runCLI(t, env, "dev", "seed", "--keys", fmt.Sprint(seedKeys), "--store", storeURL, "--account", "bulk")
	wantSeeded(t, r, seedKeys, 0)
	s, err := postgres.OpenOptions(t.Context(), baseURL, postgres.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := accountKeys(t, s, "bulk"); n != seedKeys {
		t.Errorf("account bulk holds %d keys, want %d", n, seedKeys)
	}
}

func TestSeedUsage(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	for _, args := range [][]string{
		{"dev", "seed", "--data", data},
		{"dev", "seed", "--keys", "0", "--data", data},
		{"dev", "seed", "--keys", "5", "--print-sample", "6", "--data", data},
		{"dev", "seed", "--keys", "5", "--workers", "0", "--data", data},
	} {
		checkFails(t, runCLI(t, nil, args...), ExitUsage, args)
	}
}

func TestMigrateSQLite(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	v := sqlite.SchemaVersion()
	for _, from := range []int{0, v} {
		r := runCLI(t, nil, "migrate", "--data", data)
		if want := fmt.Sprintf("schema at version %d (was %d)\n", v, from); r.code != 0 || r.stdout != want {
			t.Fatalf("migrate: exit %d, stdout %q, want %q (stderr %q)", r.code, r.stdout, want, r.stderr)
		}
	}

	// A schema newer than the binary is refused, and left as it is.
	db, err := sql.Open("sqlite", filepath.Join(data, "keyward.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(t.Context(), "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future.sql', '')", v+1); err != nil {
		t.Fatal(err)
	}
	args := []string{"migrate", "--data", data}
	msg := checkFails(t, runCLI(t, nil, args...), ExitConfig, args)
	if !strings.Contains(msg, fmt.Sprint(v+1)) {
		t.Errorf("refusal %q does not name the schema version %d", msg, v+1)
	}
}

func TestMigratePostgres(t *testing.T) {
	storeURL, schema, baseURL := pgSchema(t)
	v := postgres.SchemaVersion()
	for _, from := range []int{0, v} {
		r := runCLI(t, nil, "migrate", "--store", storeURL)
		if want := fmt.Sprintf("schema at version %d (was %d)\n", v, from); r.code != 0 || r.stdout != want {
			t.Fatalf("migrate: exit %d, stdout %q, want %q (stderr %q)", r.code, r.stdout, want, r.stderr)
		}
	}

	conn, err := pgx.Connect(t.Context(), baseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), "INSERT INTO "+schema+".schema_migrations (version, name) VALUES ($1, 'future.sql')", v+1); err != nil {
		t.Fatal(err)
	}
	args := []string{"migrate", "--store", storeURL}
	msg := checkFails(t, runCLI(t, nil, args...), ExitConfig, args)
	if !strings.Contains(msg, fmt.Sprint(v+1)) {
		t.Errorf("refusal %q does not name the schema version %d", msg, v+1)
	}
}
