package abuse_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/abuse"
	"github.com/keyward/keyward/keywardtest"
	"github.com/prometheus/client_golang/prometheus"
)

// t0 is the start of a window of every length the tests use.
var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// clock is the injected clock of a detector.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time          { return c.now }
func (c *clock) advance(d time.Duration) { c.now = c.now.Add(d) }

// block is one Actions.BlockIP call.
type block struct {
	network netip.Prefix
	until   time.Time
	reason  string
}

// actions stands in for the serve command's wiring: it records what it is
// asked to do and fails when told to.
type actions struct {
	mu       sync.Mutex
	blocks   []block
	disabled []string
	reloads  int
	blockErr error
	blocked  chan struct{} // receives after each BlockIP, if not nil
}

func (a *actions) BlockIP(_ context.Context, network netip.Prefix, until time.Time, reason string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.blocks = append(a.blocks, block{network, until, reason})
	if a.blocked != nil {
		a.blocked <- struct{}{}
	}
	return a.blockErr
}

func (a *actions) DisableKey(_ context.Context, keyID, _ string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.disabled = append(a.disabled, keyID)
	return nil
}

func (a *actions) ReloadIPRules(context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reloads++
	return nil
}

// events is the EventSink of the tests.
type events struct{ got []*keyward.Anomaly }

func (e *events) AnomalyDetected(_ context.Context, a *keyward.Anomaly) { e.got = append(e.got, a) }

// env is a detector on a real SQLite store with an injected clock.
type env struct {
	t      testing.TB
	clock  *clock
	store  keyward.Store
	acts   *actions
	events *events
	d      *abuse.Detector
	reg    *prometheus.Registry
}

// newEnv returns an env whose config is edit applied to one with only the
// recorder, actions, events and clock set (every rule off).
func newEnv(t testing.TB, edit func(*abuse.Config)) *env {
	t.Helper()
	e := &env{t: t, clock: &clock{now: t0}, store: keywardtest.NewSQLiteStore(t), acts: &actions{}, events: &events{}}
	cfg := abuse.Config{
		Recorder: keywardtest.AnomalyRecorder{Store: e.store}, Actions: e.acts, Events: e.events, Now: e.clock.Now,
		Logger: slog.New(slog.DiscardHandler),
	}
	edit(&cfg)
	d, err := abuse.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.d = d
	e.reg = prometheus.NewRegistry()
	e.reg.MustRegister(d)
	return e
}

// send signals s (At set to the clock's now when zero) and evaluates them.
func (e *env) send(ss ...keyward.Signal) {
	for _, s := range ss {
		if s.At.IsZero() {
			s.At = e.clock.now
		}
		e.d.Signal(s)
		e.d.Drain(e.t.Context())
	}
}

// anomalies lists the stored anomalies of type typ (in no useful order:
// ids made in one millisecond sort randomly).
func (e *env) anomalies(typ keyward.AnomalyType) []*keyward.Anomaly {
	e.t.Helper()
	got, _, err := e.store.Anomalies(e.t.Context(), keyward.AnomalyFilter{Type: typ}, keyward.Page{Limit: keyward.MaxPageLimit})
	if err != nil {
		e.t.Fatal(err)
	}
	return got
}

