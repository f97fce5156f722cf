package verify_test

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/sqlite"
	"github.com/keyward/keyward/verify"
	"github.com/prometheus/client_golang/prometheus"
)

// store is the real SQLite store with counters and fault injection on the
// two methods the engine calls.
type store struct {
	*sqlite.Store
	lookups atomic.Int64
	down    atomic.Bool
	// afterRead, when set before the engine starts loading, runs after
	// every real KeyByHash read, before its result is returned.
	afterRead func(h keyward.KeyHash)

	mu      sync.Mutex
	touches [][]keyward.KeyUse
	touched chan struct{}
}

func (s *store) KeyByHash(ctx context.Context, h keyward.KeyHash) (*keyward.Key, error) {
	s.lookups.Add(1)
	if s.down.Load() {
		return nil, keyward.Errorf(keyward.EUNAVAILABLE, "store is down")
	}
	k, err := s.Store.KeyByHash(ctx, h)
	if s.afterRead != nil {
		s.afterRead(h)
	}
	return k, err
}

func (s *store) TouchKeys(ctx context.Context, uses []keyward.KeyUse) error {
	if s.down.Load() {
		return keyward.Errorf(keyward.EUNAVAILABLE, "store is down")
	}
	s.mu.Lock()
	s.touches = append(s.touches, uses)
	s.mu.Unlock()
	defer func() {
		select {
		case s.touched <- struct{}{}:
		default:
		}
	}()
	return s.Store.TouchKeys(ctx, uses)
}

func (s *store) Touches() [][]keyward.KeyUse {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]keyward.KeyUse(nil), s.touches...)
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

type env struct {
	t      testing.TB
	ctx    context.Context
	store  *store
	hasher *apikey.Hasher
	clock  *clock
	engine *verify.Engine
	reg    *prometheus.Registry
	acct   *keyward.Account
	user   *keyward.User
}

// newEnv returns an engine on a fresh SQLite store with one account and one
// user. configure, if not nil, adjusts the engine's config (and may replace
// the hasher, which NewKey then also uses).
func newEnv(t testing.TB, configure func(*verify.Config)) *env {
	t.Helper()
	s := &store{Store: keywardtest.NewSQLiteStore(t), touched: make(chan struct{}, 1)}
	e := &env{
		t:      t,
		ctx:    t.Context(),
		store:  s,
		hasher: keywardtest.NewHasher(t),
		clock:  &clock{now: keywardtest.Now()},
		reg:    prometheus.NewRegistry(),
	}
	cfg := verify.Config{
		Store:  s,
		Hasher: e.hasher,
		Now:    e.clock.Now,
		// Flushes happen when a test asks (Close or Flush), unless it
		// sets a short interval.
		UsageFlushInterval: time.Hour,
		Logger:             slog.New(slog.DiscardHandler),
	}
	if configure != nil {
		configure(&cfg)
	}
	e.hasher = cfg.Hasher
	engine, err := verify.New(cfg)
	if err != nil {
		t.Fatalf("verify.New: %v", err)
	}
	t.Cleanup(func() {
		if err := engine.Close(context.Background()); err != nil && !s.down.Load() {
			t.Errorf("Close: %v", err)
		}
	})
	e.engine = engine
	e.reg.MustRegister(engine)
	e.acct = keywardtest.NewAccount(t, s, "acme")
	e.user = keywardtest.NewUser(t, s, e.acct.ID, "alice")
	return e
}

// key creates a user key of the env's user from the template k.
func (e *env) key(k keyward.Key) *keyward.CreatedKey {
	e.t.Helper()
	if k.Role == "" {
		k.Role, k.AccountID, k.UserID = keyward.RoleUser, e.acct.ID, e.user.ID
	}
	return keywardtest.NewKey(e.t, e.store, e.hasher, k)
}

func (e *env) verify(raw string, perms ...string) verify.Result {
	return e.engine.Verify(e.ctx, verify.Request{Key: raw, Permissions: perms, Agent: "test-agent"})
}

// want verifies raw and fails unless the decision is d.
func (e *env) want(raw string, d keyward.Decision, perms ...string) verify.Result {
	e.t.Helper()
	res := e.verify(raw, perms...)
	if res.Decision != d {
		e.t.Fatalf("Verify(%s) = %s, want %s", apikey.Start(raw), res.Decision, d)
	}
	return res
}

// lookups returns the number of store lookups so far.
func (e *env) lookups() int64 { return e.store.lookups.Load() }

// wantLookups fails unless the store was asked exactly n times since from.
func (e *env) wantLookups(from, n int64) {
	e.t.Helper()
	if got := e.lookups() - from; got != n {
		e.t.Fatalf("%d store lookups, want %d", got, n)
	}
}

// revoke revokes a key in the store at the clock's time and returns its new
// state; it does not tell the engine.
func (e *env) revoke(id string) *keyward.Key {
	e.t.Helper()
	now := e.clock.Now()
	k, err := e.store.UpdateKey(e.ctx, keyward.Change{}, id, func(k *keyward.Key) error {
		k.RevokedAt, k.UpdatedAt = &now, now
		return nil
	})
	if err != nil {
		e.t.Fatalf("revoke %s: %v", id, err)
	}
	return k
}

// metric returns the value of a counter or gauge (the sample count of a histogram)
// named name, with label code=code when code is not empty.
func (e *env) metric(name string, code keyward.Decision) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if code != "" && (len(m.GetLabel()) != 1 || m.GetLabel()[0].GetValue() != string(code)) {
				continue
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	e.t.Fatalf("no metric %s{code=%q}", name, code)
	return 0
}

// unknownKey returns a well-formed key that no store holds.
func unknownKey(t testing.TB) string {
	t.Helper()
	s, err := apikey.Generate(apikey.PrefixUser)
	if err != nil {
		t.Fatal(err)
	}
	return s.Reveal()
}

func ptr[T any](v T) *T { return &v }
