// Command propagation measures how long a revocation, or a change of a named
// role, made on one keyward instance takes to be seen by another
// (docs/benchmarks.md, targets: p99 under 100 ms with Redis or
// LISTEN/NOTIFY).
//
// Two instances run in this process, each as `keyward serve` wires it: its
// own PostgreSQL pool on one shared schema, its own verify.Engine, its own
// bus client and bus.Broadcaster; instance A also has admin.Keys
// whose observer is its Broadcaster. For each key, B verifies it first (so
// B's cache holds it as VALID), then A revokes it through the admin service,
// and B is polled, a cache-hit Verify at a time, until it answers REVOKED.
// What is timed:
//
//   - propagation: from RevokeKey returning on A (committed, A's own cache
//     updated, the invalidation queued) to B answering REVOKED. It includes
//     the bus delivery and B's reload of the key from the store, which is
//     what a request on B would wait for;
//   - delivery: from RevokeKey returning on A to the invalidation reaching
//     B's Broadcaster (its bus handler is wrapped to note the time), so
//     propagation minus delivery is B's wake-up and reload;
//   - change call: RevokeKey (or UpdateRole) itself on A (store transaction);
//   - end to end: from calling RevokeKey to B answering REVOKED.
//
// The role change (-change role) is timed the same way: one key holds a
// named role granting one permission; B verifies the key for it (VALID,
// cached), A replaces the role's permission through admin.Roles (which
// invalidates the account's keys on every instance), and B is polled until
// it answers INSUFFICIENT_PERMISSIONS; the next change takes away the
// permission the previous one gave.
//
// Everything is on loopback: PostgreSQL at KEYWARD_TEST_POSTGRES_URL (a
// fresh schema, dropped at the end) and Redis at KEYWARD_TEST_REDIS_URL (a
// channel of its own). Every wait is bounded by -deadline. Run it with
// bench/propagation.sh.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keyward/keyward"
	"github.com/keyward/keyward/admin"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/bus"
	"github.com/keyward/keyward/postgres"
	"github.com/keyward/keyward/redis"
	"github.com/keyward/keyward/verify"
)

type options struct {
	pgURL    string
	redisURL string
	buses    []string
	changes  []string
	n        int
	warmup   int
	gap      time.Duration
	deadline time.Duration
	logLevel slog.Level
}