// find returns the one anomaly of as that match accepts.
func find(t *testing.T, as []*keyward.Anomaly, match func(*keyward.Anomaly) bool) *keyward.Anomaly {
	t.Helper()
	var found []*keyward.Anomaly
	for _, a := range as {
		if match(a) {
			found = append(found, a)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d matching anomalies among %d, want 1", len(found), len(as))
	}
	return found[0]
}

func ofKey(keyID string) func(*keyward.Anomaly) bool {
	return func(a *keyward.Anomaly) bool { return a.KeyID == keyID }
}

// metric returns the value of the counter or gauge name with labels
// (name=value pairs).
func (e *env) metric(name string, labels ...string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i < len(labels); i += 2 {
				ok := false
				for _, l := range m.GetLabel() {
					ok = ok || (l.GetName() == labels[i] && l.GetValue() == labels[i+1])
				}
				if !ok {
					continue next
				}
			}
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	e.t.Fatalf("no metric %s %v", name, labels)
	return 0
}

func failure(ip string, d keyward.Decision) keyward.Signal {
	return keyward.Signal{Kind: keyward.SignalFailure, Decision: d, IP: addr(ip), Count: 1}
}

func addr(ip string) netip.Addr {
	if ip == "" {
		return netip.Addr{}
	}
	return netip.MustParseAddr(ip)
}

// details decodes an anomaly's details.
func details(t *testing.T, a *keyward.Anomaly) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.Details, &m); err != nil {
		t.Fatalf("details of %s: %v (%s)", a.ID, err, a.Details)
	}
	return m
}

// want checks fields of an anomaly and that the event sink got it too.
func (e *env) want(a *keyward.Anomaly, typ keyward.AnomalyType, sev keyward.Severity, accountID, keyID, ip string, action keyward.AnomalyAction) {
	e.t.Helper()
	if a.Type != typ || a.Severity != sev || a.AccountID != accountID || a.KeyID != keyID || a.IP != ip || a.Action != action {
		e.t.Errorf("anomaly = %s %s account %q key %q ip %q action %q; want %s %s account %q key %q ip %q action %q",
			a.Type, a.Severity, a.AccountID, a.KeyID, a.IP, a.Action, typ, sev, accountID, keyID, ip, action)
	}
	if !strings.HasPrefix(a.ID, "anm_") {
		e.t.Errorf("anomaly id %q, want an anm_ id", a.ID)
	}
	if !a.CreatedAt.Equal(e.clock.now) {
		e.t.Errorf("anomaly created at %v, want the clock's %v", a.CreatedAt, e.clock.now)
	}
	for _, ev := range e.events.got {
		if ev.ID == a.ID {
			return
		}
	}
	e.t.Errorf("anomaly %s was not sent to the event sink", a.ID)
}

func wantNumber(t *testing.T, m map[string]any, field string, want float64) {
	t.Helper()
	if got, ok := m[field].(float64); !ok || got != want {
		t.Errorf("details %s = %v, want %v (details %v)", field, m[field], want, m)
	}
}

