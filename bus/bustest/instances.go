package bustest

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/admin"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/bus"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/sqlite"
	"github.com/keyward/keyward/verify"
	"github.com/prometheus/client_golang/prometheus"
)

// Cache TTLs of the instances: long enough that nothing expires by itself
// during a test, so every reload is caused by an invalidation (or by the
// test moving the clock).
const (
	cacheTTL    = time.Hour
	degradedTTL = 5 * time.Second
)

// instance is one keyward instance: an engine with its own injected clock
// and its Broadcaster, running until the test ends.
type instance struct {
	t      testing.TB
	name   string
	store  *sqlite.Store
	hasher *apikey.Hasher
	clock  *clock
	engine *verify.Engine
	bc     *bus.Broadcaster
	reg    *prometheus.Registry
	logs   *logRecorder
}

func newInstance(t testing.TB, name string, store *sqlite.Store, hasher *apikey.Hasher, open func(log *slog.Logger) keyward.Bus) *instance {
	t.Helper()
	in := &instance{
		t: t, name: name, store: store, hasher: hasher,
		clock: &clock{now: time.Now()},
		reg:   prometheus.NewRegistry(),
		logs:  &logRecorder{},
	}
	log := slog.New(in.logs)
	engine, err := verify.New(verify.Config{
		Store: store, Hasher: hasher, Now: in.clock.Now, Logger: log,
		CacheTTL: cacheTTL, NegativeTTL: cacheTTL, UsageFlushInterval: time.Hour,
	})
	if err != nil {
		t.Fatalf("%s: verify.New: %v", name, err)
	}
	t.Cleanup(func() { engine.Close(context.Background()) })
	bc, err := bus.New(bus.Config{Engine: engine, Bus: open(log), DegradedTTL: degradedTTL, Origin: name, Logger: log})
	if err != nil {
		t.Fatalf("%s: bus.New: %v", name, err)
	}
	in.engine, in.bc = engine, bc
	in.reg.MustRegister(engine, bc)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: Run: %v", name, err)
		}
	})
	in.waitGauge(1)
	return in
}

// want polls until raw verifies as d on this instance.
func (in *instance) want(raw string, d keyward.Decision) {
	in.t.Helper()
	var got keyward.Decision
	waitFor(in.t, in.name+" to answer "+string(d), func() bool {
		got = in.engine.Verify(context.Background(), verify.Request{Key: raw}).Decision
		return got == d
	})
}

// now verifies raw once and fails unless the answer is d.
func (in *instance) now(raw string, d keyward.Decision) {
	in.t.Helper()
	if got := in.engine.Verify(context.Background(), verify.Request{Key: raw}).Decision; got != d {
		in.t.Fatalf("%s: Verify = %s, want %s", in.name, got, d)
	}
}

