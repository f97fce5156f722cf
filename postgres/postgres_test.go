package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	mrand "math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/postgres"
)

// open opens the store in schema, closed when the test ends. Its commits
// do not wait for the WAL flush (keywardtest.PostgresNoSync).
func open(t testing.TB, dbURL, schema string) *postgres.Store {
	t.Helper()
	s, err := postgres.OpenOptions(t.Context(), keywardtest.PostgresNoSync(dbURL), postgres.Options{Schema: schema})
	if err != nil {
		t.Fatalf("OpenOptions(schema %s): %v", schema, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newStore returns a store in a new schema of the test database.
func newStore(t testing.TB) *postgres.Store {
	t.Helper()
	dbURL := keywardtest.PostgresURL(t)
	return open(t, dbURL, keywardtest.NewPostgresSchema(t, dbURL))
}

// rawConn connects to the test database directly, bypassing the Store.
func rawConn(t testing.TB, dbURL string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func schemaVersions(t testing.TB, dbURL, schema string) []int {
	t.Helper()
	rows, err := rawConn(t, dbURL).Query(t.Context(), "SELECT version FROM "+schema+".schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

func wantAllVersionsOnce(t testing.TB, vs []int) {
	t.Helper()
	if len(vs) != postgres.SchemaVersion() || vs[len(vs)-1] != postgres.SchemaVersion() {
		t.Fatalf("schema_migrations = %v, want 1..%d once each", vs, postgres.SchemaVersion())
	}
}

func TestStore(t *testing.T) {
	t.Parallel()
	schemas := keywardtest.NewPostgresSchemas(t, keywardtest.PostgresURL(t)) // skip (or fail in CI) once, not per subtest
	keywardtest.TestStore(t, func(t *testing.T) keyward.Store { return schemas.Open(t) })
}

func TestMigrationsAreIdempotent(t *testing.T) {
	t.Parallel()
	dbURL := keywardtest.PostgresURL(t)
	schema := keywardtest.NewPostgresSchema(t, dbURL)
	for range 3 {
		if err := open(t, dbURL, schema).Close(); err != nil {
			t.Fatal(err)
		}
	}
	wantAllVersionsOnce(t, schemaVersions(t, dbURL, schema))
}

func TestConcurrentOpensMigrateOnce(t *testing.T) {
	t.Parallel()
	dbURL := keywardtest.PostgresURL(t)
	schema := keywardtest.NewPostgresSchema(t, dbURL)
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s, err := postgres.OpenOptions(t.Context(), dbURL, postgres.Options{Schema: schema})
			if err == nil {
				err = s.Ping(t.Context())
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Open: %v", err)
		}
	}
	wantAllVersionsOnce(t, schemaVersions(t, dbURL, schema))
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	dbURL := keywardtest.PostgresURL(t)
	schema := keywardtest.NewPostgresSchema(t, dbURL)
	opts := postgres.Options{Schema: schema}
	from, to, err := postgres.Migrate(t.Context(), dbURL, opts)
	if err != nil || from != 0 || to != postgres.SchemaVersion() {
		t.Fatalf("Migrate on an empty schema = %d, %d, %v; want 0, %d", from, to, err, postgres.SchemaVersion())
	}
	from, to, err = postgres.Migrate(t.Context(), dbURL, opts)
	if err != nil || from != to || to != postgres.SchemaVersion() {
		t.Fatalf("Migrate on a current schema = %d, %d, %v; want %d, %d", from, to, err, to, to)
	}
	// The store opens on the migrated schema without migrating again.
	open(t, dbURL, schema)
	wantAllVersionsOnce(t, schemaVersions(t, dbURL, schema))
}

func TestRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	dbURL := keywardtest.PostgresURL(t)
	schema := keywardtest.NewPostgresSchema(t, dbURL)
	if err := open(t, dbURL, schema).Close(); err != nil {
		t.Fatal(err)
	}
	newer := postgres.SchemaVersion() + 1
	if _, err := rawConn(t, dbURL).Exec(t.Context(),
		"INSERT INTO "+schema+".schema_migrations (version, name) VALUES ($1, 'future.sql')", newer); err != nil {
		t.Fatal(err)
	}
	_, err := postgres.OpenOptions(t.Context(), dbURL, postgres.Options{Schema: schema})
	if err == nil {
		t.Fatal("Open accepted a database with a newer schema")
	}
	for _, want := range []string{strconv.Itoa(newer), strconv.Itoa(postgres.SchemaVersion()), "newer keyward"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, _, err := postgres.Migrate(t.Context(), dbURL, postgres.Options{Schema: schema}); err == nil {
		t.Fatal("Migrate accepted a database with a newer schema")
	}
}

// withQuery returns dbURL with the query parameter name set to value; it
// skips the test for a key=value DSN.
func withQuery(t testing.TB, dbURL, name, value string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Skipf("KEYWARD_TEST_POSTGRES_URL is not a postgres:// URL")
	}
	q := u.Query()
	q.Set(name, value)
	u.RawQuery = q.Encode()
	return u.String()
}

func TestSchemaFromURLSearchPath(t *testing.T) {
	t.Parallel()
	dbURL := keywardtest.PostgresURL(t)
	schema := keywardtest.NewPostgresSchema(t, dbURL)
	s, err := postgres.Open(t.Context(), withQuery(t, dbURL, "search_path", schema))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Schema() != schema {
		t.Fatalf("Schema() = %q, want %q from the URL's search_path", s.Schema(), schema)
	}
	a := keywardtest.NewAccount(t, s, "acme")
	var n int
	if err := rawConn(t, dbURL).QueryRow(t.Context(), "SELECT count(*) FROM "+schema+".accounts WHERE id = $1", a.ID).Scan(&n); err != nil || n != 1 {
		t.Fatalf("account in schema %s: count %d, err %v", schema, n, err)
	}
}

func TestOpenRejectsBadInput(t *testing.T) {
	t.Parallel()
	// No database is needed: these fail before connecting.
	for _, tc := range []struct {
		url    string
		schema string
	}{
		{"postgres://127.0.0.1:1/test", "Upper"},
		{"postgres://127.0.0.1:1/test", "1digit"},
		{"postgres://127.0.0.1:1/test", `a"; DROP TABLE keys; --`},
		{"postgres://127.0.0.1:1/test?sslmode=nonsense", ""},
	} {
		_, err := postgres.OpenOptions(t.Context(), tc.url, postgres.Options{Schema: tc.schema})
		if keyward.ErrorCode(err) != keyward.EINVALID {
			t.Errorf("OpenOptions(%q, schema %q) = %v, want an invalid error", tc.url, tc.schema, err)
		}
	}
}

// closedPort returns a local address where nothing listens.
func closedPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestUnreachableIsUnavailable(t *testing.T) {
	t.Parallel()
	// No database is needed: nothing listens at the address.
	dbURL := "postgres://postgres@" + closedPort(t) + "/test?sslmode=disable"
	_, err := postgres.Open(t.Context(), dbURL)
	if keyward.ErrorCode(err) != keyward.EUNAVAILABLE {
		t.Fatalf("Open(unreachable) = %v, want unavailable", err)
	}
	_, _, err = postgres.Migrate(t.Context(), dbURL, postgres.Options{})
	if keyward.ErrorCode(err) != keyward.EUNAVAILABLE {
		t.Fatalf("Migrate(unreachable) = %v, want unavailable", err)
	}
}

func TestOutageIsUnavailableAndRecovers(t *testing.T) {
	t.Parallel()
	dbURL := keywardtest.PostgresURL(t)
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	p := keywardtest.NewProxy(t, net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
	u, err := url.Parse(withQuery(t, dbURL, "connect_timeout", "2"))
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.Addr()
	s := open(t, u.String(), keywardtest.NewPostgresSchema(t, dbURL))
	h := keywardtest.NewHasher(t)
	a := keywardtest.NewAccount(t, s, "acme")
	k := keywardtest.NewAdminKey(t, s, h, a.ID)

	p.Cut()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := s.Ping(ctx); keyward.ErrorCode(err) != keyward.EUNAVAILABLE {
		t.Fatalf("Ping during an outage = %v, want unavailable", err)
	}
	if _, err := s.KeyByHash(ctx, k.Hash); keyward.ErrorCode(err) != keyward.EUNAVAILABLE {
		t.Fatalf("KeyByHash during an outage = %v, want unavailable", err)
	}
	_, err = s.UpdateKey(ctx, keyward.Change{}, k.ID, func(k *keyward.Key) error { k.Disabled = true; return nil })
	if keyward.ErrorCode(err) != keyward.EUNAVAILABLE {
		t.Fatalf("UpdateKey during an outage = %v, want unavailable", err)
	}

	p.Restore()
	deadline := time.Now().Add(10 * time.Second)
	for s.Ping(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("Ping after the outage: %v", s.Ping(ctx))
		}
		time.Sleep(20 * time.Millisecond)
	}
	got, err := s.KeyByHash(ctx, k.Hash)
	if err != nil || got.ID != k.ID || got.Disabled {
		t.Fatalf("KeyByHash after the outage = %+v, %v; want the key, not disabled", got, err)
	}
}

func TestClosedStoreIsUnavailable(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	h := keywardtest.NewHasher(t)
	k := keywardtest.NewRootKey(t, s, h)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for name, err := range map[string]error{
		"Ping":      s.Ping(t.Context()),
		"KeyByHash": func() error { _, err := s.KeyByHash(t.Context(), k.Hash); return err }(),
		"CreateAccount": s.CreateAccount(t.Context(), keyward.Change{}, &keyward.Account{ID: apikey.NewID("acc"), Name: "acme",
			CreatedAt: keywardtest.Now(), UpdatedAt: keywardtest.Now()}),
	} {
		if keyward.ErrorCode(err) != keyward.EUNAVAILABLE {
			t.Errorf("%s on a closed store = %v, want unavailable", name, err)
		}
	}
}

func TestErrorsMappedBySQLSTATE(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	h := keywardtest.NewHasher(t)
	acme, globex := keywardtest.NewAccount(t, s, "acme"), keywardtest.NewAccount(t, s, "globex")
	bob := keywardtest.NewUser(t, s, globex.ID, "bob")
	now := keywardtest.Now()
	key := func(edit func(k *keyward.Key)) *keyward.Key {
		k := &keyward.Key{ID: apikey.NewID("key"), Hash: h.Hash(apikey.NewID("secret")), PepperVersion: 1,
			Role: keyward.RoleAccountAdmin, AccountID: acme.ID, CreatedAt: now, UpdatedAt: now}
		edit(k)
		return k
	}
	for _, tc := range []struct {
		name     string
		err      error
		code     string
		sqlstate string
		prefix   string
	}{
		{"unique name", s.CreateAccount(ctx, keyward.Change{}, &keyward.Account{ID: apikey.NewID("acc"), Name: "acme", CreatedAt: now, UpdatedAt: now}),
			keyward.ECONFLICT, "23505", "postgres: create account acc_"},
		{"foreign key: account", s.CreateUser(ctx, keyward.Change{}, &keyward.User{ID: apikey.NewID("usr"), AccountID: "acc_missing", CreatedAt: now}),
			keyward.ENOTFOUND, "", "postgres: create user usr_"},
		{"foreign key: user of another account", s.CreateKey(ctx, keyward.Change{}, key(func(k *keyward.Key) {
			k.Role, k.UserID = keyward.RoleUser, bob.ID
		})), keyward.ENOTFOUND, "", "postgres: create key key_"},
		{"jsonb refuses \\u0000", s.CreateKey(ctx, keyward.Change{}, key(func(k *keyward.Key) { k.Meta = json.RawMessage(`{"a":"\u0000"}`) })),
			keyward.EINVALID, "22P05", "postgres: create key key_"},
		{"text refuses NUL", s.CreateKey(ctx, keyward.Change{}, key(func(k *keyward.Key) { k.Name = "a\x00b" })),
			keyward.EINVALID, "22021", "postgres: create key key_"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := keyward.ErrorCode(tc.err); got != tc.code {
				t.Fatalf("code = %q, want %q (error: %v)", got, tc.code, tc.err)
			}
			// The store looks up the account and user a row refers to
			// before inserting it (sqlstateless cases); the foreign keys
			// backing that up map as TestForeignKeyIsNotFound shows.
			var pe *pgconn.PgError
			if tc.sqlstate != "" && (!errors.As(tc.err, &pe) || pe.Code != tc.sqlstate) {
				t.Fatalf("error %v does not wrap a PgError with SQLSTATE %s", tc.err, tc.sqlstate)
			}
			if !strings.HasPrefix(tc.err.Error(), tc.prefix) {
				t.Fatalf("error %q does not start with %q", tc.err, tc.prefix)
			}
			if msg := keyward.ErrorMessage(tc.err); strings.Contains(msg, "SQLSTATE") {
				t.Fatalf("client message %q shows the driver error", msg)
			}
		})
	}
}

func TestConcurrentTouchKeysDoNotDeadlock(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	h := keywardtest.NewHasher(t)
	a := keywardtest.NewAccount(t, s, "acme")
	var ids []string
	for range 40 {
		ids = append(ids, keywardtest.NewAdminKey(t, s, h, a.ID).ID)
	}
	base := keywardtest.Now()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 20 {
				uses := make([]keyward.KeyUse, len(ids))
				for j, id := range ids {
					uses[j] = keyward.KeyUse{ID: id, At: base.Add(time.Duration(w*100+i) * time.Millisecond)}
				}
				mrand.Shuffle(len(uses), func(i, j int) { uses[i], uses[j] = uses[j], uses[i] })
				if err := s.TouchKeys(t.Context(), uses); err != nil {
					t.Errorf("TouchKeys: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	want := base.Add(719 * time.Millisecond) // w = 7, i = 19
	for _, id := range ids {
		k, err := s.Key(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if k.LastUsedAt == nil || !k.LastUsedAt.Equal(want) {
			t.Fatalf("key %s LastUsedAt = %v, want %v", id, k.LastUsedAt, want)
		}
	}
}

// TestConcurrentAddUsageDoesNotDeadlock: instances flushing usage counts
// of the same keys and minutes at once, each batch in its own order, with
// roll-ups running beside them, must neither deadlock nor lose a count (a
// fleet of four instances hit "deadlock detected" on flushes before the
// rows were locked in one order).
func TestConcurrentAddUsageDoesNotDeadlock(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	h := keywardtest.NewHasher(t)
	a := keywardtest.NewAccount(t, s, "acme")
	var ids []string
	for range 40 {
		ids = append(ids, keywardtest.NewAdminKey(t, s, h, a.ID).ID)
	}
	minute := keyward.UsageMinute.Truncate(keywardtest.Now().Add(-time.Hour))
	const writers, batches, minutes = 8, 15, 3
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range batches {
				var rows []keyward.UsageRow
				for _, id := range ids {
					for m := range minutes {
						rows = append(rows, keyward.UsageRow{Start: minute.Add(time.Duration(m) * time.Minute), KeyID: id, AccountID: a.ID, Code: keyward.DecisionValid, Count: 1})
					}
				}
				mrand.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
				if err := s.AddUsage(t.Context(), rows); err != nil {
					t.Errorf("AddUsage: %v", err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range batches {
			if err := s.RollUpUsage(t.Context(), keywardtest.Now()); err != nil {
				t.Errorf("RollUpUsage: %v", err)
				return
			}
		}
	})
	wg.Wait()
	rows, err := s.Usage(t.Context(), keyward.UsageFilter{AccountID: a.ID, Granularity: keyward.UsageMinute})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, r := range rows {
		if r.Count != writers*batches {
			t.Errorf("minute row %s %s: count %d, want %d", r.KeyID, r.Start, r.Count, writers*batches)
		}
		total += r.Count
	}
	if want := int64(len(ids) * minutes * writers * batches); total != want {
		t.Errorf("%d usage counted in %d minute rows, want %d", total, len(rows), want)
	}
}

// BenchmarkKeyByHash measures the verification cache's miss path.
func BenchmarkKeyByHash(b *testing.B) {
	s := newStore(b)
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
