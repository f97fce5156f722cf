// Command capacity checks the capacity model of docs/scaling.md against a
// real fleet: N instances of the keyward binary (`keyward serve`) on one
// PostgreSQL database and one Redis, for each N of -instances.
//
// It counts, it does not time: what each pass costs the store and Redis
// is independent of how busy the machine is, so the figures hold on a
// loaded machine too. The database is a fresh one (created and dropped),
// and Redis is a private redis-server started on a free loopback port, so
// every counter read belongs to this run alone:
//
//   - key lookups: the instances' keyward_verify_cache_misses_total, minus
//     one per instance for the key that authenticates the benchmark's own
//     calls;
//   - PostgreSQL transactions: pg_stat_database.xact_commit of the database;
//   - Redis: INFO commandstats (script calls, PUBLISH, everything);
//   - the bus: keyward_invalidations_published_total and _received_total.
//
// For each N, N fresh instances start (empty caches) and every seeded key
// is verified once on each instance (all misses, h = 0), then once more
// (all hits, h = 1); some keys carry rate limits and some credits, so the
// Redis terms (one script call per verification of a limited or credited
// key, cached or not) show. Then -changes keys are revoked on the first
// instance: each is one published message, received by every instance.
// Run it with bench/capacity.sh.
package main

import (
	"bufio"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/client"
)

type options struct {
	binary    string
	pgURL     string
	redisBin  string
	instances []int
	keys      int
	limited   int
	credited  int
	changes   int
	workers   int
	deadline  time.Duration
}

func main() {
	var o options
	var instances string
	flag.StringVar(&o.binary, "binary", "bin/keyward", "the keyward binary")
	flag.StringVar(&o.pgURL, "postgres", envOr("KEYWARD_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"), "PostgreSQL URL; a database is created beside the one it names and dropped")
	flag.StringVar(&o.redisBin, "redis-server", "redis-server", "the redis-server binary started for the run")
	flag.StringVar(&instances, "instances", "1,2,4", "fleet sizes to measure, comma separated")
	flag.IntVar(&o.keys, "keys", 20000, "plain keys seeded (keyward dev seed)")
	flag.IntVar(&o.limited, "limited", 500, "keys with a rate limit")
	flag.IntVar(&o.credited, "credited", 500, "keys with credits")
	flag.IntVar(&o.changes, "changes", 50, "keys revoked on the first instance after the passes")
	flag.IntVar(&o.workers, "workers", 16, "concurrent verifications")
	flag.DurationVar(&o.deadline, "deadline", 2*time.Minute, "longest wait for an instance to start, a pass's request or the bus")
	flag.Parse()
	for _, s := range strings.Split(instances, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 16 {
			fatalf("-instances: %q is not a fleet size from 1 to 16", s)
		}
		o.instances = append(o.instances, n)
	}
	if o.keys < 1 || o.keys > 1_000_000 || o.limited < 0 || o.credited < 0 || o.limited+o.credited > 10_000 || o.changes < 0 || o.changes*len(o.instances) > keyward.MaxPageLimit-1 {
		fatalf("-keys must be 1..1000000, -limited + -credited at most 10000, -changes times the fleet sizes under %d", keyward.MaxPageLimit)
	}
	if err := run(context.Background(), o); err != nil {
		fatalf("%v", err)
	}
}

// fleet is what every instance of a run shares.
type fleet struct {
	o       options
	dir     string
	config  string
	env     []string
	rootKey keyward.Secret
	pgAdmin string // URL of the run's database
	rdb     *goredis.Client
	secrets []string // every key verified: the plain ones, then the metered ones
	plain   string   // the account of the plain keys (keyward dev seed's)
}

