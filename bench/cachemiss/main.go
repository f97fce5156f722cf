// Command cachemiss measures verification latency on a cache miss with many
// keys in the store (docs/benchmarks.md, targets: p99 under 2 ms at 1M keys, on
// SQLite and on PostgreSQL).
//
// For each store it seeds -keys account_admin keys with Store.CreateKeys
// into a fresh SQLite file (in a temporary directory) or a fresh PostgreSQL
// schema (dropped at the end), reopens the store, then times, one request
// at a time and in random order:
//
//   - KeyByHash: the store lookup alone, for -samples random keys;
//   - Verify: verify.Engine.Verify on a new engine (empty cache) for
//     -samples other random keys, each verified once, so each is a miss:
//     parse, HMAC, cache lookup, store lookup, decision, usage recording.
//
// Seeding stops after -seed-timeout; the latencies are then measured at
// the number of keys reached, which the report states.
//
// A PostgreSQL schema is settled before it is measured: its tables
// vacuumed and analyzed, a checkpoint taken, and its tables and indexes
// read once into the page cache (see settle and warm).
//
// With -keep-sqlite DIR the SQLite store is left in DIR as a keyward data
// directory (keyward.db and the pepper file) beside secrets.txt, the
// secrets of its keys one per line, so "keyward serve --data DIR" can
// verify them (bench/run measures a server's memory with them).
//
//	go run ./bench/cachemiss -keys 1000000 -stores sqlite,postgres
//
// See bench/cachemiss.sh.
package main

import (
	"bufio"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/postgres"
	"github.com/keyward/keyward/sqlite"
	"github.com/keyward/keyward/verify"
	"golang.org/x/sync/errgroup"
)

func main() {
	var (
		n           = flag.Int("keys", 1_000_000, "keys to seed into each store")
		samples     = flag.Int("samples", 20_000, "keys timed per measurement (each looked up once)")
		stores      = flag.String("stores", "sqlite,postgres", "comma-separated stores to measure: sqlite, postgres")
		pgURL       = flag.String("postgres", os.Getenv("KEYWARD_TEST_POSTGRES_URL"), "PostgreSQL URL (default $KEYWARD_TEST_POSTGRES_URL)")
		seedTimeout = flag.Duration("seed-timeout", 8*time.Minute, "stop seeding a store after this long and measure at the keys reached")
		batch       = flag.Int("batch", 5000, "keys per CreateKeys call")
		workers     = flag.Int("workers", 2, "concurrent key generators/writers while seeding")
		dir         = flag.String("dir", "", "directory of the SQLite file (default: a new temporary directory, removed at the end)")
		keep        = flag.String("keep-sqlite", "", "leave the SQLite store in this new directory as a keyward data directory, with secrets.txt")
		cpuProfile  = flag.String("cpuprofile", "", "write a CPU profile of the Verify (miss) runs to this file (one store: the last one measured)")
		userKeys    = flag.Bool("user-keys", false, "seed user keys of one user with meta, so each lookup also reads its user (default: account_admin keys)")
		quietLoad   = flag.Float64("quiet-load", 0, "after seeding, wait until the 1-minute load average is at most this before measuring (0: do not wait); for a seed run beside other work")
		quietWait   = flag.Duration("quiet-wait", 30*time.Minute, "longest wait for -quiet-load; the measurement then runs at whatever load there is, and says so")
	)
	flag.Parse()
	if *n <= 0 || *samples <= 0 || *batch <= 0 || *workers <= 0 {
		fatalf("-keys, -samples, -batch and -workers must be positive")
	}
	if *quietLoad < 0 || *quietWait <= 0 {
		fatalf("-quiet-load must be 0 or more and -quiet-wait positive")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Printf("cache-miss benchmark: %d keys per store, %d samples, GOMAXPROCS %d, %s\n",
		*n, *samples, runtime.GOMAXPROCS(0), time.Now().UTC().Format(time.RFC3339))
	cfg := config{n: *n, samples: *samples, seedTimeout: *seedTimeout, batch: *batch, workers: *workers, userKeys: *userKeys, cpuProfile: *cpuProfile, quietLoad: *quietLoad, quietWait: *quietWait}
	failed := false
	for _, name := range strings.Split(*stores, ",") {
		var err error
		switch strings.TrimSpace(name) {
		case "sqlite":
			err = runSQLite(ctx, *dir, *keep, cfg)
		case "postgres":
			if *pgURL == "" {
				fmt.Fprintln(os.Stderr, "cachemiss: postgres: skipped, set KEYWARD_TEST_POSTGRES_URL or -postgres")
				continue
			}
			err = runPostgres(ctx, *pgURL, cfg)
		default:
			fatalf("unknown store %q (want sqlite or postgres)", name)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "cachemiss: %s: %v\n", name, err)
			failed = true
		}
		if ctx.Err() != nil {
			break
		}
	}
	if failed {
		os.Exit(1)
	}
}

