package bus_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/bus"
	"github.com/keyward/keyward/bus/bustest"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/sqlite"
	"github.com/keyward/keyward/verify"
	"github.com/prometheus/client_golang/prometheus"
)

func TestLocal(t *testing.T) {
	var mu sync.Mutex
	buses := make(map[string]*bus.Local)
	bustest.Run(t, bustest.Backend{
		Open: func(t testing.TB, channel, _ string, _ *slog.Logger) keyward.Bus {
			mu.Lock()
			defer mu.Unlock()
			if buses[channel] == nil {
				buses[channel] = bus.NewLocal()
			}
			return buses[channel]
		},
	})
}

// fakeBus is a Bus the test drives: it reports outages when told and can
// fail or hold publishes.
type fakeBus struct {
	h           chan keyward.BusHandler
	published   chan keyward.Invalidation
	failPublish atomic.Bool
	hold        chan struct{} // when not nil, Publish waits for it
}

func newFakeBus() *fakeBus {
	return &fakeBus{h: make(chan keyward.BusHandler, 1), published: make(chan keyward.Invalidation, 100)}
}

func (f *fakeBus) Publish(ctx context.Context, inv keyward.Invalidation) error {
	if f.hold != nil {
		select {
		case <-f.hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.failPublish.Load() {
		return keyward.Errorf(keyward.EUNAVAILABLE, "fake bus is down")
	}
	if !inv.Empty() {
		f.published <- inv
	}
	return nil
}

func (f *fakeBus) Subscribe(ctx context.Context, h keyward.BusHandler) error {
	h.Connected()
	f.h <- h
	<-ctx.Done()
	return nil
}

type env struct {
	t      *testing.T
	store  *sqlite.Store
	hasher *apikey.Hasher
	now    atomic.Int64 // the engine's clock, Unix nanoseconds
	engine *verify.Engine
	fake   *fakeBus
	bc     *bus.Broadcaster
	h      keyward.BusHandler
	reg    *prometheus.Registry
	logs   *logs
	acct   *keyward.Account
	user   *keyward.User
}

func newEnv(t *testing.T, configure func(*bus.Config)) *env {
	e := &env{
		t: t, store: keywardtest.NewSQLiteStore(t), hasher: keywardtest.NewHasher(t),
		fake: newFakeBus(), reg: prometheus.NewRegistry(), logs: &logs{},
	}
	e.now.Store(time.Now().UnixNano())
	log := slog.New(e.logs)
	engine, err := verify.New(verify.Config{
		Store: e.store, Hasher: e.hasher, CacheTTL: time.Hour, UsageFlushInterval: time.Hour,
		Now: func() time.Time { return time.Unix(0, e.now.Load()) }, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Close(context.Background()) })
	cfg := bus.Config{Engine: engine, Bus: e.fake, Origin: "inst_a", Logger: log}
	if configure != nil {
		configure(&cfg)
	}
	bc, err := bus.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.engine, e.bc = engine, bc
	e.reg.MustRegister(bc)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	e.h = <-e.fake.h
	e.acct = keywardtest.NewAccount(t, e.store, "acme")
	e.user = keywardtest.NewUser(t, e.store, e.acct.ID, "alice")
	return e
}

func (e *env) key() *keyward.CreatedKey {
	return keywardtest.NewUserKey(e.t, e.store, e.hasher, e.acct.ID, e.user.ID)
}

func (e *env) want(raw string, d keyward.Decision) {
	e.t.Helper()
	if got := e.engine.Verify(context.Background(), verify.Request{Key: raw}).Decision; got != d {
		e.t.Fatalf("Verify = %s, want %s", got, d)
	}
}

// disable disables the key in the store without telling anyone.
func (e *env) disable(id string) *keyward.Key {
	e.t.Helper()
	k, err := e.store.UpdateKey(context.Background(), keyward.Change{}, id, func(k *keyward.Key) error {
		k.Disabled = true
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return k
}

func (e *env) gauge() float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "keyward_invalidation_bus_up" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	e.t.Fatal("no keyward_invalidation_bus_up")
	return 0
}

func (e *env) counter(name string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	e.t.Fatalf("no %s", name)
	return 0
}

func (e *env) published() keyward.Invalidation {
	e.t.Helper()
	select {
	case inv := <-e.fake.published:
		return inv
	case <-time.After(10 * time.Second):
		e.t.Fatal("nothing was published")
		return keyward.Invalidation{}
	}
}

func TestBroadcasterAppliesAndPublishes(t *testing.T) {
	e := newEnv(t, nil)
	k := e.key()
	e.want(k.Secret, keyward.DecisionValid)

	e.bc.KeyChanged(e.disable(k.ID))
	e.want(k.Secret, keyward.DecisionDisabled) // at once, from the new state
	if inv := e.published(); inv.Origin != "inst_a" || len(inv.KeyHashes) != 1 || inv.KeyHashes[0] != k.Hash || inv.AccountID != "" {
		t.Errorf("KeyChanged published %+v", inv)
	}

	e.bc.KeysDeleted([]keyward.KeyHash{k.Hash})
	e.want(k.Secret, keyward.DecisionNotFound)
	if inv := e.published(); len(inv.KeyHashes) != 1 || inv.KeyHashes[0] != k.Hash {
		t.Errorf("KeysDeleted published %+v", inv)
	}

	e.bc.AccountChanged(e.acct.ID)
	if inv := e.published(); inv.AccountID != e.acct.ID || len(inv.KeyHashes) != 0 {
		t.Errorf("AccountChanged published %+v", inv)
	}
	// The counter moves after Publish returns, so after the fake has seen
	// the message: wait for it rather than read it once.
	keywardtest.WaitFor(t, "three counted publishes", func() bool { return e.counter("keyward_invalidations_published_total") >= 3 })
	if got := e.counter("keyward_invalidations_published_total"); got != 3 {
		t.Errorf("keyward_invalidations_published_total = %v, want 3", got)
	}
}

// TestBroadcasterReceives: messages of other instances drop entries; the
// instance's own are ignored.
func TestBroadcasterReceives(t *testing.T) {
	e := newEnv(t, nil)
	k := e.key()
	e.want(k.Secret, keyward.DecisionValid)
	e.disable(k.ID)

	e.h.Receive(keyward.Invalidation{Origin: "inst_a", KeyHashes: []keyward.KeyHash{k.Hash}})
	e.want(k.Secret, keyward.DecisionValid) // its own: ignored
	e.h.Receive(keyward.Invalidation{Origin: "inst_b"})
	e.h.Receive(keyward.Invalidation{Origin: "inst_b", KeyHashes: []keyward.KeyHash{k.Hash}})
	e.want(k.Secret, keyward.DecisionDisabled)

	k2 := e.key()
	e.want(k2.Secret, keyward.DecisionValid)
	e.disable(k2.ID)
	e.h.Receive(keyward.Invalidation{Origin: "inst_b", AccountID: e.acct.ID})
	e.want(k2.Secret, keyward.DecisionDisabled)
	if got := e.counter("keyward_invalidations_received_total"); got != 2 {
		t.Errorf("keyward_invalidations_received_total = %v, want 2 (empty and own messages are not counted)", got)
	}
}

func TestBroadcasterOutage(t *testing.T) {
	e := newEnv(t, func(c *bus.Config) { c.DegradedTTL = 5 * time.Second })
	if e.gauge() != 1 || e.engine.CacheTTL() != time.Hour {
		t.Fatalf("connected: gauge %v, TTL %v; want 1, 1h", e.gauge(), e.engine.CacheTTL())
	}
	for outage := 1; outage <= 2; outage++ {
		k := e.key()
		e.want(k.Secret, keyward.DecisionValid)

		e.h.Disconnected(errors.New("connection reset"))
		if e.gauge() != 0 || e.engine.CacheTTL() != 5*time.Second {
			t.Fatalf("outage %d: gauge %v, TTL %v; want 0, 5s", outage, e.gauge(), e.engine.CacheTTL())
		}
		e.disable(k.ID) // its message is lost
		e.want(k.Secret, keyward.DecisionValid)

		e.h.Connected()
		e.want(k.Secret, keyward.DecisionDisabled) // the cache was dropped
		if e.gauge() != 1 || e.engine.CacheTTL() != time.Hour {
			t.Fatalf("outage %d over: gauge %v, TTL %v; want 1, 1h", outage, e.gauge(), e.engine.CacheTTL())
		}
		if n := e.logs.count(slog.LevelWarn, "invalidation bus is down"); n != outage {
			t.Errorf("%d warnings after %d outages: %v", n, outage, e.logs.all())
		}
		if n := e.logs.count(slog.LevelInfo, "invalidation bus is back"); n != outage {
			t.Errorf("%d recoveries logged after %d outages: %v", n, outage, e.logs.all())
		}
	}
	if got := e.counter("keyward_invalidation_bus_reconnects_total"); got != 2 {
		t.Errorf("keyward_invalidation_bus_reconnects_total = %v, want 2", got)
	}
}

// TestBroadcasterPublishFailure: a failed publish never reaches the caller,
// is reported once, and the bus is probed until it works again.
func TestBroadcasterPublishFailure(t *testing.T) {
	e := newEnv(t, nil)
	e.fake.failPublish.Store(true)
	k := e.key()
	for range 5 {
		e.bc.KeyChanged(&k.Key)
	}
	keywardtest.WaitFor(t, "the publish failures", func() bool { return e.counter("keyward_invalidation_publish_errors_total") >= 5 })
	if e.gauge() != 0 {
		t.Errorf("gauge %v while publishing fails, want 0", e.gauge())
	}
	e.fake.failPublish.Store(false)
	keywardtest.WaitFor(t, "a probe to succeed", func() bool { return e.gauge() == 1 })
	if n := e.logs.count(slog.LevelWarn, ""); n != 1 {
		t.Errorf("%d warnings for one publishing outage, want 1: %v", n, e.logs.all())
	}
	if e.engine.CacheTTL() != time.Hour {
		t.Errorf("TTL %v after recovery, want 1h", e.engine.CacheTTL())
	}
}

// TestBroadcasterNeverBlocks: a bus that hangs does not hold up the admin
// request that changed a key; past the queue, messages are dropped.
func TestBroadcasterNeverBlocks(t *testing.T) {
	hold := make(chan struct{})
	defer close(hold)
	e := newEnv(t, func(c *bus.Config) {
		c.QueueSize = 2
		c.PublishTimeout = time.Hour
		c.Bus.(*fakeBus).hold = hold
	})
	k := e.key()
	for range 10 {
		e.bc.KeyChanged(&k.Key)
	}
	if got := e.counter("keyward_invalidations_dropped_total"); got < 7 {
		t.Errorf("keyward_invalidations_dropped_total = %v, want at least 7", got)
	}
	if n := e.logs.count(slog.LevelWarn, "queue full"); n != 1 {
		t.Errorf("%d queue-full warnings, want 1: %v", n, e.logs.all())
	}
}

func TestNewValidates(t *testing.T) {
	engine, err := verify.New(verify.Config{Store: keywardtest.NewSQLiteStore(t), Hasher: keywardtest.NewHasher(t), CacheTTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer engine.Close(context.Background())
	for _, cfg := range []bus.Config{
		{Bus: bus.NewLocal()},
		{Engine: engine},
		{Engine: engine, Bus: bus.NewLocal(), DegradedTTL: -1},
		{Engine: engine, Bus: bus.NewLocal(), QueueSize: -1},
	} {
		if _, err := bus.New(cfg); keyward.ErrorCode(err) != keyward.EINVALID {
			t.Errorf("New(%+v) = %v, want EINVALID", cfg, err)
		}
	}
	bc, err := bus.New(bus.Config{Engine: engine, Bus: bus.NewLocal()})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(bc.Origin(), "inst_") {
		t.Errorf("default origin %q", bc.Origin())
	}
	// A degraded TTL longer than the engine's would lengthen it: capped.
	ctx, cancel := context.WithCancel(context.Background())
	f := newFakeBus()
	bc, err = bus.New(bus.Config{Engine: engine, Bus: f, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- bc.Run(ctx) }()
	(<-f.h).Disconnected(errors.New("down"))
	if got := engine.CacheTTL(); got != 2*time.Second {
		t.Errorf("TTL %v while down, want the engine's 2s", got)
	}
	cancel()
	<-done
}

// logs is a slog.Handler that keeps every record.
type logs struct {
	mu      sync.Mutex
	records []slog.Record
}

func (l *logs) Enabled(context.Context, slog.Level) bool { return true }
func (l *logs) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.records = append(l.records, r)
	l.mu.Unlock()
	return nil
}
func (l *logs) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logs) WithGroup(string) slog.Handler      { return l }

// count returns the records at level (or above, for warnings) whose
// message contains substr.
func (l *logs) count(level slog.Level, substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.records {
		if (r.Level == level || level >= slog.LevelWarn && r.Level >= level) && strings.Contains(r.Message, substr) {
			n++
		}
	}
	return n
}

func (l *logs) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.records {
		out = append(out, r.Level.String()+" "+r.Message)
	}
	return out
}
