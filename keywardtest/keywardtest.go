// Package keywardtest helps keyward's tests: real stores in temporary
// directories, a hasher with a fixed pepper, builders that create real
// accounts, users and keys, and TestStore, the contract suite every
// keyward.Store backend must pass. Import it only from tests.
package keywardtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/postgres"
	"github.com/keyward/keyward/sqlite"
)

// Pepper is the fixed pepper (version 1) of NewHasher. It is for tests only.
const Pepper keyward.Secret = "keywardtest-pepper-not-a-secret-0123456789"

// NewSQLiteStore returns a store on a new SQLite database in t.TempDir(),
// closed when the test ends. The database starts as a copy of one migrated
// once per test binary (running the migrations costs more than most tests),
// and its commits skip the fsync (sqlite.Options.UnsafeNoSync): it is
// thrown away.
func NewSQLiteStore(t testing.TB) *sqlite.Store {
	t.Helper()
	return OpenSQLiteStore(t, filepath.Join(t.TempDir(), "keyward.db"))
}

// OpenSQLiteStore opens the SQLite database at path like NewSQLiteStore,
// closed when the test ends; a missing file is created as a copy of the
// migrated database. It is for a test that needs the path, to reopen the
// database or share it.
func OpenSQLiteStore(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	if f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		migrated, err := migratedSQLite()
		if err == nil {
			_, err = f.Write(migrated)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatalf("copy the migrated sqlite database to %s: %v", path, err)
		}
	}
	s, err := sqlite.OpenOptions(t.Context(), path, sqlite.Options{UnsafeNoSync: true})
	if err != nil {
		t.Fatalf("open sqlite store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close sqlite store: %v", err)
		}
	})
	return s
}

// migratedSQLite returns the file of an empty SQLite database with every
// migration applied, made once per test binary.
var migratedSQLite = sync.OnceValues(func() ([]byte, error) {
	dir, err := os.MkdirTemp("", "keywardtest-sqlite-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "keyward.db")
	s, err := sqlite.OpenOptions(context.Background(), path, sqlite.Options{UnsafeNoSync: true})
	if err != nil {
		return nil, err
	}
	if err := s.Close(); err != nil {
		return nil, err
	}
	// Closing the last connection checkpoints the write-ahead log into
	// the file and removes it: the file alone is the database.
	if _, err := os.Stat(path + "-wal"); !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("the write-ahead log of %s is still there after Close (%v)", path, err)
	}
	return os.ReadFile(path)
})

// NewPostgresSchema returns the name of a new schema of the PostgreSQL
// test database at dbURL, which no other test uses; the schema and
// everything in it is dropped when the test ends.
func NewPostgresSchema(t testing.TB, dbURL string) string {
	t.Helper()
	var b [8]byte
	rand.Read(b[:])
	schema := "keyward_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		// t.Context is canceled before cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

// PostgresNoSync returns dbURL (a postgres:// URL or a key=value DSN) with
// synchronous_commit off for its sessions: a commit returns before its WAL
// record is flushed, so a crash of the server may lose it. It is for tests
// only, like sqlite.Options.UnsafeNoSync: their schemas are dropped
// anyway, and a suite would otherwise wait for a flush per write and per
// migration of every schema it creates.
func PostgresNoSync(dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return dbURL + " synchronous_commit=off"
	}
	q := u.Query()
	q.Set("synchronous_commit", "off")
	u.RawQuery = q.Encode()
	return u.String()
}