type config struct {
	n, samples, batch, workers int
	seedTimeout                time.Duration
	userKeys                   bool   // seed user keys of one user
	cpuProfile                 string // profile the Verify runs into this file
	// quietLoad, if positive, is the 1-minute load average to wait for
	// (at most quietWait) between seeding and measuring.
	quietLoad float64
	quietWait time.Duration
	// seeded, if set, is called with the pepper and the secrets of the
	// keys stored once seeding is done.
	seeded func(pepper []byte, secrets []string) error
}

func runSQLite(ctx context.Context, dir, keep string, cfg config) error {
	if keep != "" {
		if err := os.Mkdir(keep, 0o700); err != nil {
			return err
		}
		cfg.seeded = func(pepper []byte, secrets []string) error { return keepData(keep, pepper, secrets) }
		return run(ctx, "sqlite", func() (keyward.Store, error) { return sqlite.Open(ctx, filepath.Join(keep, "keyward.db")) }, cfg)
	}
	if dir == "" {
		tmp, err := os.MkdirTemp("", "keyward-cachemiss-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	path := filepath.Join(dir, fmt.Sprintf("cachemiss-%d.db", time.Now().UnixNano()))
	defer func() {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			os.Remove(path + suffix)
		}
	}()
	open := func() (keyward.Store, error) { return sqlite.Open(ctx, path) }
	return run(ctx, "sqlite", open, cfg)
}

func runPostgres(ctx context.Context, url string, cfg config) error {
	b := make([]byte, 6)
	rand.Read(b)
	schema := "kw_cachemiss_" + hex.EncodeToString(b)
	defer func() {
		// The run's context may be canceled (Ctrl-C): drop with a fresh one.
		dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(dctx, url)
		if err == nil {
			_, err = conn.Exec(dctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
			conn.Close(dctx)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "cachemiss: dropping schema %s: %v\n", schema, err)
		}
	}()
	open := func() (keyward.Store, error) {
		return postgres.OpenOptions(ctx, url, postgres.Options{Schema: schema})
	}
	cfg.seeded = func([]byte, []string) error { return settle(ctx, url, schema) }
	return run(ctx, "postgres", open, cfg)
}

// settle brings a freshly seeded PostgreSQL schema to the state a running
// deployment's database is in, so the lookups are not timed against the
// seed's aftermath: VACUUM (ANALYZE) of its tables (what autovacuum does
// within minutes of a bulk load) and a CHECKPOINT, which writes the
// seed's gigabytes of dirty pages now rather than during the measurement.
// A CHECKPOINT the role may not run is reported and skipped.
func settle(ctx context.Context, url, schema string) error {
	start := time.Now()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, "SELECT tablename FROM pg_tables WHERE schemaname = $1", schema)
	if err != nil {
		return err
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, t := range tables {
		if _, err := conn.Exec(ctx, "VACUUM (ANALYZE) "+pgx.Identifier{schema, t}.Sanitize()); err != nil {
			return fmt.Errorf("vacuum %s: %w", t, err)
		}
	}
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
		fmt.Printf("postgres: CHECKPOINT not run (%v): the seed's dirty pages are written during the measurement\n", err)
	}
	fmt.Printf("postgres: settled (VACUUM (ANALYZE) of %d tables, CHECKPOINT) in %s\n", len(tables), time.Since(start).Round(time.Millisecond))
	return warm(ctx, conn, schema)
}

