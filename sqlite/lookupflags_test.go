package sqlite_test

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/keyward/keyward"
)

// TestLookupFlagsBackfilled upgrades a database of schema 20, written
// before migration 0021 by that schema's own files, holding a user key with
// a named role whose user and account have shared limits: 0021 sets
// keys.has_roles, users.has_meter and accounts.has_meter from the rows
// already there, so KeyByHash still reads the roles and the user's and
// account's shared limits of existing keys.
func TestLookupFlagsBackfilled(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keyward.db")
	db := rawDB(t, path)
	ctx := t.Context()
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(files) < 20 {
		t.Fatalf("migration files: %v, %v", files, err)
	}
	slices.Sort(files)
	if _, err := db.ExecContext(ctx, `CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY,
		name TEXT NOT NULL, applied_at TEXT NOT NULL) STRICT`); err != nil {
		t.Fatal(err)
	}
	for i, f := range files[:20] {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, string(b)); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if _, err := db.ExecContext(ctx, "INSERT INTO schema_migrations VALUES (?, ?, '2026-01-01T00:00:00.000000Z')", i+1, filepath.Base(f)); err != nil {
			t.Fatal(err)
		}
	}
	hash := sha256.Sum256([]byte("a key of schema 20"))
	const at = "2026-01-01T00:00:00.000000Z"
	for _, stmt := range []struct {
		query string
		args  []any
	}{
		{"INSERT INTO accounts (id, name, created_at, updated_at) VALUES ('acc_1', 'acme', ?, ?)", []any{at, at}},
		{"INSERT INTO users (id, account_id, name, created_at, updated_at) VALUES ('usr_1', 'acc_1', 'ann', ?, ?)", []any{at, at}},
		{"INSERT INTO roles (account_id, name, permissions, created_at, updated_at) VALUES ('acc_1', 'reader', '[\"memories:read\"]', ?, ?)", []any{at, at}},
		{`INSERT INTO keys (id, key_hash, pepper_version, role, account_id, user_id, created_at, updated_at)
			VALUES ('key_1', ?, 1, 'user', 'acc_1', 'usr_1', ?, ?)`, []any{hash[:], at, at}},
		{"INSERT INTO key_roles (key_id, account_id, role_name) VALUES ('key_1', 'acc_1', 'reader')", nil},
		{`INSERT INTO meters (id, level, account_id, user_id, rate_limits, updated_at)
			VALUES ('usr_1', 'user', 'acc_1', 'usr_1', '[{"name":"per-user","limit":5,"window":"1m"}]', ?)`, []any{at}},
		{`INSERT INTO meters (id, level, account_id, rate_limits, updated_at)
			VALUES ('acc_1', 'account', 'acc_1', '[{"name":"shared","limit":10,"window":"1m"}]', ?)`, []any{at}},
	} {
		if _, err := db.ExecContext(ctx, stmt.query, stmt.args...); err != nil {
			t.Fatalf("%s: %v", stmt.query, err)
		}
	}
	db.Close()

	s := open(t, path)
	got, err := s.KeyByHash(ctx, keyward.KeyHash(hash))
	if err != nil {
		t.Fatalf("KeyByHash after the upgrade: %v", err)
	}
	if !slices.Equal(got.Roles, []string{"reader"}) || !slices.Equal(got.RolePermissions, []string{"memories:read"}) {
		t.Errorf("after the upgrade the key has roles %q with %q; want [reader] with [memories:read]", got.Roles, got.RolePermissions)
	}
	if got.UserMeter == nil || len(got.UserMeter.RateLimits) != 1 || got.UserMeter.RateLimits[0].Name != "per-user" {
		t.Errorf("after the upgrade the key mirrors user meter %+v; want one with limit per-user", got.UserMeter)
	}
	if got.AccountMeter == nil || len(got.AccountMeter.RateLimits) != 1 || got.AccountMeter.RateLimits[0].Name != "shared" {
		t.Errorf("after the upgrade the key mirrors account meter %+v; want one with limit shared", got.AccountMeter)
	}
}