func (in *instance) metric(name string) float64 {
	in.t.Helper()
	mfs, err := in.reg.Gather()
	if err != nil {
		in.t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			m := mf.GetMetric()[0]
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	in.t.Fatalf("no metric %s", name)
	return 0
}

func (in *instance) waitGauge(v float64) {
	in.t.Helper()
	waitFor(in.t, in.name+"'s keyward_invalidation_bus_up to be "+map[float64]string{0: "0", 1: "1"}[v], func() bool {
		return in.metric("keyward_invalidation_bus_up") == v
	})
}

// update changes a key in the store, as the admin service does, and tells
// this instance's observer.
func (in *instance) update(id string, fn func(*keyward.Key)) {
	in.t.Helper()
	k, err := in.store.UpdateKey(context.Background(), keyward.Change{}, id, func(k *keyward.Key) error {
		fn(k)
		k.UpdatedAt = time.Now().UTC().Truncate(time.Microsecond)
		return nil
	})
	if err != nil {
		in.t.Fatalf("update key %s: %v", id, err)
	}
	in.bc.KeyChanged(k)
}

// revoke revokes k a minute ago, before the time of any instance's clock.
func revoke(k *keyward.Key) {
	at := time.Now().Add(-time.Minute).UTC().Truncate(time.Microsecond)
	k.RevokedAt = &at
}

func testTwoInstances(t *testing.T, b Backend) {
	ch := Channel(t)
	store, hasher := keywardtest.NewSQLiteStore(t), keywardtest.NewHasher(t)
	open := func(log *slog.Logger) keyward.Bus { return b.Open(t, ch, b.Target, log) }
	a := newInstance(t, "inst_a", store, hasher, open)
	bi := newInstance(t, "inst_b", store, hasher, open)
	acct := keywardtest.NewAccount(t, store, "acme")
	user := keywardtest.NewUser(t, store, acct.ID, "alice")
	newKey := func() *keyward.CreatedKey { return keywardtest.NewUserKey(t, store, hasher, acct.ID, user.ID) }

	t.Run("revoke on A is seen by B", func(t *testing.T) {
		k := newKey()
		a.now(k.Secret, keyward.DecisionValid)
		bi.now(k.Secret, keyward.DecisionValid) // cached for an hour
		a.update(k.ID, revoke)
		a.now(k.Secret, keyward.DecisionRevoked) // at once on A
		bi.want(k.Secret, keyward.DecisionRevoked)
	})

	t.Run("own messages are ignored", func(t *testing.T) {
		k := newKey()
		a.now(k.Secret, keyward.DecisionValid)
		bi.now(k.Secret, keyward.DecisionValid)
		recvA := a.metric("keyward_invalidations_received_total")
		missesA := a.metric("keyward_verify_cache_misses_total")
		recvB := bi.metric("keyward_invalidations_received_total")
		a.update(k.ID, func(k *keyward.Key) { k.Permissions = []string{"x"} })
		// B answers A's message with one of its own; A receives B's
		// after its own, so by then it has ignored its own.
		waitFor(t, "B to receive A's message", func() bool { return bi.metric("keyward_invalidations_received_total") > recvB })
		other := newKey()
		bi.bc.KeyChanged(&other.Key)
		waitFor(t, "A to receive B's message", func() bool { return a.metric("keyward_invalidations_received_total") > recvA })
		if got := a.metric("keyward_invalidations_received_total"); got != recvA+1 {
			t.Errorf("A applied %v messages, want 1 (B's only)", got-recvA)
		}
		// A's entry is the state its observer wrote, not dropped by its
		// own message: no reload.
		a.now(k.Secret, keyward.DecisionValid)
		if got := a.metric("keyward_verify_cache_misses_total"); got != missesA {
			t.Errorf("A reloaded the key %v times after its own change, want 0", got-missesA)
		}
	})

	t.Run("delete on A is seen by B", func(t *testing.T) {
		k := newKey()
		bi.now(k.Secret, keyward.DecisionValid)
		d, err := store.DeleteKey(context.Background(), keyward.Change{}, k.ID)
		if err != nil {
			t.Fatal(err)
		}
		a.bc.KeysDeleted([]keyward.KeyHash{d.Hash})
		bi.want(k.Secret, keyward.DecisionNotFound)
	})

	t.Run("a named role changed on A is seen by B", func(t *testing.T) {
		ctx := context.Background()
		now := keywardtest.Now()
		role := &keyward.NamedRole{AccountID: acct.ID, Name: "reader", Permissions: []string{"notes:read"}, CreatedAt: now, UpdatedAt: now}
		if err := store.CreateRole(ctx, keyward.Change{}, role); err != nil {
			t.Fatal(err)
		}
		k := keywardtest.NewKey(t, store, hasher, keyward.Key{Role: keyward.RoleUser, AccountID: acct.ID, UserID: user.ID, Roles: []string{"reader"}})
		req := verify.Request{Key: k.Secret, Permissions: []string{"notes:read"}}
		for _, in := range []*instance{a, bi} {
			if d := in.engine.Verify(ctx, req).Decision; d != keyward.DecisionValid {
				t.Fatalf("%s: Verify = %s before the change, want VALID", in.name, d)
			}
		}
		if _, err := store.UpdateRole(ctx, keyward.Change{}, acct.ID, "reader", func(r *keyward.NamedRole) error {
			r.Permissions = []string{"notes:write"}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		a.bc.AccountChanged(acct.ID) // as admin.Roles does after the commit
		if d := a.engine.Verify(ctx, req).Decision; d != keyward.DecisionInsufficientPermissions {
			t.Fatalf("inst_a: Verify = %s at once after the change, want INSUFFICIENT_PERMISSIONS", d)
		}
		waitFor(t, "inst_b to refuse the permission the role lost", func() bool {
			return bi.engine.Verify(ctx, req).Decision == keyward.DecisionInsufficientPermissions
		})
	})

	t.Run("user identity changed through the admin service on A is seen by B", func(t *testing.T) {
		kr := keywardtest.NewKeyring(t)
		root := keyward.NewContextWithIdentity(context.Background(), &keyward.Identity{KeyID: "key_test_root", Role: keyward.RoleRoot})
		adminOf := func(in *instance) admin.Services {
			return admin.New(admin.Config{Store: store, Hasher: hasher, Verifier: in.engine, Observer: in.bc, Sealer: kr})
		}
		adminA, adminB := adminOf(a), adminOf(bi)
		k := newKey()
		verifyOn := func(svc admin.Services) *keyward.VerifyResult {
			t.Helper()
			res, err := svc.Keys.VerifyKey(root, keyward.VerifyRequest{Key: k.Secret})
			if err != nil || !res.Valid {
				t.Fatalf("verify = %+v, %v", res, err)
			}
			return res
		}
		changed := func(res *keyward.VerifyResult) bool {
			return res.Identity.ExternalID == "ext-alice" && string(res.Meta) == `{"plan":"pro"}` &&
				string(res.SecretMeta) == `{"dsn":"postgres://alice@db/alice"}`
		}
		for _, svc := range []admin.Services{adminA, adminB} { // cached on both, for an hour
			if res := verifyOn(svc); changed(res) || res.Meta != nil || res.SecretMeta != nil {
				t.Fatalf("before the change: %+v", res)
			}
		}
		meta, secret := json.RawMessage(`{"plan":"pro"}`), json.RawMessage(`{"dsn":"postgres://alice@db/alice"}`)
		ext := "ext-alice"
		if _, err := adminA.Tenancy.UpdateUser(root, acct.ID, user.ID, keyward.UserUpdate{ExternalID: &ext, Meta: &meta, SecretMeta: &secret}); err != nil {
			t.Fatal(err)
		}
		if res := verifyOn(adminA); !changed(res) { // at once on A
			t.Fatalf("A after the change: %+v", res)
		}
		waitFor(t, "B to answer with the user's new identity", func() bool { return changed(verifyOn(adminB)) })
	})

	t.Run("account disabled on A is seen by B", func(t *testing.T) {
		k := newKey()
		bi.now(k.Secret, keyward.DecisionValid)
		if _, err := store.UpdateAccount(context.Background(), keyward.Change{}, acct.ID, func(a *keyward.Account) error {
			a.Disabled = true
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		a.bc.AccountChanged(acct.ID)
		bi.want(k.Secret, keyward.DecisionDisabled)
	})

	for _, in := range []*instance{a, bi} {
		if n := in.logs.count(slog.LevelWarn); n != 0 {
			t.Errorf("%s logged %d warnings on a healthy bus: %v", in.name, n, in.logs.all())
		}
	}
}

// testOutage: B reaches the service through a proxy that the test cuts and
// restores. While cut, B keeps serving with the degraded TTL, reports the
// outage once (one warning, the gauge), and once restored it drops its
// whole cache, restores its TTL and says so once.
func testOutage(t *testing.T, b Backend) {
	ch := Channel(t)
	store, hasher := keywardtest.NewSQLiteStore(t), keywardtest.NewHasher(t)
	proxy := keywardtest.NewProxy(t, b.Target)
	a := newInstance(t, "inst_a", store, hasher, func(log *slog.Logger) keyward.Bus { return b.Open(t, ch, b.Target, log) })
	bi := newInstance(t, "inst_b", store, hasher, func(log *slog.Logger) keyward.Bus { return b.Open(t, ch, proxy.Addr(), log) })
	acct := keywardtest.NewAccount(t, store, "acme")
	user := keywardtest.NewUser(t, store, acct.ID, "alice")
	revoked := keywardtest.NewUserKey(t, store, hasher, acct.ID, user.ID)
	changed := keywardtest.NewUserKey(t, store, hasher, acct.ID, user.ID)
	bi.now(revoked.Secret, keyward.DecisionValid)
	if got := bi.engine.CacheTTL(); got != cacheTTL {
		t.Fatalf("B's cache TTL is %v with the bus up, want %v", got, cacheTTL)
	}

	proxy.Cut()
	bi.waitGauge(0)
	if got := bi.engine.CacheTTL(); got != degradedTTL {
		t.Fatalf("B's cache TTL is %v with the bus down, want %v", got, degradedTTL)
	}
	// A change on A does not reach B: B serves the cached state for at
	// most the degraded TTL, counted from when the bus went down.
	a.update(revoked.ID, revoke)
	bi.now(revoked.Secret, keyward.DecisionValid)
	bi.clock.Advance(degradedTTL)
	bi.now(revoked.Secret, keyward.DecisionRevoked)
	// Cached during the outage, then changed on A: only the purge at
	// reconnection (the clock does not move again) can make B see it.
	bi.now(changed.Secret, keyward.DecisionValid)
	a.update(changed.ID, func(k *keyward.Key) { k.Disabled = true })
	bi.now(changed.Secret, keyward.DecisionValid)
	if n := bi.logs.count(slog.LevelWarn); n != 1 {
		t.Errorf("B logged %d warnings during the outage, want 1: %v", n, bi.logs.all())
	}

	proxy.Restore()
	bi.waitGauge(1)
	bi.now(changed.Secret, keyward.DecisionDisabled)
	if got := bi.engine.CacheTTL(); got != cacheTTL {
		t.Errorf("B's cache TTL is %v after the bus came back, want %v", got, cacheTTL)
	}
	if got := bi.metric("keyward_invalidation_bus_reconnects_total"); got != 1 {
		t.Errorf("keyward_invalidation_bus_reconnects_total = %v, want 1", got)
	}
	// And the bus works again.
	again := keywardtest.NewUserKey(t, store, hasher, acct.ID, user.ID)
	bi.now(again.Secret, keyward.DecisionValid)
	a.update(again.ID, revoke)
	bi.want(again.Secret, keyward.DecisionRevoked)

	if n := bi.logs.count(slog.LevelWarn); n != 1 {
		t.Errorf("B logged %d warnings for one outage, want 1: %v", n, bi.logs.all())
	}
	if n := bi.logs.countMessage(slog.LevelInfo, "invalidation bus is back"); n != 1 {
		t.Errorf("B logged %d recoveries, want 1: %v", n, bi.logs.all())
	}
	if n := a.logs.count(slog.LevelWarn); n != 0 {
		t.Errorf("A, whose bus stayed up, logged %d warnings: %v", n, a.logs.all())
	}
}

// clock is an injected clock that moves only when told.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// logRecorder is a slog.Handler that keeps every record, at every level.
type logRecorder struct {
	mu      sync.Mutex
	records []string
	levels  []slog.Level
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	l.mu.Lock()
	l.records = append(l.records, b.String())
	l.levels = append(l.levels, r.Level)
	l.mu.Unlock()
	return nil
}

func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// count returns the number of records at level or above.
func (l *logRecorder) count(level slog.Level) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, lv := range l.levels {
		if lv >= level {
			n++
		}
	}
	return n
}

func (l *logRecorder) countMessage(level slog.Level, substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for i, lv := range l.levels {
		if lv == level && strings.Contains(l.records[i], substr) {
			n++
		}
	}
	return n
}

func (l *logRecorder) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.records...)
}