// NewPostgresStore returns a store in a new schema of the PostgreSQL test
// database (PostgresURL: skipped when it is not set, outside CI), closed
// and dropped with its schema when the test ends. Its commits do not wait
// for the WAL flush (PostgresNoSync).
func NewPostgresStore(t testing.TB) *postgres.Store {
	t.Helper()
	dbURL := PostgresURL(t)
	schema := NewPostgresSchema(t, dbURL)
	s, err := postgres.OpenOptions(t.Context(), PostgresNoSync(dbURL), postgres.Options{Schema: schema})
	if err != nil {
		t.Fatalf("open postgres store in schema %s: %v", schema, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// NewHasher returns a hasher whose only pepper, version 1, is Pepper.
func NewHasher(t testing.TB) *apikey.Hasher {
	t.Helper()
	h, err := apikey.NewHasher(map[int]keyward.Secret{1: Pepper})
	if err != nil {
		t.Fatalf("new hasher: %v", err)
	}
	return h
}

// Now returns the current time in UTC truncated to microseconds, the
// precision every store keeps, so a value written compares equal to the
// value read back.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// NewAccount creates an account named name in s and returns it.
func NewAccount(t testing.TB, s keyward.Store, name string) *keyward.Account {
	t.Helper()
	now := Now()
	a := &keyward.Account{ID: apikey.NewID("acc"), Name: name, CreatedAt: now, UpdatedAt: now}
	if err := s.CreateAccount(t.Context(), keyward.Change{}, a); err != nil {
		t.Fatalf("create account %q: %v", name, err)
	}
	return a
}

// NewUser creates a user named name in account accountID and returns it.
func NewUser(t testing.TB, s keyward.Store, accountID, name string) *keyward.User {
	t.Helper()
	u := &keyward.User{ID: apikey.NewID("usr"), AccountID: accountID, Name: name, CreatedAt: Now()}
	if err := s.CreateUser(t.Context(), keyward.Change{}, u); err != nil {
		t.Fatalf("create user %q: %v", name, err)
	}
	return u
}

// NewKey creates a key from the template k and returns it as stored, with
// its secret. Role, AccountID and UserID must be set as the role requires;
// the other fields are kept when set. NewKey fills an empty ID, Prefix
// (the default of the role and environment), CreatedAt and UpdatedAt, and always fills Hash,
// PepperVersion and Start from a newly generated secret hashed with h.
func NewKey(t testing.TB, s keyward.Store, h *apikey.Hasher, k keyward.Key) *keyward.CreatedKey {
	t.Helper()
	if k.ID == "" {
		k.ID = apikey.NewID("key")
	}
	if k.Prefix == "" {
		prefix, err := apikey.DefaultPrefixes().Prefix(k.Role, k.Environment, "")
		if err != nil {
			t.Fatalf("key prefix: %v", err)
		}
		k.Prefix = prefix
	}
	now := Now()
	if k.CreatedAt.IsZero() {
		k.CreatedAt = now
	}
	if k.UpdatedAt.IsZero() {
		k.UpdatedAt = now
	}
	secret, err := apikey.Generate(k.Prefix)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	raw := secret.Reveal()
	k.Hash = h.Hash(raw)
	k.PepperVersion = h.Current()
	k.Start = apikey.Start(raw)
	if err := s.CreateKey(t.Context(), keyward.Change{}, &k); err != nil {
		t.Fatalf("create %s key: %v", k.Role, err)
	}
	stored, err := s.Key(t.Context(), k.ID)
	if err != nil {
		t.Fatalf("read back key %s: %v", k.ID, err)
	}
	return &keyward.CreatedKey{Key: *stored, Secret: raw}
}

// NewRootKey creates a root key. Unlike Store.BootstrapRootKey it works
// whether or not a root key exists.
func NewRootKey(t testing.TB, s keyward.Store, h *apikey.Hasher) *keyward.CreatedKey {
	t.Helper()
	return NewKey(t, s, h, keyward.Key{Role: keyward.RoleRoot, Name: "root"})
}

// NewAdminKey creates an account_admin key of account accountID.
func NewAdminKey(t testing.TB, s keyward.Store, h *apikey.Hasher, accountID string, permissions ...string) *keyward.CreatedKey {
	t.Helper()
	return NewKey(t, s, h, keyward.Key{
		Role: keyward.RoleAccountAdmin, AccountID: accountID, Name: "admin", Permissions: permissions,
	})
}

// NewUserKey creates a user key of user userID in account accountID.
func NewUserKey(t testing.TB, s keyward.Store, h *apikey.Hasher, accountID, userID string, permissions ...string) *keyward.CreatedKey {
	t.Helper()
	return NewKey(t, s, h, keyward.Key{
		Role: keyward.RoleUser, AccountID: accountID, UserID: userID, Name: "user", Permissions: permissions,
	})
}

// BreakChecksum returns secret with its last character changed, so that it
// is well formed but its checksum no longer matches.
func BreakChecksum(secret string) string {
	last := "x"
	if strings.HasSuffix(secret, last) {
		last = "y"
	}
	return secret[:len(secret)-1] + last
}

// NewKeyring returns a keyring with one fixed master key (version 1), for
// sealing audit details in tests.
func NewKeyring(t testing.TB) *keyring.Keyring {
	t.Helper()
	k, err := keyring.New(map[int]keyward.Secret{1: keyward.Secret("hex:" + strings.Repeat("ab", 32))})
	if err != nil {
		t.Fatal(err)
	}
	return k
}