func run(ctx context.Context, o options) (err error) {
	dir, err := os.MkdirTemp("", "kwcapacity")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	f := &fleet{o: o, dir: dir}

	db := "kwcap_" + randomHex(6)
	if err := pgExec(ctx, o.pgURL, "CREATE DATABASE "+db); err != nil {
		return fmt.Errorf("creating database: %w", err)
	}
	defer func() {
		if derr := pgExec(context.Background(), o.pgURL, "DROP DATABASE "+db+" WITH (FORCE)"); derr != nil && err == nil {
			err = fmt.Errorf("dropping database %s: %w", db, derr)
		}
	}()
	if f.pgAdmin, err = withDatabase(o.pgURL, db); err != nil {
		return err
	}

	redisAddr := freeAddr()
	_, port, _ := net.SplitHostPort(redisAddr)
	rs := exec.Command(o.redisBin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	if err := rs.Start(); err != nil {
		return fmt.Errorf("starting %s (install redis-server, or pass -redis-server): %w", o.redisBin, err)
	}
	defer func() { _ = rs.Process.Kill(); _ = rs.Wait() }()
	f.rdb = goredis.NewClient(&goredis.Options{Addr: redisAddr})
	defer f.rdb.Close()
	if err := waitFor(o.deadline, func() error { return f.rdb.Ping(ctx).Err() }); err != nil {
		return fmt.Errorf("redis-server on %s: %w", redisAddr, err)
	}

	f.config = filepath.Join(dir, "keyward.yaml")
	conf := fmt.Sprintf("store: %q\nredis: %q\ncache_ttl: 5m\nlog_level: warn\npeppers:\n  1: \"hex:%s\"\n", f.pgAdmin, "redis://"+redisAddr+"/0", randomHex(32))
	if err := os.WriteFile(f.config, []byte(conf), 0o600); err != nil {
		return err
	}
	f.env = append(os.Environ(), "KEYWARD_CONFIG="+f.config, "KEYWARD_DATA="+filepath.Join(dir, "data"),
		"KEYWARD_MASTER_KEYS=1:hex:"+randomHex(32))
	if err := f.seed(ctx); err != nil {
		return err
	}

	fmt.Printf("capacity: %d plain keys, %d with a rate limit, %d with credits; %d revocations; PostgreSQL database %s, private Redis on %s; load average %s\n",
		o.keys, o.limited, o.credited, o.changes, db, redisAddr, loadavg())
	fmt.Printf("%-3s %-8s %9s %11s %11s %9s %12s %12s %11s %10s\n", "N", "pass", "V", "lookups:mdl", "measured", "pg xacts", "redis:mdl", "redis:meas", "redis total", "seconds")
	for _, n := range o.instances {
		if err := f.measure(ctx, n); err != nil {
			return fmt.Errorf("%d instances: %w", n, err)
		}
	}
	fmt.Printf("load average after: %s\n", loadavg())
	return nil
}

// seed bootstraps the store on one instance (its root key), creates the
// keys with limits and credits through the API and the plain keys with
// keyward dev seed.
func (f *fleet) seed(ctx context.Context) error {
	inst, err := f.start(ctx, true)
	if err != nil {
		return err
	}
	defer inst.stop()
	c := client.New(inst.url, f.rootKey)
	acct, err := c.CreateAccount(ctx, keyward.AccountCreate{Name: "metered"})
	if err != nil {
		return err
	}
	metered := make([]string, 0, f.o.limited+f.o.credited)
	for i := range f.o.limited + f.o.credited {
		kc := keyward.KeyCreate{AccountID: acct.ID, Role: keyward.RoleAccountAdmin}
		if i < f.o.limited {
			kc.RateLimits = []keyward.RateLimit{{Name: "api", Limit: 100_000, Window: keyward.Duration(time.Minute)}}
		} else {
			kc.Credits = &keyward.Credits{Remaining: 1_000_000}
		}
		k, err := c.CreateKey(ctx, kc)
		if err != nil {
			return fmt.Errorf("creating metered key %d: %w", i+1, err)
		}
		metered = append(metered, k.Secret)
	}
	cmd := exec.CommandContext(ctx, f.o.binary, "dev", "seed", "--keys", strconv.Itoa(f.o.keys), "--print-sample", strconv.Itoa(f.o.keys), "--log-level", "warn")
	cmd.Env = f.env
	cmd.Stderr = io.Discard
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("keyward dev seed: %w", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "kw_") {
			f.secrets = append(f.secrets, line)
		}
	}
	if len(f.secrets) != f.o.keys {
		return fmt.Errorf("keyward dev seed printed %d keys, want %d", len(f.secrets), f.o.keys)
	}
	f.secrets = append(f.secrets, metered...)
	accounts, err := c.Accounts(ctx, keyward.Page{Limit: keyward.MaxPageLimit})
	if err != nil {
		return err
	}
	for _, a := range accounts.Items {
		if a.Name == "seed" {
			f.plain = a.ID
		}
	}
	if f.plain == "" {
		return errors.New("keyward dev seed made no account named seed")
	}
	return nil
}

// instance is one running `keyward serve`.
type instance struct {
	url  string
	cmd  *exec.Cmd
	done chan struct{}
}

func (in *instance) stop() {
	_ = in.cmd.Process.Signal(os.Interrupt)
	select {
	case <-in.done:
	case <-time.After(20 * time.Second):
		_ = in.cmd.Process.Kill()
		<-in.done
	}
}

