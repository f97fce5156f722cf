package sqlite_test

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMigrationMarksAutomaticBlocks: migration 0012 marks the blocks
// brute-force blocking made before it (global, no creating key, its
// reason) automatic, and no rule made by hand.
func TestMigrationMarksAutomaticBlocks(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keyward.db")
	db := rawDB(t, path)
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(files) < 12 {
		t.Fatalf("migrations: %v, %v", files, err)
	}
	if _, err := db.Exec(`CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL) STRICT`); err != nil {
		t.Fatal(err)
	}
	for i, f := range files[:11] { // up to 0011, before automatic rules
		sql, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(string(sql)); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if _, err := db.Exec(`INSERT INTO schema_migrations VALUES (?, ?, '2026-01-01T00:00:00Z')`, i+1, filepath.Base(f)); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range [][4]any{
		{"ipr_auto", nil, "keyward abuse detection: brute_force (anomaly anm_1)", "block"},
		{"ipr_hand", "key_root", "keyward abuse detection: copied by hand", "block"},
		{"ipr_nokey", nil, "scanner", "block"},
		{"ipr_allow", nil, "keyward abuse detection: x", "allow"},
	} {
		if _, err := db.Exec(`INSERT INTO ip_rules (id, account_id, action, cidr, reason, created_at, created_by)
			VALUES (?, NULL, ?, '203.0.113.7/32', ?, '2026-01-01T00:00:00.000000Z', ?)`, r[0], r[3], r[2], r[1]); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s := open(t, path)
	for id, want := range map[string]bool{"ipr_auto": true, "ipr_hand": false, "ipr_nokey": false, "ipr_allow": false} {
		r, err := s.IPRule(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Automatic != want {
			t.Errorf("%s: automatic %v after migrating, want %v", id, r.Automatic, want)
		}
	}
}