// warm reads the schema's tables and indexes once into the operating
// system's page cache (pg_prewarm's 'read' mode), as a database server that
// has been answering lookups holds them; without it the first lookups
// after a long seed time the disk (and on a VM that reclaims cold page
// cache, such as one running DAMON-based reclaim, those a while later too). The extension is created in the
// schema, so it goes with it; without pg_prewarm the run says so and
// measures cold.
func warm(ctx context.Context, conn *pgx.Conn, schema string) error {
	start := time.Now()
	if _, err := conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_prewarm SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		fmt.Printf("postgres: NOTE: pg_prewarm not available (%v): measuring with a cold page cache\n", err)
		return nil
	}
	var fn string
	if err := conn.QueryRow(ctx, `SELECT quote_ident(n.nspname) || '.pg_prewarm' FROM pg_extension e
		JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_prewarm'`).Scan(&fn); err != nil {
		return err
	}
	var blocks int64
	if err := conn.QueryRow(ctx, `SELECT coalesce(sum(`+fn+`(c.oid, 'read')), 0) FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind IN ('r', 'i')`, schema).Scan(&blocks); err != nil {
		return fmt.Errorf("pg_prewarm: %w", err)
	}
	fmt.Printf("postgres: warmed %d MiB of tables and indexes into the page cache (pg_prewarm 'read') in %s\n",
		blocks*8/1024, time.Since(start).Round(time.Millisecond))
	return nil
}

// run seeds a fresh store, reopens it and measures it.
func run(ctx context.Context, name string, open func() (keyward.Store, error), cfg config) error {
	pepper := make([]byte, 32)
	rand.Read(pepper)
	hasher, err := apikey.NewHasher(map[int]keyward.Secret{1: keyward.Secret(hex.EncodeToString(pepper))})
	if err != nil {
		return err
	}
	s, err := open()
	if err != nil {
		return err
	}
	// As keyward dev seed does: SQLite's writer keeps the keys' indexes in
	// a large page cache while seeding.
	if wc, ok := s.(interface {
		SetWriteCache(ctx context.Context, n int64) error
	}); ok {
		if err := wc.SetWriteCache(ctx, 1<<30); err != nil {
			s.Close()
			return err
		}
	}
	secrets, took, err := seed(ctx, s, hasher, cfg)
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("seeding: %w", err)
	}
	seeded := len(secrets)
	if cfg.seeded != nil {
		if err := cfg.seeded(pepper, secrets); err != nil {
			return err
		}
	}
	fmt.Printf("\n%s: seeded %d keys in %s (%.0f keys/s, batches of %d, %d workers)\n",
		name, seeded, took.Round(time.Millisecond), float64(seeded)/took.Seconds(), cfg.batch, cfg.workers)
	if seeded < cfg.n {
		fmt.Printf("%s: NOTE: seeding stopped after -seed-timeout %s at %d of %d keys; latencies below are at %d keys\n",
			name, cfg.seedTimeout, seeded, cfg.n, seeded)
	}

	if cfg.quietLoad > 0 {
		if err := waitQuiet(ctx, name, cfg.quietLoad, cfg.quietWait); err != nil {
			return err
		}
	}
	// Reopen: the lookups run on fresh connections, not those that wrote.
	if s, err = open(); err != nil {
		return err
	}
	defer s.Close()

	// Disjoint random samples: warm-up, KeyByHash, Verify.
	const warm = 200
	k := min(seeded, warm+2*cfg.samples)
	pick := make([]int, 0, k)
	for i, j := range mrand.Perm(seeded) {
		if i == k {
			break
		}
		pick = append(pick, j)
	}
	per := (len(pick) - min(warm, len(pick))) / 2
	warmup, byHash, byVerify := pick[:len(pick)-2*per], pick[len(pick)-2*per:len(pick)-per], pick[len(pick)-per:]

	for _, i := range warmup {
		if _, err := s.KeyByHash(ctx, hasher.Hash(secrets[i])); err != nil {
			return fmt.Errorf("warm-up KeyByHash: %w", err)
		}
	}

	lat := make([]time.Duration, 0, per)
	for _, i := range byHash {
		h := hasher.Hash(secrets[i])
		t0 := time.Now()
		_, err := s.KeyByHash(ctx, h)
		lat = append(lat, time.Since(t0))
		if err != nil {
			return fmt.Errorf("KeyByHash: %w", err)
		}
	}
	report(name, "KeyByHash", seeded, lat)

	engine, err := verify.New(verify.Config{
		Store: s, Hasher: hasher, CacheTTL: time.Hour,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return err
	}
	lat, invalid := lat[:0], 0
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	for _, i := range byVerify {
		t0 := time.Now()
		res := engine.Verify(ctx, verify.Request{Key: secrets[i]})
		lat = append(lat, time.Since(t0))
		if res.Decision != keyward.DecisionValid {
			invalid++
		}
	}
	pprof.StopCPUProfile() // a no-op without -cpuprofile
	if err := engine.Close(ctx); err != nil {
		return err
	}
	report(name, "Verify (miss)", seeded, lat)
	if invalid > 0 {
		return fmt.Errorf("%d of %d verifications were not VALID", invalid, len(lat))
	}
	return nil
}

