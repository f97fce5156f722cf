package postgres_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keyward/keyward"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/postgres"
	"github.com/keyward/keyward/verify"
)

// cluster is a PostgreSQL primary and a streaming replica of it, each a
// postgres process the test starts in a temporary directory (initdb,
// pg_basebackup -R), so the machine's own server is left alone.
type cluster struct {
	pgctl            string
	cred             *syscall.Credential // the postgres user, when the test runs as root
	primaryDir       string
	replicaDir       string
	primary, replica string // URLs
}

// pgBinary finds a PostgreSQL program on PATH or in Debian's
// /usr/lib/postgresql/VERSION/bin, "" if it is not installed.
func pgBinary(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if ms, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name); len(ms) > 0 {
		return ms[len(ms)-1]
	}
	return ""
}

// skipOrFail skips the test, or fails it in CI, where it must run.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// freePort returns a TCP port of 127.0.0.1 nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startCluster starts a primary and a streaming replica of it, stopped and
// removed when the test ends. Without the PostgreSQL server programs it
// skips the test (fails it when CI=true).
func startCluster(t *testing.T) *cluster {
	t.Helper()
	initdb, pgctl, basebackup := pgBinary("initdb"), pgBinary("pg_ctl"), pgBinary("pg_basebackup")
	if initdb == "" || pgctl == "" || basebackup == "" {
		skipOrFail(t, "read replica test: initdb, pg_ctl and pg_basebackup (the PostgreSQL server, e.g. apt-get install postgresql) are needed on PATH or in /usr/lib/postgresql/*/bin")
	}
	c := &cluster{pgctl: pgctl}
	// A temporary directory the postgres user can reach: t.TempDir's
	// parent is private to the test's user.
	dir, err := os.MkdirTemp("", "keyward-replica-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		// postgres refuses to run as root: run the cluster as postgres.
		u, err := user.Lookup("postgres")
		if err != nil {
			skipOrFail(t, "read replica test: running as root, and postgres refuses to run as root, but there is no postgres user to run it as (%v)", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	c.primaryDir, c.replicaDir = filepath.Join(dir, "primary"), filepath.Join(dir, "replica")
	pport, rport := freePort(t), freePort(t)
	c.run(t, initdb, "-D", c.primaryDir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
	c.appendConf(t, c.primaryDir, fmt.Sprintf("port = %d\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"+
		"wal_level = replica\nmax_wal_senders = 4\nfsync = off\nsynchronous_commit = off\nshared_buffers = 16MB\n", pport))
	c.run(t, pgctl, "-D", c.primaryDir, "-l", filepath.Join(dir, "primary.log"), "-w", "-t", "120", "start")
	t.Cleanup(func() { c.stop(c.primaryDir) })
	c.primary = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", pport)

	c.run(t, basebackup, "-h", "127.0.0.1", "-p", strconv.Itoa(pport), "-U", "postgres", "-D", c.replicaDir, "-R", "-X", "stream", "--no-sync")
	c.appendConf(t, c.replicaDir, fmt.Sprintf("port = %d\nhot_standby = on\n", rport))
	c.run(t, pgctl, "-D", c.replicaDir, "-l", filepath.Join(dir, "replica.log"), "-w", "-t", "120", "start")
	t.Cleanup(func() { c.stop(c.replicaDir) })
	c.replica = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", rport)
	return c
}

// run runs a PostgreSQL program as the cluster's user.
func (c *cluster) run(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	cmd.Dir = os.TempDir()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
}

// appendConf appends lines to the postgresql.conf of data directory dir,
// whose later settings win.
func (c *cluster) appendConf(t *testing.T, dir, lines string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("\n# keyward replica test\n" + lines); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// stop kills the postgres of data directory dir at once (no shutdown
// checkpoint), as a crash would; a server already stopped is left so.
func (c *cluster) stop(dir string) {
	cmd := exec.Command(c.pgctl, "-D", dir, "-m", "immediate", "-w", "stop")
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	cmd.Dir = os.TempDir()
	cmd.Run()
}

// execSQL runs sql on the database at url.
func execSQL(t *testing.T, url, sql string) { querySQL(t, url, sql) }

// querySQL runs sql on the database at url and returns the first column
// of its row as text.
func querySQL(t *testing.T, url, sql string) string {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var v any
	if err := conn.QueryRow(t.Context(), sql).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return fmt.Sprint(v)
}

// TestReadReplica runs key lookups on a real streaming replica: they are
// answered by it once it has caught up; a key not yet replayed there is
// found on the primary; a revocation the engine has heard of is never
// undone by the replica while its replay is paused; and a replica that
// stops costs no verification, only a fallback to the primary, logged once.
func TestReadReplica(t *testing.T) {
	c := startCluster(t)
	ctx := t.Context()
	logs := &keywardtest.SyncBuffer{}
	s, err := postgres.OpenOptions(ctx, c.primary, postgres.Options{
		Replicas:    []string{c.replica},
		ReplicaPoll: 10 * time.Millisecond,
		// Long enough that the paused replica stays eligible throughout:
		// only ReadAfter keeps the revoked key from it.
		ReplicaMaxLag: time.Hour,
		Logger:        slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.ReplicaMaxLag(); got != time.Hour {
		t.Fatalf("ReplicaMaxLag() = %v, want 1h", got)
	}
	h := keywardtest.NewHasher(t)
	acc := keywardtest.NewAccount(t, s, "replicated")
	a := keywardtest.NewAdminKey(t, s, h, acc.ID)

	// served reports whether a lookup of hash was answered by the replica
	// with a key whose revocation is revoked.
	served := func(ctx context.Context, hash keyward.KeyHash, revoked bool) bool {
		l0, m0, f0 := postgres.ReplicaCounts(s)
		k, err := s.KeyByHash(ctx, hash)
		l1, m1, f1 := postgres.ReplicaCounts(s)
		return err == nil && (k.RevokedAt != nil) == revoked && l1 == l0+1 && m1 == m0 && f1 == f0
	}
	keywardtest.WaitFor(t, "the replica to answer a lookup of a replicated key", func() bool { return served(ctx, a.Hash, false) })

	// Lag: the replica stops replaying what the primary commits.
	execSQL(t, c.replica, "SELECT pg_wal_replay_pause()")
	keywardtest.WaitFor(t, "the replica's replay to pause", func() bool {
		return querySQL(t, c.replica, "SELECT pg_get_wal_replay_pause_state()") == "paused"
	})
	b := keywardtest.NewAdminKey(t, s, h, acc.ID)
	_, m0, _ := postgres.ReplicaCounts(s)
	if k, err := s.KeyByHash(ctx, b.Hash); err != nil || k.ID != b.ID {
		t.Fatalf("KeyByHash of a key not yet on the replica = %v, %v; want it from the primary", k, err)
	}
	if _, m1, _ := postgres.ReplicaCounts(s); m1 != m0+1 {
		t.Fatalf("replica misses went from %d to %d: the lookup of the new key did not ask the replica first", m0, m1)
	}

	// A revocation while the replica lags: the engine hears of it (as from
	// the invalidation bus) and must not cache the replica's stale VALID.
	eng, err := verify.New(verify.Config{Store: s, Hasher: h, CacheTTL: time.Hour,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(context.Background())
	if res := eng.Verify(ctx, verify.Request{Key: a.Secret}); res.Decision != keyward.DecisionValid {
		t.Fatalf("verify before the revocation: %s, want VALID", res.Decision)
	}
	revokedAt := time.Now().UTC().Add(-time.Second)
	if _, err := s.UpdateKey(ctx, keyward.Change{}, a.ID, func(k *keyward.Key) error { k.RevokedAt = &revokedAt; return nil }); err != nil {
		t.Fatal(err)
	}
	// What the replica alone would say: the revocation is not there yet.
	if !served(ctx, a.Hash, false) {
		t.Fatal("the paused replica did not answer the revoked key as it was before: the test does not exercise lag")
	}
	eng.Invalidate([]keyward.KeyHash{a.Hash})
	for range 3 {
		if res := eng.Verify(ctx, verify.Request{Key: a.Secret}); res.Decision != keyward.DecisionRevoked {
			t.Fatalf("verify after the revocation, replica lagging: %s, want REVOKED", res.Decision)
		}
	}
	// Other keys still read the lagging replica (it is within the max lag).
	if !served(ctx, a.Hash, false) || served(keyward.ContextReadAfter(ctx, time.Now()), a.Hash, false) {
		t.Fatal("a lookup without ReadAfter must read the replica, one after the revocation must not")
	}

	// Caught up again, the replica answers lookups after the revocation.
	execSQL(t, c.replica, "SELECT pg_wal_replay_resume()")
	after := keyward.ContextReadAfter(ctx, time.Now())
	keywardtest.WaitFor(t, "the resumed replica to answer the revocation", func() bool { return served(after, a.Hash, true) })

	// Stopped: every verification still answers, from the primary; the
	// replica's failure is logged once.
	logged := len(logs.String())
	c.stop(c.replicaDir)
	for i := range 5 {
		k := keywardtest.NewAdminKey(t, s, h, acc.ID)
		if res := eng.Verify(ctx, verify.Request{Key: k.Secret}); res.Decision != keyward.DecisionValid {
			t.Fatalf("verify %d with the replica stopped: %s, want VALID", i, res.Decision)
		}
	}
	if n := strings.Count(logs.String()[logged:], "read replica not used"); n != 1 {
		t.Fatalf("the stopped replica was logged %d times, want once:\n%s", n, logs.String()[logged:])
	}
}