func TestConfig(t *testing.T) {
	store := keywardtest.NewSQLiteStore(t)
	acts := &actions{}
	for _, tc := range []struct {
		name  string
		edit  func(*abuse.Config)
		field string
	}{
		{"no recorder", func(c *abuse.Config) { c.Recorder = nil }, "Config.Recorder"},
		{"no actions", func(c *abuse.Config) { c.Actions = nil }, "Config.Actions"},
		{"negative queue", func(c *abuse.Config) { c.QueueSize = -1 }, "Config.QueueSize"},
		{"short block", func(c *abuse.Config) { c.BlockFor = time.Millisecond }, "Config.BlockFor"},
		{"IPv6 prefix", func(c *abuse.Config) { c.IPv6PrefixLen = 129 }, "Config.IPv6PrefixLen"},
		{"allow list", func(c *abuse.Config) { c.AllowList = []netip.Prefix{{}} }, "Config.AllowList[0]"},
		{"trusted proxies", func(c *abuse.Config) { c.TrustedProxies = []netip.Prefix{{}} }, "Config.TrustedProxies[0]"},
		{"threshold", func(c *abuse.Config) { c.BruteForce.Threshold = -5 }, "Config.BruteForce.Threshold"},
		{"short window", func(c *abuse.Config) { c.BruteForce.Window = 500 * time.Millisecond }, "Config.BruteForce.Window"},
		{"severity", func(c *abuse.Config) { c.IPSpread.Severity = "urgent" }, "Config.IPSpread.Severity"},
		{"factor", func(c *abuse.Config) { c.IPSpread.Factor = -1 }, "Config.IPSpread.Factor"},
		{"NaN factor", func(c *abuse.Config) { c.UsageSpike.Factor = math.NaN() }, "Config.UsageSpike.Factor"},
		{"windows", func(c *abuse.Config) { c.UsageSpike.Windows = abuse.MaxWindows + 1 }, "Config.UsageSpike.Windows"},
		{"spike action", func(c *abuse.Config) { c.UsageSpike.Action = keyward.AnomalyActionBlockIP }, "Config.UsageSpike.Action"},
		{"revoked action", func(c *abuse.Config) { c.RevokedKeyUse.Action = keyward.AnomalyActionDisableKey }, "Config.RevokedKeyUse.Action"},
		{"burst window", func(c *abuse.Config) { c.FailureBurst.Window = -time.Minute }, "Config.FailureBurst.Window"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := abuse.DefaultConfig()
			cfg.Recorder, cfg.Actions = keywardtest.AnomalyRecorder{Store: store}, acts
			tc.edit(&cfg)
			_, err := abuse.New(cfg)
			if keyward.ErrorCode(err) != keyward.EINVALID || !strings.Contains(err.Error(), tc.field+" ") {
				t.Fatalf("New = %v, want EINVALID naming %s", err, tc.field)
			}
		})
	}
	cfg := abuse.DefaultConfig()
	cfg.Recorder, cfg.Actions = keywardtest.AnomalyRecorder{Store: store}, acts
	if _, err := abuse.New(cfg); err != nil {
		t.Fatalf("New(DefaultConfig()) = %v", err)
	}
	// Zero values take the defaults.
	if _, err := abuse.New(abuse.Config{Recorder: keywardtest.AnomalyRecorder{Store: store}, Actions: acts, BruteForce: abuse.BruteForce{Enabled: true}}); err != nil {
		t.Fatalf("New with zero thresholds = %v", err)
	}
}

// TestSignalNeverBlocks: past the queue, signals are dropped and counted;
// kinds no enabled rule uses are not queued at all.
func TestSignalNeverBlocks(t *testing.T) {
	e := newEnv(t, func(c *abuse.Config) {
		c.QueueSize = 4
		c.BruteForce.Enabled = true
	})
	for range 10 {
		e.d.Signal(failure("192.0.2.1", keyward.DecisionNotFound)) // would hang if it blocked
	}
	e.d.Signal(keyward.Signal{Kind: keyward.SignalUsage, KeyID: "key_1", Count: 5})
	if got := e.metric("keyward_abuse_signals_dropped_total"); got != 6 {
		t.Errorf("dropped = %v, want 6", got)
	}
	e.d.Drain(t.Context())
	if got := e.metric("keyward_abuse_signals_total"); got != 4 {
		t.Errorf("evaluated = %v, want the 4 queued failures", got)
	}
}

// TestRun: the worker goroutine evaluates signals until its context ends.
func TestRun(t *testing.T) {
	e := newEnv(t, func(c *abuse.Config) {
		c.BruteForce = abuse.BruteForce{Enabled: true, Threshold: 3}
	})
	e.acts.blocked = make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- e.d.Run(ctx) }()
	for range 3 {
		e.d.Signal(keyward.Signal{Kind: keyward.SignalFailure, Decision: keyward.DecisionMalformed, IP: addr("198.51.100.9"), At: t0})
	}
	<-e.acts.blocked
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if got := e.acts.blocks[0].network; got != netip.MustParsePrefix("198.51.100.9/32") {
		t.Errorf("blocked %v", got)
	}
}