// start starts one instance on a free port and waits for /healthz; the
// first start of the store (bootstrap) reads the root key it prints
// ("root key: SECRET" on stdout).
func (f *fleet) start(ctx context.Context, bootstrap bool) (*instance, error) {
	addr := freeAddr()
	cmd := exec.Command(f.o.binary, "serve", "--listen", addr)
	cmd.Env = f.env
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	in := &instance{url: "http://" + addr, cmd: cmd, done: make(chan struct{})}
	keys := make(chan string, 1)
	go func() {
		defer close(in.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if key, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "root key: "); ok {
				select {
				case keys <- key:
				default:
				}
			}
		}
		_ = cmd.Wait()
	}()
	if bootstrap {
		select {
		case k := <-keys:
			f.rootKey = keyward.Secret(k)
		case <-in.done:
			return nil, errors.New("keyward serve exited before printing the root key")
		case <-time.After(f.o.deadline):
			in.stop()
			return nil, errors.New("keyward serve printed no root key")
		}
	}
	if err := waitFor(f.o.deadline, func() error {
		resp, err := http.Get(in.url + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("healthz: %s", resp.Status)
		}
		return nil
	}); err != nil {
		in.stop()
		return nil, fmt.Errorf("instance on %s: %w", addr, err)
	}
	return in, nil
}

// pgStatIdleFlush is how long after a pass its transactions are read.
const pgStatIdleFlush = 11 * time.Second

// counters are what a pass is measured by.
type counters struct {
	misses, published, received float64
	xacts                       int64
	redis                       map[string]int64 // calls by command
}

func (f *fleet) read(ctx context.Context, fleet []*instance) (counters, error) {
	var c counters
	for _, in := range fleet {
		m, err := scrape(in.url)
		if err != nil {
			return c, err
		}
		c.misses += m["keyward_verify_cache_misses_total"]
		c.published += m["keyward_invalidations_published_total"]
		c.received += m["keyward_invalidations_received_total"]
	}
	conn, err := pgx.Connect(ctx, f.pgAdmin)
	if err != nil {
		return c, err
	}
	defer conn.Close(ctx)
	// Statistics of other backends show after their transactions end;
	// a fresh snapshot of this connection's view is taken.
	if _, err := conn.Exec(ctx, "SELECT pg_stat_clear_snapshot()"); err != nil {
		return c, err
	}
	if err := conn.QueryRow(ctx, "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()").Scan(&c.xacts); err != nil {
		return c, err
	}
	info, err := f.rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return c, err
	}
	c.redis = map[string]int64{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		n, _ := strconv.ParseInt(calls, 10, 64)
		c.redis[strings.TrimPrefix(name, "cmdstat_")] = n
	}
	return c, nil
}

// scripts counts Redis script calls (rate limits and credits).
func (c counters) scripts() int64 {
	return c.redis["evalsha"] + c.redis["eval"] + c.redis["evalsha_ro"] + c.redis["eval_ro"] + c.redis["fcall"]
}

// redisDelta lists the Redis commands called since before, by name,
// most called first.
func (c counters) redisDelta(before counters) string {
	type count struct {
		name string
		n    int64
	}
	var counts []count
	for name, n := range c.redis {
		if d := n - before.redis[name]; d > 0 && name != "info" {
			counts = append(counts, count{name, d})
		}
	}
	slices.SortFunc(counts, func(a, b count) int { return cmp.Or(cmp.Compare(b.n, a.n), strings.Compare(a.name, b.name)) })
	var b strings.Builder
	for _, c := range counts {
		fmt.Fprintf(&b, "%s=%d ", c.name, c.n)
	}
	return strings.TrimSpace(b.String())
}

func (c counters) total() int64 {
	var t int64
	for name, n := range c.redis {
		if name != "info" { // the benchmark's own reads
			t += n
		}
	}
	return t
}