// seed creates an account and loads up to cfg.n keys into it within
// cfg.seedTimeout, and returns the secrets of the keys stored, by index.
func seed(ctx context.Context, s keyward.Store, h *apikey.Hasher, cfg config) ([]string, time.Duration, error) {
	now := time.Now().UTC()
	acc := &keyward.Account{ID: apikey.NewID("acc"), Name: "cachemiss", CreatedAt: now, UpdatedAt: now}
	if err := s.CreateAccount(ctx, keyward.Change{}, acc); err != nil {
		return nil, 0, err
	}
	role, userID := keyward.RoleAccountAdmin, ""
	if cfg.userKeys {
		u := &keyward.User{ID: apikey.NewID("usr"), AccountID: acc.ID, Name: "cachemiss", Meta: json.RawMessage(`{"plan":"pro"}`),
			CreatedAt: now, UpdatedAt: now}
		if err := s.CreateUser(ctx, keyward.Change{}, u); err != nil {
			return nil, 0, err
		}
		role, userID = keyward.RoleUser, u.ID
	}
	prefix := apikey.DefaultPrefix(role, acc.KeyPrefix)
	secrets := make([]string, cfg.n)
	start := time.Now()
	sctx, cancel := context.WithTimeout(ctx, cfg.seedTimeout)
	defer cancel()

	var (
		next   atomic.Int64 // next batch start
		mu     sync.Mutex
		stored []int // batch starts committed
		done   atomic.Int64
	)
	stopProgress := progress(&done, cfg.n, start)
	g, gctx := errgroup.WithContext(sctx)
	for range cfg.workers {
		g.Go(func() error {
			for {
				from := int(next.Add(int64(cfg.batch))) - cfg.batch
				if from >= cfg.n || gctx.Err() != nil {
					return nil
				}
				to := min(from+cfg.batch, cfg.n)
				keys := make([]*keyward.Key, 0, to-from)
				for i := from; i < to; i++ {
					secret, err := apikey.Generate(prefix)
					if err != nil {
						return err
					}
					raw := secret.Reveal()
					secrets[i] = raw
					keys = append(keys, &keyward.Key{
						ID: apikey.NewID("key"), Hash: h.Hash(raw), PepperVersion: h.Current(), Start: apikey.Start(raw),
						Prefix: prefix, Name: fmt.Sprintf("cachemiss %d", i), Role: role,
						AccountID: acc.ID, UserID: userID, Permissions: []string{}, CreatedAt: now, UpdatedAt: now,
					})
				}
				if err := s.CreateKeys(gctx, keyward.Change{}, keys); err != nil {
					if gctx.Err() != nil && ctx.Err() == nil {
						return nil // seed timeout: this batch is rolled back
					}
					return err
				}
				mu.Lock()
				stored = append(stored, from)
				mu.Unlock()
				done.Add(int64(len(keys)))
			}
		})
	}
	err := g.Wait()
	took := time.Since(start)
	stopProgress()
	if err != nil {
		return nil, took, err
	}
	if ctx.Err() != nil {
		return nil, took, ctx.Err()
	}
	// Keep the secrets of committed batches only, in one slice.
	slices.Sort(stored)
	kept := make([]string, 0, len(stored)*cfg.batch)
	for _, from := range stored {
		kept = append(kept, secrets[from:min(from+cfg.batch, cfg.n)]...)
	}
	if len(kept) == 0 {
		return nil, took, errors.New("no key stored before -seed-timeout")
	}
	return kept, took, nil
}