func TestBruteForce(t *testing.T) {
	e := newEnv(t, func(c *abuse.Config) {
		c.BruteForce.Enabled = true
		c.AllowList = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	})
	const ip = "203.0.113.7"
	decisions := []keyward.Decision{keyward.DecisionMalformed, keyward.DecisionNotFound, keyward.DecisionRevoked, keyward.DecisionExpired, keyward.DecisionDisabled}
	for i := range 19 {
		e.send(failure(ip, decisions[i%len(decisions)]))
	}
	// Not counted: other failures, unknown and allow-listed addresses.
	for range 30 {
		e.send(failure(ip, keyward.DecisionIPBlocked), failure(ip, keyward.DecisionInsufficientPermissions),
			failure(ip, keyward.DecisionRateLimited), failure(ip, keyward.DecisionIPNotAllowed),
			failure("", keyward.DecisionNotFound), failure("10.1.2.3", keyward.DecisionNotFound))
	}
	if len(e.acts.blocks) != 0 {
		t.Fatalf("blocked after 19 counted failures: %v", e.acts.blocks)
	}
	e.clock.advance(30 * time.Second)
	e.send(failure(ip, keyward.DecisionNotFound)) // the 20th in the minute
	if len(e.acts.blocks) != 1 {
		t.Fatalf("blocks = %v, want one", e.acts.blocks)
	}
	b := e.acts.blocks[0]
	if b.network != netip.MustParsePrefix(ip+"/32") || !b.until.Equal(e.clock.now.Add(abuse.DefaultBlockFor)) {
		t.Errorf("block = %v until %v, want %s/32 until %v", b.network, b.until, ip, e.clock.now.Add(abuse.DefaultBlockFor))
	}
	as := e.anomalies(keyward.AnomalyBruteForce)
	if len(as) != 1 {
		t.Fatalf("brute_force anomalies = %d, want 1", len(as))
	}
	e.want(as[0], keyward.AnomalyBruteForce, keyward.SeverityHigh, "", "", ip, keyward.AnomalyActionBlockIP)
	if as[0].ActionError != "" {
		t.Errorf("action error %q", as[0].ActionError)
	}
	if !strings.Contains(b.reason, as[0].ID) {
		t.Errorf("block reason %q does not name the anomaly %s", b.reason, as[0].ID)
	}
	m := details(t, as[0])
	wantNumber(t, m, "failures", 20)
	wantNumber(t, m, "threshold", 20)
	wantNumber(t, m, "window_seconds", 60)
	if m["network"] != ip+"/32" {
		t.Errorf("details network = %v", m["network"])
	}

	// Blocked: its failures (should any still come) are not acted on again.
	for range 40 {
		e.send(failure(ip, keyward.DecisionNotFound))
	}
	if len(e.acts.blocks) != 1 || e.acts.reloads != 0 {
		t.Fatalf("blocks = %d, reloads = %d after the block; want 1, 0", len(e.acts.blocks), e.acts.reloads)
	}
	// Once the block is over, the address is counted afresh.
	e.clock.advance(abuse.DefaultBlockFor)
	for range 20 {
		e.send(failure(ip, keyward.DecisionNotFound))
	}
	if len(e.acts.blocks) != 2 {
		t.Fatalf("blocks = %d after the block expired and 20 more failures, want 2", len(e.acts.blocks))
	}
	if got := e.metric("keyward_abuse_anomalies_total", "type", "brute_force"); got != 2 {
		t.Errorf("keyward_abuse_anomalies_total{type=brute_force} = %v, want 2", got)
	}
}