// measure runs the two passes and the revocations on n fresh instances.
func (f *fleet) measure(ctx context.Context, n int) error {
	var fl []*instance
	defer func() {
		for _, in := range fl {
			in.stop()
		}
	}()
	for range n {
		in, err := f.start(ctx, false)
		if err != nil {
			return err
		}
		fl = append(fl, in)
	}
	// The key the calls authenticate with is looked up once on each
	// instance: a call warms it before the counters are read.
	for _, in := range fl {
		if _, err := client.New(in.url, f.rootKey).Account(ctx, "none"); keyward.ErrorCode(err) != keyward.ENOTFOUND {
			return fmt.Errorf("warming the root key: %v", err)
		}
	}
	metered := int64(len(f.secrets) - f.o.keys)
	for _, pass := range []string{"misses", "hits"} {
		before, err := f.read(ctx, fl)
		if err != nil {
			return err
		}
		start := time.Now()
		if err := f.verifyAll(ctx, fl); err != nil {
			return err
		}
		secs := time.Since(start).Seconds()
		// PostgreSQL publishes a busy backend's statistics when it goes
		// idle, at the latest 10 s after (PGSTAT_IDLE_INTERVAL): the
		// transactions are read once that has passed, so they include
		// the instances' background writes of those seconds too.
		time.Sleep(pgStatIdleFlush)
		after, err := f.read(ctx, fl)
		if err != nil {
			return err
		}
		v := int64(len(f.secrets) * n)
		lookups := int64(0)
		if pass == "misses" {
			lookups = v
		}
		fmt.Printf("%-3d %-8s %9d %11d %11.0f %9d %12d %12d %11d %10.1f\n", n, pass, v, lookups, after.misses-before.misses,
			after.xacts-before.xacts, metered*int64(n), after.scripts()-before.scripts(), after.total()-before.total(), secs)
		fmt.Printf("    redis commands: %s\n", after.redisDelta(before))
	}

	// Revocations on the first instance: one message each, received by
	// every instance (the sender included).
	before, err := f.read(ctx, fl)
	if err != nil {
		return err
	}
	c := client.New(fl[0].url, f.rootKey)
	// Each fleet size revokes plain keys not revoked yet (a revoked key
	// still verifies, as REVOKED, in the next sizes' passes; the metered
	// keys stay valid, so the Redis model keeps its terms).
	keys, err := c.Keys(ctx, keyward.KeyFilter{AccountID: f.plain}, keyward.Page{Limit: keyward.MaxPageLimit})
	if err != nil {
		return err
	}
	revoked := 0
	for _, k := range keys.Items {
		if revoked == f.o.changes {
			break
		}
		if k.RevokedAt != nil {
			continue
		}
		if _, err := c.RevokeKey(ctx, k.ID); err != nil {
			return err
		}
		revoked++
	}
	// A Broadcaster does not count its own messages as received: the
	// other N-1 instances do.
	var after counters
	if err := waitFor(f.o.deadline, func() error {
		var err error
		if after, err = f.read(ctx, fl); err != nil {
			return err
		}
		pub, recv := int(after.published-before.published), int(after.received-before.received)
		if pub < revoked || recv < revoked*(n-1) {
			return fmt.Errorf("%d of %d invalidations published, %d of %d received", pub, revoked, recv, revoked*(n-1))
		}
		return nil
	}); err != nil {
		return err
	}
	fmt.Printf("%-3d %-8s %d revocations: %0.f messages published (model: %d), %0.f received by the other instances (model: (N-1) x messages = %d), %d Redis PUBLISH\n",
		n, "changes", revoked, after.published-before.published, revoked, after.received-before.received, revoked*(n-1), after.redis["publish"]-before.redis["publish"])
	if revoked < f.o.changes {
		return fmt.Errorf("only %d keys left to revoke of the %d asked: lower -changes", revoked, f.o.changes)
	}
	return nil
}

// verifyAll verifies every secret once on every instance, with o.workers
// concurrent calls; a key must answer VALID, or REVOKED once revoked.
func (f *fleet) verifyAll(ctx context.Context, fl []*instance) error {
	type job struct {
		in  *instance
		key string
	}
	jobs := make(chan job)
	errs := make(chan error, f.o.workers)
	var wg sync.WaitGroup
	for range f.o.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			clients := map[*instance]*client.Client{}
			for j := range jobs {
				c := clients[j.in]
				if c == nil {
					c = client.New(j.in.url, f.rootKey)
					clients[j.in] = c
				}
				cctx, cancel := context.WithTimeout(ctx, f.o.deadline)
				res, err := c.VerifyKey(cctx, keyward.VerifyRequest{Key: j.key})
				cancel()
				if err == nil && res.Code != keyward.DecisionValid && res.Code != keyward.DecisionRevoked {
					err = fmt.Errorf("a seeded key answered %s", res.Code)
				}
				if err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for _, in := range fl {
		for _, k := range f.secrets {
			jobs <- job{in, k}
		}
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// scrape reads the counters of an instance's /metrics, summed over labels.
func scrape(url string) (map[string]float64, error) {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, "{")
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err == nil {
			m[name] += v
		}
	}
	return m, sc.Err()
}

func pgExec(ctx context.Context, url, sql string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// withDatabase returns url naming database db instead.
func withDatabase(url, db string) (string, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Host, cfg.Port, db), nil
}

func waitFor(deadline time.Duration, ok func() error) error {
	end := time.Now().Add(deadline)
	for {
		err := ok()
		if err == nil {
			return nil
		}
		if time.Now().After(end) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatalf("no free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "capacity: "+format+"\n", args...)
	os.Exit(1)
}