// keepData writes the pepper file keyward reads from its data directory
// and secrets.txt into dir. The hasher's pepper is the bytes of the hex
// string (as NewHasher takes a Secret's bytes), so the file holds their hex.
func keepData(dir string, pepper []byte, secrets []string) error {
	p := "# bench/cachemiss pepper: VERSION:ENCODING:VALUE\n1:hex:" + hex.EncodeToString([]byte(hex.EncodeToString(pepper))) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "pepper"), []byte(p), 0o600); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, "secrets.txt"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for _, s := range secrets {
		w.WriteString(s)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// progress prints the seeded count to stderr every 10s until stopped.
func progress(done *atomic.Int64, total int, start time.Time) func() {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				d := done.Load()
				fmt.Fprintf(os.Stderr, "  seeded %d/%d keys (%.0f/s)\n", d, total, float64(d)/time.Since(start).Seconds())
			}
		}
	})
	return func() { close(stop); wg.Wait() }
}

// report prints percentiles of lat.
func report(store, what string, keys int, lat []time.Duration) {
	slices.SortFunc(lat, cmp.Compare)
	q := func(p float64) time.Duration {
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	f := func(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond)) }
	fmt.Printf("%-8s %-14s keys=%d n=%d  p50=%s  p90=%s  p99=%s  p999=%s  max=%s  mean=%s\n",
		store, what, keys, len(lat), f(q(0.50)), f(q(0.90)), f(q(0.99)), f(q(0.999)), f(lat[len(lat)-1]),
		f(sum/time.Duration(len(lat))))
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "cachemiss: "+format+"\n", args...)
	os.Exit(2)
}

// waitQuiet waits, checking every 10 s for at most wait, until the
// 1-minute load average (Linux's /proc/loadavg) is at most load, and says
// at which load the measurement starts.
func waitQuiet(ctx context.Context, name string, load float64, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		b, err := os.ReadFile("/proc/loadavg")
		if err != nil {
			fmt.Printf("%s: -quiet-load needs /proc/loadavg (%v): measuring now\n", name, err)
			return nil
		}
		var now float64
		if _, err := fmt.Sscan(string(b), &now); err != nil {
			return fmt.Errorf("reading /proc/loadavg: %w", err)
		}
		switch {
		case now <= load:
			fmt.Printf("%s: load average %.2f (at most %.2f asked): measuring, %s\n", name, now, load, time.Now().UTC().Format(time.RFC3339))
			return nil
		case time.Now().After(deadline):
			fmt.Printf("%s: NOTE: load average still %.2f after waiting %s for %.2f: measuring at that load\n", name, now, wait, load)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Second):
		}
	}
}