// TestBruteForceTrustedProxies: a trusted proxy's own address (what a
// request it relays without naming the client carries) is never counted nor
// blocked, by brute force or by a block_ip action, nor is an IPv6 network
// that holds one; the clients it names are counted as usual.
func TestBruteForceTrustedProxies(t *testing.T) {
	e := newEnv(t, func(c *abuse.Config) {
		c.BruteForce = abuse.BruteForce{Enabled: true, Threshold: 3}
		c.RevokedKeyUse = abuse.RevokedKeyUse{Enabled: true, Action: keyward.AnomalyActionBlockIP}
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:1:2::5/128")}
	})
	for range 50 {
		e.send(failure("10.0.0.1", keyward.DecisionNotFound), failure("2001:db8:1:2::99", keyward.DecisionNotFound))
	}
	if len(e.acts.blocks) != 0 {
		t.Fatalf("a trusted proxy (or its /64) was blocked: %v", e.acts.blocks)
	}
	revoked := failure("10.0.0.1", keyward.DecisionRevoked)
	revoked.KeyID, revoked.AccountID = "key_leaked", "acc_1"
	e.send(revoked)
	as := e.anomalies(keyward.AnomalyRevokedKeyUse)
	if len(as) != 1 || !strings.Contains(as[0].ActionError, "trusted proxy") || len(e.acts.blocks) != 0 {
		t.Fatalf("revoked_key_use from a proxy: anomalies %v, blocks %v; want the action refused", as, e.acts.blocks)
	}
	for range 3 {
		e.send(failure("203.0.113.7", keyward.DecisionNotFound))
	}
	if len(e.acts.blocks) != 1 || e.acts.blocks[0].network != netip.MustParsePrefix("203.0.113.7/32") {
		t.Fatalf("blocks = %v, want the forwarded client 203.0.113.7/32", e.acts.blocks)
	}
}

// TestBruteForceWindows: counts are per fixed window, and IPv6 addresses
// count per /64.
func TestBruteForceWindows(t *testing.T) {
	e := newEnv(t, func(c *abuse.Config) {
		c.BruteForce = abuse.BruteForce{Enabled: true, Threshold: 5, Window: time.Minute}
	})
	for range 4 {
		e.send(failure("192.0.2.1", keyward.DecisionNotFound))
	}
	e.clock.advance(time.Minute)
	for range 4 {
		e.send(failure("192.0.2.1", keyward.DecisionNotFound))
	}
	if len(e.acts.blocks) != 0 {
		t.Fatalf("blocked with 4 failures in each of two windows: %v", e.acts.blocks)
	}
	for i := range 5 {
		e.send(failure(fmt.Sprintf("2001:db8:1:2::%x", i+1), keyward.DecisionNotFound))
	}
	if len(e.acts.blocks) != 1 || e.acts.blocks[0].network != netip.MustParsePrefix("2001:db8:1:2::/64") {
		t.Fatalf("blocks = %v, want 2001:db8:1:2::/64", e.acts.blocks)
	}
	// An IPv4-mapped address counts as its IPv4 form.
	for range 5 {
		e.send(failure("::ffff:192.0.2.9", keyward.DecisionNotFound))
	}
	if len(e.acts.blocks) != 2 || e.acts.blocks[1].network != netip.MustParsePrefix("192.0.2.9/32") {
		t.Fatalf("blocks = %v, want 192.0.2.9/32 second", e.acts.blocks)
	}
}

// TestBruteForceActionFails: a failed block is recorded with its error and
// tried again ten seconds later.
func TestBruteForceActionFails(t *testing.T) {
	e := newEnv(t, func(c *abuse.Config) { c.BruteForce = abuse.BruteForce{Enabled: true, Threshold: 3} })
	e.acts.blockErr = errors.New("store unavailable")
	for range 3 {
		e.send(failure("192.0.2.1", keyward.DecisionNotFound))
	}
	as := e.anomalies(keyward.AnomalyBruteForce)
	if len(as) != 1 || as[0].ActionError != "store unavailable" {
		t.Fatalf("anomalies = %v, want one with ActionError", as)
	}
	e.send(failure("192.0.2.1", keyward.DecisionNotFound))
	if len(e.acts.blocks) != 1 {
		t.Fatalf("blocks = %d right after a failure, want no retry yet", len(e.acts.blocks))
	}
	e.acts.blockErr = nil
	e.clock.advance(10 * time.Second)
	e.send(failure("192.0.2.1", keyward.DecisionNotFound))
	if len(e.acts.blocks) != 2 {
		t.Fatalf("blocks = %d, want a retry 10s later", len(e.acts.blocks))
	}
	as = e.anomalies(keyward.AnomalyBruteForce)
	if len(as) != 2 {
		t.Fatalf("anomalies = %d, want a second one", len(as))
	}
	find(t, as, func(a *keyward.Anomaly) bool { return a.ActionError == "" })
	if got := e.metric("keyward_abuse_errors_total", "op", "action"); got != 1 {
		t.Errorf("keyward_abuse_errors_total{op=action} = %v, want 1", got)
	}
}