func main() {
	var o options
	var buses, changes, level string
	flag.StringVar(&o.pgURL, "postgres", envOr("KEYWARD_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"), "PostgreSQL URL (a schema is created in it and dropped)")
	flag.StringVar(&o.redisURL, "redis", envOr("KEYWARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis URL")
	flag.StringVar(&buses, "bus", "redis,notify", "buses to measure, comma separated: redis, notify (PostgreSQL LISTEN/NOTIFY)")
	flag.StringVar(&changes, "change", "revoke,role", "changes to measure, comma separated: revoke (a key), role (a named role's permissions)")
	flag.IntVar(&o.n, "n", 200, "measured changes per bus and kind (1..10000)")
	flag.IntVar(&o.warmup, "warmup", 5, "revocations before the measured ones, not counted")
	flag.DurationVar(&o.gap, "gap", 10*time.Millisecond, "pause between revocations, so each one meets an idle bus")
	flag.DurationVar(&o.deadline, "deadline", 5*time.Second, "longest wait for B to see one revocation (or for the bus to come up)")
	flag.StringVar(&level, "log-level", "warn", "log level of the instances: debug, info, warn, error")
	flag.Parse()
	o.buses, o.changes = strings.Split(buses, ","), strings.Split(changes, ",")
	if o.n < 1 || o.n > 10000 || o.warmup < 0 || o.warmup > 1000 {
		fatalf("-n must be 1..10000 and -warmup 0..1000")
	}
	if err := o.logLevel.UnmarshalText([]byte(level)); err != nil {
		fatalf("-log-level: %v", err)
	}

	fmt.Printf("change propagation: %d changes per bus and kind (+%d warm-up), %v apart, %d CPUs, GOMAXPROCS %d, %s\n",
		o.n, o.warmup, o.gap, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
	fmt.Printf("%-22s %-7s %-14s %9s %9s %9s %9s %9s\n", "bus", "change", "figure", "p50", "p90", "p99", "max", "mean")
	failed := false
	for _, name := range o.buses {
		for _, change := range o.changes {
			res, err := measure(context.Background(), o, strings.TrimSpace(name), strings.TrimSpace(change))
			if err != nil {
				fmt.Fprintf(os.Stderr, "propagation: %s, %s: %v\n", name, change, err)
				failed = true
				continue
			}
			res.print()
		}
	}
	if failed {
		os.Exit(1)
	}
}

// result holds the timings of one bus and kind of change, one entry per
// measured change.
type result struct {
	bus, change                 string
	propagation, delivery, call []time.Duration
	endToEnd                    []time.Duration
	polls                       int
}

func (r *result) print() {
	for _, f := range []struct {
		name string
		d    []time.Duration
	}{
		{"propagation", r.propagation},
		{"delivery", r.delivery},
		{"change call", r.call},
		{"end to end", r.endToEnd},
	} {
		d := slices.Clone(f.d)
		slices.Sort(d)
		var sum time.Duration
		for _, v := range d {
			sum += v
		}
		fmt.Printf("%-22s %-7s %-14s %9s %9s %9s %9s %9s\n", r.bus, r.change, f.name,
			ms(pct(d, 0.50)), ms(pct(d, 0.90)), ms(pct(d, 0.99)), ms(d[len(d)-1]), ms(sum/time.Duration(len(d))))
	}
	fmt.Printf("%-22s %-7s %d changes seen by B, %d verifications on B while waiting\n", r.bus, r.change, len(r.propagation), r.polls)
}

// pct is the nearest-rank percentile of sorted d.
func pct(d []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(d)))) - 1
	return d[max(0, min(i, len(d)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

// instance is one keyward instance's verification side.
type instance struct {
	store  *postgres.Store
	engine *verify.Engine
	bcast  *bus.Broadcaster
}

// measure runs two instances on the named bus and makes o.warmup+o.n changes
// of the kind change on A (revoke: revocations of keys; role: changes of a
// named role), timing each until B answers as A does.
func measure(ctx context.Context, o options, busName, change string) (res *result, err error) {
	if change != "revoke" && change != "role" {
		return nil, fmt.Errorf("unknown change %q: use revoke or role", change)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: o.logLevel}))

	suffix := randomHex(6)
	schema := "kwbench_prop_" + suffix
	defer func() {
		if derr := dropSchema(o.pgURL, schema); derr != nil && err == nil {
			err = derr
		}
	}()

	var cleanups []func()
	defer func() {
		for _, f := range slices.Backward(cleanups) {
			f()
		}
	}()

	// The buses: one client per instance, as two processes would have.
	var busA, busB keyward.Bus
	var label string
	switch busName {
	case "redis":
		label = "redis pub/sub"
		channel := "keyward:bench:" + suffix
		for _, b := range []*keyward.Bus{&busA, &busB} {
			client, err := redis.Open(o.redisURL)
			if err != nil {
				return nil, err
			}
			cleanups = append(cleanups, func() { client.Close() })
			*b = redis.NewBus(client, channel, log)
		}
	case "notify":
		label = "postgres LISTEN/NOTIFY"
		channel := "kwbench_" + suffix
		for _, b := range []*keyward.Bus{&busA, &busB} {
			nb, err := postgres.NewNotifyBus(o.pgURL, channel, log)
			if err != nil {
				return nil, err
			}
			cleanups = append(cleanups, nb.Close)
			*b = nb
		}
	default:
		return nil, fmt.Errorf("unknown bus %q: use redis or notify", busName)
	}

	hasher, err := apikey.NewHasher(map[int]keyward.Secret{1: keyward.Secret("bench-pepper-" + randomHex(16))})
	if err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	runCtx, stopRun := context.WithCancel(ctx)
	// Registered after the cleanups: the broadcasters stop before their
	// bus clients, engines and stores are closed.
	defer func() { stopRun(); wg.Wait() }()
	newInstance := func(b keyward.Bus, origin string) (*instance, error) {
		octx, ocancel := context.WithTimeout(ctx, 30*time.Second)
		defer ocancel()
		st, err := postgres.OpenOptions(octx, o.pgURL, postgres.Options{Schema: schema})
		if err != nil {
			return nil, err
		}
		cleanups = append(cleanups, func() { st.Close() })
		eng, err := verify.New(verify.Config{Store: st, Hasher: hasher, Logger: log})
		if err != nil {
			return nil, err
		}
		cleanups = append(cleanups, func() {
			cctx, cc := context.WithTimeout(context.Background(), 5*time.Second)
			defer cc()
			eng.Close(cctx)
		})
		br, err := bus.New(bus.Config{Engine: eng, Bus: b, Origin: origin, Logger: log})
		if err != nil {
			return nil, err
		}
		wg.Go(func() {
			if err := br.Run(runCtx); err != nil {
				log.Error("broadcaster stopped", "origin", origin, "err", err)
			}
		})
		return &instance{store: st, engine: eng, bcast: br}, nil
	}
	a, err := newInstance(busA, "bench-a-"+suffix)
	if err != nil {
		return nil, fmt.Errorf("instance A: %w", err)
	}
	tb := &timedBus{Bus: busB, at: make(map[string]time.Time)}
	b, err := newInstance(tb, "bench-b-"+suffix)
	if err != nil {
		return nil, fmt.Errorf("instance B: %w", err)
	}
	// Both subscribed: B purges its cache when it connects, so keys must
	// be cached after this.
	if err := waitFor(o.deadline, func() bool { return a.bcast.Up() && b.bcast.Up() }); err != nil {
		return nil, fmt.Errorf("the bus did not come up: %w", err)
	}

	svc := admin.New(admin.Config{Store: a.store, Hasher: hasher, Verifier: a.engine, Observer: a.bcast, Logger: log})
	_, root, err := svc.Keys.Bootstrap(ctx)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	rootCtx := keyward.NewContextWithIdentity(ctx, keyward.IdentityOf(root, ""))
	acct, err := svc.Tenancy.CreateAccount(rootCtx, keyward.AccountCreate{Name: "propagation bench"})
	if err != nil {
		return nil, fmt.Errorf("create account: %w", err)
	}
	res = &result{bus: label, change: change}
	if change == "role" {
		return res, roleChanges(ctx, o, svc, rootCtx, acct.ID, a, b, tb, res)
	}
	total := o.warmup + o.n
	keys := make([]*keyward.CreatedKey, total)
	for i := range keys {
		if keys[i], err = svc.Keys.CreateKey(rootCtx, keyward.KeyCreate{
			AccountID: acct.ID, Role: keyward.RoleAccountAdmin, Name: fmt.Sprintf("bench %d", i), Permissions: []string{"bench:read"},
		}); err != nil {
			return nil, fmt.Errorf("create key %d: %w", i, err)
		}
	}

	perms := []string{"bench:read"}
	for i, k := range keys {
		req := verify.Request{Key: k.Secret, Permissions: perms}
		// Cache the key on B: the first verification loads it, the
		// second must be a hit.
		for range 2 {
			if d := b.engine.Verify(ctx, req).Decision; d != keyward.DecisionValid {
				return nil, fmt.Errorf("key %d: B answers %s before the revocation, want VALID", i, d)
			}
		}
		time.Sleep(o.gap)
		tb.forget(hashMark(k.Hash)) // its creation was delivered too

		t0 := time.Now()
		if _, err := svc.Keys.RevokeKey(rootCtx, k.ID); err != nil {
			return nil, fmt.Errorf("revoke key %d: %w", i, err)
		}
		t1 := time.Now()
		polls := 0
		for {
			d := b.engine.Verify(ctx, req).Decision
			polls++
			if d == keyward.DecisionRevoked {
				break
			}
			if d != keyward.DecisionValid {
				return nil, fmt.Errorf("key %d: B answers %s while waiting, want VALID then REVOKED", i, d)
			}
			if time.Since(t1) > o.deadline {
				return nil, fmt.Errorf("key %d: B still answers VALID %v after the revocation on A", i, o.deadline)
			}
			runtime.Gosched() // let the subscriber run on a busy machine
		}
		t2 := time.Now()
		if d := a.engine.Verify(ctx, req).Decision; d != keyward.DecisionRevoked {
			return nil, fmt.Errorf("key %d: A answers %s after revoking it", i, d)
		}
		if i < o.warmup {
			continue
		}
		res.polls += polls
		res.call = append(res.call, t1.Sub(t0))
		res.propagation = append(res.propagation, t2.Sub(t1))
		res.endToEnd = append(res.endToEnd, t2.Sub(t0))
		tr, ok := tb.received(hashMark(k.Hash))
		if !ok {
			return nil, fmt.Errorf("key %d: B answered REVOKED but its bus never delivered the invalidation", i)
		}
		res.delivery = append(res.delivery, tr.Sub(t1))
	}
	return res, nil
}

// roleChanges makes o.warmup+o.n changes of a named role held by one key on
// A, timing each until B answers INSUFFICIENT_PERMISSIONS for the
// permission the change took away.
func roleChanges(ctx context.Context, o options, svc admin.Services, rootCtx context.Context, accountID string, a, b *instance, tb *timedBus, res *result) error {
	grant := func(i int) []string { return []string{fmt.Sprintf("bench:r%d", i)} }
	if _, err := svc.Roles.CreateRole(rootCtx, accountID, keyward.RoleCreate{Name: "bench", Permissions: grant(0)}); err != nil {
		return fmt.Errorf("create role: %w", err)
	}
	k, err := svc.Keys.CreateKey(rootCtx, keyward.KeyCreate{AccountID: accountID, Role: keyward.RoleAccountAdmin, Name: "bench role holder", Roles: []string{"bench"}})
	if err != nil {
		return fmt.Errorf("create key: %w", err)
	}
	for i := range o.warmup + o.n {
		req := verify.Request{Key: k.Secret, Permissions: grant(i)}
		// B holds the key with the role's current permission: the first
		// verification may load it, the second must be a hit.
		for range 2 {
			if d := b.engine.Verify(ctx, req).Decision; d != keyward.DecisionValid {
				return fmt.Errorf("change %d: B answers %s before the change, want VALID", i, d)
			}
		}
		time.Sleep(o.gap)
		tb.forget(accountMark(accountID))

		next := grant(i + 1)
		t0 := time.Now()
		if _, err := svc.Roles.UpdateRole(rootCtx, accountID, "bench", keyward.RoleUpdate{Permissions: &next}); err != nil {
			return fmt.Errorf("change %d: update role: %w", i, err)
		}
		t1 := time.Now()
		polls := 0
		for {
			d := b.engine.Verify(ctx, req).Decision
			polls++
			if d == keyward.DecisionInsufficientPermissions {
				break
			}
			if d != keyward.DecisionValid {
				return fmt.Errorf("change %d: B answers %s while waiting, want VALID then INSUFFICIENT_PERMISSIONS", i, d)
			}
			if time.Since(t1) > o.deadline {
				return fmt.Errorf("change %d: B still answers VALID %v after the role change on A", i, o.deadline)
			}
			runtime.Gosched()
		}
		t2 := time.Now()
		if d := a.engine.Verify(ctx, req).Decision; d != keyward.DecisionInsufficientPermissions {
			return fmt.Errorf("change %d: A answers %s after changing the role", i, d)
		}
		if i < o.warmup {
			continue
		}
		res.polls += polls
		res.call = append(res.call, t1.Sub(t0))
		res.propagation = append(res.propagation, t2.Sub(t1))
		res.endToEnd = append(res.endToEnd, t2.Sub(t0))
		tr, ok := tb.received(accountMark(accountID))
		if !ok {
			return fmt.Errorf("change %d: B saw the change but its bus never delivered the invalidation", i)
		}
		res.delivery = append(res.delivery, tr.Sub(t1))
	}
	return nil
}

// timedBus notes when each key hash, or account, is delivered to the
// subscriber, just before the Broadcaster applies it.
type timedBus struct {
	keyward.Bus
	mu sync.Mutex
	at map[string]time.Time // by hashMark or accountMark
}

// hashMark and accountMark name what an invalidation names in timedBus.
func hashMark(h keyward.KeyHash) string { return "key " + hex.EncodeToString(h[:]) }
func accountMark(id string) string      { return "account " + id }

func (t *timedBus) Subscribe(ctx context.Context, h keyward.BusHandler) error {
	receive := h.Receive
	h.Receive = func(inv keyward.Invalidation) {
		now := time.Now()
		t.mu.Lock()
		marks := make([]string, 0, len(inv.KeyHashes)+1)
		for _, kh := range inv.KeyHashes {
			marks = append(marks, hashMark(kh))
		}
		if inv.AccountID != "" {
			marks = append(marks, accountMark(inv.AccountID))
		}
		for _, m := range marks {
			if _, ok := t.at[m]; !ok {
				t.at[m] = now
			}
		}
		t.mu.Unlock()
		receive(inv)
	}
	return t.Bus.Subscribe(ctx, h)
}

func (t *timedBus) forget(mark string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.at, mark)
}

func (t *timedBus) received(mark string) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	at, ok := t.at[mark]
	return at, ok
}

// waitFor polls cond every millisecond until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out after " + d.String())
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

func dropSchema(pgURL, schema string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		return fmt.Errorf("dropping schema %s: %w", schema, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		return fmt.Errorf("dropping schema %s: %w", schema, err)
	}
	return nil
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
	fmt.Fprintf(os.Stderr, "propagation: "+format+"\n", args...)
	os.Exit(2)
}
