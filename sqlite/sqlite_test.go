package sqlite_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/sqlite"
)

func TestStore(t *testing.T) {
	t.Parallel()
	keywardtest.TestStore(t, func(t *testing.T) keyward.Store {
		return keywardtest.NewSQLiteStore(t)
	})
}

// open opens the store at path, closed when the test ends.
func open(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// rawDB opens the database file directly, bypassing the Store.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func schemaVersions(t *testing.T, path string) []int {
	t.Helper()
	rows, err := rawDB(t, path).QueryContext(t.Context(), "SELECT version FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	return vs
}

func TestMigrationsAreIdempotent(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keyward.db")
	for range 3 {
		s := open(t, path)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	vs := schemaVersions(t, path)
	if len(vs) != sqlite.SchemaVersion() || vs[len(vs)-1] != sqlite.SchemaVersion() {
		t.Fatalf("schema_migrations = %v after three opens, want 1..%d once each", vs, sqlite.SchemaVersion())
	}
}

func TestDataSurvivesReopen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keyward.db")
	h := keywardtest.NewHasher(t)
	s := open(t, path)
	a := keywardtest.NewAccount(t, s, "acme")
	k := keywardtest.NewAdminKey(t, s, h, a.ID, "keys:verify")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path)
	got, err := s.KeyByHash(t.Context(), h.Hash(k.Secret))
	if err != nil {
		t.Fatalf("KeyByHash after reopen: %v", err)
	}
	if got.ID != k.ID || got.AccountID != a.ID || len(got.Permissions) != 1 || !got.CreatedAt.Equal(k.CreatedAt) {
		t.Fatalf("after reopen key = %+v, want %+v", got, k.Key)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keyward.db")
	s := open(t, path)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	newer := sqlite.SchemaVersion() + 1
	if _, err := rawDB(t, path).ExecContext(t.Context(),
		"INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future.sql', '2030-01-01T00:00:00.000000Z')", newer); err != nil {
		t.Fatal(err)
	}
	_, err := sqlite.Open(t.Context(), path)
	if err == nil {
		t.Fatal("Open accepted a database with a newer schema")
	}
	for _, want := range []string{strconv.Itoa(newer), strconv.Itoa(sqlite.SchemaVersion()), "newer keyward"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestWAL(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keyward.db")
	open(t, path)
	var mode string
	if err := rawDB(t, path).QueryRowContext(t.Context(), "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Fatalf("journal_mode = %q, want wal", mode)
	}
}

// TestSynchronous: a store commits with synchronous FULL (a revocation
// survives a power cut) unless a test opens it with UnsafeNoSync.
func TestSynchronous(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		opts sqlite.Options
		want int // PRAGMA synchronous: 0 OFF, 2 FULL
	}{{sqlite.Options{}, 2}, {sqlite.Options{UnsafeNoSync: true}, 0}} {
		s, err := sqlite.OpenOptions(t.Context(), filepath.Join(t.TempDir(), "keyward.db"), c.opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		var got int
		if err := s.Writer().QueryRowContext(t.Context(), "PRAGMA synchronous").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("with %+v the writer's synchronous = %d, want %d", c.opts, got, c.want)
		}
	}
}

// TestSetWriteCache: the writer's page cache takes the size asked for a
// bulk load, and writes still commit.
func TestSetWriteCache(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "keyward.db"))
	var kib int64
	if err := s.Writer().QueryRowContext(t.Context(), "PRAGMA cache_size").Scan(&kib); err != nil {
		t.Fatal(err)
	}
	if kib != -2000 {
		t.Fatalf("cache_size before = %d, want SQLite's default -2000 (KiB)", kib)
	}
	if err := s.SetWriteCache(t.Context(), 64<<20); err != nil {
		t.Fatal(err)
	}
	if err := s.Writer().QueryRowContext(t.Context(), "PRAGMA cache_size").Scan(&kib); err != nil {
		t.Fatal(err)
	}
	if kib != -64<<10 {
		t.Fatalf("cache_size after SetWriteCache(64 MiB) = %d, want %d (KiB)", kib, -64<<10)
	}
	keywardtest.NewAccount(t, s, "after")
}

func TestDatabaseFileIsPrivate(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keyward.db")
	open(t, path)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		t.Fatalf("database file mode %v, want no access for group and others", perm)
	}
}

func TestOpenRejectsBadPaths(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"", ":memory:", "file:x.db", "x.db?mode=ro"} {
		_, err := sqlite.Open(t.Context(), path)
		if keyward.ErrorCode(err) != keyward.EINVALID {
			t.Errorf("Open(%q) = %v, want an invalid error", path, err)
		}
	}
}

func TestOpenMissingDirectory(t *testing.T) {
	t.Parallel()
	_, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "missing", "keyward.db"))
	if err == nil {
		t.Fatal("Open succeeded in a directory that does not exist")
	}
}

// BenchmarkKeyByHash measures the verification cache's miss path.
func BenchmarkKeyByHash(b *testing.B) {
	s, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "keyward.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	h := keywardtest.NewHasher(b)
	a := keywardtest.NewAccount(b, s, "acme")
	var hashes []keyward.KeyHash
	for range 1000 {
		k := keywardtest.NewAdminKey(b, s, h, a.ID)
		hashes = append(hashes, k.Hash)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.KeyByHash(b.Context(), hashes[i%len(hashes)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}