// TestFloodStaysBounded: a flood of distinct made-up keys, accounts and
// addresses fills every in-memory table of the detector (and its local
// counter) to Config.MaxTracked and no further.
func TestFloodStaysBounded(t *testing.T) {
	const max = 50
	e := newEnv(t, func(c *abuse.Config) {
		d := abuse.DefaultConfig()
		c.BruteForce, c.IPSpread, c.UsageSpike, c.RevokedKeyUse, c.FailureBurst = d.BruteForce, d.IPSpread, d.UsageSpike, d.RevokedKeyUse, d.FailureBurst
		c.MaxTracked = max
	})
	for i := range 3000 {
		ip := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		f := failure(ip, keyward.DecisionNotFound)
		f.AccountID = fmt.Sprintf("acc_%d", i)
		e.send(f,
			keyward.Signal{Kind: keyward.SignalNetwork, Decision: keyward.DecisionValid, IP: addr(ip), KeyID: fmt.Sprintf("key_n%d", i), AccountID: "acc_1", Count: 1},
			keyward.Signal{Kind: keyward.SignalUsage, KeyID: fmt.Sprintf("key_u%d", i), AccountID: "acc_1", Count: 1})
		if i < 2*max {
			r := failure(ip, keyward.DecisionRevoked)
			r.KeyID = fmt.Sprintf("key_r%d", i)
			e.send(r)
		}
	}
	tracked := map[string]float64{}
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "keyward_abuse_tracked" {
			for _, m := range mf.GetMetric() {
				tracked[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
			}
		}
	}
	for _, table := range []string{"blocked", "revoked", "bursts", "spread", "usage", "counts", "markers"} {
		n, ok := tracked[table]
		if !ok || n > max {
			t.Errorf("keyward_abuse_tracked{table=%q} = %v (present: %v), bound %d", table, n, ok, max)
		}
	}
	for _, table := range []string{"spread", "usage", "counts"} {
		if tracked[table] != max {
			t.Errorf("the flood filled %s to %v, not its bound %d: it did not reach it", table, tracked[table], max)
		}
	}
}

// BenchmarkTrackedKeys reports the live heap that ip_spread and usage_spike
// (default settings) hold per key they track, for keys each seen from one
// network with one usage report in one window, as most keys of a skewed
// load are; each signal carries its own copies of the ids, as the
// verification engine's do. A server holds this for at most MaxTracked keys
// (docs/benchmarks.md, the server's memory per cached key).
func BenchmarkTrackedKeys(b *testing.B) {
	const keys = 100_000
	for b.Loop() {
		e := newEnv(b, func(c *abuse.Config) {
			d := abuse.DefaultConfig()
			c.IPSpread, c.UsageSpike, c.MaxTracked = d.IPSpread, d.UsageSpike, keys
		})
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range keys {
			id := fmt.Sprintf("key_%022d", i) // the length of apikey.NewID's
			ip := fmt.Sprintf("10.%d.%d.1", i>>8&255, i&255)
			e.send(network(strings.Clone(id), ip), usage(strings.Clone(id), 1))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if n := e.metric("keyward_abuse_tracked", "table", "spread"); n != keys {
			b.Fatalf("ip_spread tracks %v keys, want %d", n, keys)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/keys, "B/key")
		runtime.KeepAlive(e)
	}
}
