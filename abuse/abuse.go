// Package abuse blocks brute-force attempts and detects anomalous key use,
// off the verification hot path.
//
// The verification engine reports outcomes as keyward.Signal values to a
// Detector (a keyward.SignalSink): every failed verification
// (SignalFailure), every valid use of a key from a network other than that
// of its previous use (SignalNetwork), and per-key usage counts about once a
// second (SignalUsage). Signal never blocks: signals wait in a bounded
// queue (Config.QueueSize) and are dropped, and counted in
// keyward_abuse_signals_dropped_total, when it is full. One goroutine (Run)
// evaluates them in order.
//
// # Brute force
//
// Failed verifications that say the credential itself was refused
// (MALFORMED, NOT_FOUND, REVOKED, EXPIRED, DISABLED) are counted per client
// network: an IPv4 address, or the IPv6 network of Config.IPv6PrefixLen
// bits (default /64, since one host commonly holds a whole /64). Signals
// without an address, addresses in Config.AllowList, and networks that
// hold one of Config.TrustedProxies are not counted, and never blocked.
// The count is kept in fixed windows of BruteForce.Window (default 1m) in a
// Counter: NewLocalCounter for one instance, redisabuse.Counter to share the
// count between instances. When it reaches BruteForce.Threshold (default
// 20), the network is blocked for Config.BlockFor (default 15m) with
// Actions.BlockIP, once across all instances sharing the Counter: the
// instance whose Counter.Claim of the block marker succeeds blocks and
// records an anomaly of type brute_force with action block_ip; every other
// instance that sees the threshold reached calls Actions.ReloadIPRules so it
// applies the new rule at once (should it reload before the rule is
// written, its engine's periodic reload applies it). A failed block is
// recorded with its ActionError, its marker released, and tried again on the
// network's next counted failure at least ten seconds later.
//
// # Anomaly rules
//
// Each rule is off unless Enabled (DefaultConfig enables all of them, with
// no action), has its own thresholds and severity, and some take an action.
// A finding is a keyward.Anomaly: its Action is run first (a failure is kept
// in ActionError, never lost), then it is stored with Config.Recorder and
// handed to Config.Events.
//
//   - ip_spread: a key used from more distinct networks (IPv4 /24, IPv6 /64;
//     from SignalNetwork) in one IPSpread.Window (default 1h) than
//     max(IPSpread.MinNetworks (default 10), IPSpread.Factor (default 3) ×
//     its baseline), the baseline being its mean number of networks per
//     window over the IPSpread.Windows (default 24) windows before. Reported
//     at most once per key per window. Action: none or disable_key.
//   - usage_spike: a key's uses in one UsageSpike.Window (default 5m, from
//     SignalUsage) reach UsageSpike.Minimum (default 100) and exceed
//     UsageSpike.Factor (default 10) × its mean uses per window over the
//     UsageSpike.Windows (default 12) windows before. A key is judged only
//     once this instance has tracked it for that many windows (an hour by
//     default, after each restart). At most once per key per window.
//     Action: none or disable_key.
//   - revoked_key_use: a revoked or expired key presented (SignalFailure
//     with a KeyID and decision REVOKED or EXPIRED), a sign it leaked.
//     Reported at most once per key per RevokedKeyUse.Window (default 1h),
//     across instances sharing the Counter. Action: none or block_ip (the
//     presenting network, for Config.BlockFor; never one in AllowList).
//   - failure_burst: FailureBurst.Threshold (default 50) failed
//     verifications of the keys of one account in one FailureBurst.Window
//     (default 5m), counted in the Counter so instances share it; failures
//     that are limits doing their job (RATE_LIMITED, USAGE_EXCEEDED) do not
//     count. Reported at most once per account per window, across
//     instances. No action.
//
// ip_spread and usage_spike keep their history in memory, per instance: each
// instance judges the share of a key's traffic it serves, and both start
// learning afresh after a restart. At most Config.MaxTracked keys are
// tracked per rule (default 100,000; about 330 bytes for both rules of a
// key seen in one window, BenchmarkTrackedKeys, and Windows × 8 bytes of
// history per rule once a key has counts in two windows); keys idle for a
// whole history are forgotten first, and keys beyond the bound are not
// judged until room frees up.
//
// # Events
//
// Config.Events receives every anomaly after it is stored: the seam the
// audit log and webhooks plug into.
package abuse

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// Recorder stores anomalies with what else a finding records (the admin
// service's Abuse.RecordAnomaly writes its audit entry in the same
// transaction).
type Recorder interface {
	// RecordAnomaly stores a; ECONFLICT if its id is taken.
	RecordAnomaly(ctx context.Context, a *keyward.Anomaly) error
}

// Actions carries out what the detector decides. The serve command
// implements it with the store, the admin service's change notification
// and the verification engine.
type Actions interface {
	// BlockIP creates a global IP block rule for network that expires at
	// until, with reason, and makes this instance apply it at once.
	BlockIP(ctx context.Context, network netip.Prefix, until time.Time, reason string) error
	// DisableKey disables the key with id keyID and makes every instance
	// stop accepting it. ENOTFOUND if the key is gone.
	DisableKey(ctx context.Context, keyID, reason string) error
	// ReloadIPRules makes this instance apply the IP rules of the store now:
	// another instance has blocked a network.
	ReloadIPRules(ctx context.Context) error
}

// EventSink receives each anomaly once it is stored (or failed to be), for
// the audit log and webhooks. AnomalyDetected runs on the detector's
// goroutine: it must return quickly and must not modify a.
type EventSink interface {
	AnomalyDetected(ctx context.Context, a *keyward.Anomaly)
}

// retryAfterFailure is how long an instance whose block failed waits before
// it tries again on the network's next counted failure.
const retryAfterFailure = 10 * time.Second

// logInterval rate-limits the warnings about errors and dropped signals.
const logInterval = time.Minute

// Detector is a keyward.SignalSink that evaluates signals on its own
// goroutine (Run). It is a prometheus.Collector; register it with your
// registry.
type Detector struct {
	cfg     Config
	counter Counter
	now     func() time.Time
	log     *slog.Logger
	queue   chan keyward.Signal
	wants   [keyward.SignalUsage + 1]bool // by kind: whether a rule uses it

	mu sync.Mutex // serialises processing; guards everything below
	// blocked holds the networks this instance has acted on (blocked, or
	// reloaded for), until when it ignores their failures.
	blocked table[netip.Prefix, time.Time]
	// revoked holds the keys whose revoked_key_use is reported, until when.
	revoked table[string, time.Time]
	// bursts holds the window start of each account's reported burst.
	bursts  table[string, time.Time]
	spread  table[string, *spreadState]
	usage   table[string, *history]
	lastLog time.Time
	dropLog uint64 // dropped count at the last warning

	m counters
}

var _ keyward.SignalSink = (*Detector)(nil)

// New returns a Detector for cfg, validated (see Config). It evaluates
// nothing until Run (or Drain).
func New(cfg Config) (*Detector, error) {
	if cfg.Recorder == nil {
		return nil, keyward.Errorf(keyward.EINVALID, "abuse: Config.Recorder is required (the store)")
	}
	if cfg.Actions == nil {
		return nil, keyward.Errorf(keyward.EINVALID, "abuse: Config.Actions is required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := &Detector{
		cfg:     cfg,
		counter: cfg.Counter,
		now:     cfg.Now,
		log:     cfg.Logger.With("component", "abuse"),
		queue:   make(chan keyward.Signal, cfg.QueueSize),
		blocked: newTable[netip.Prefix, time.Time](cfg.MaxTracked),
		revoked: newTable[string, time.Time](cfg.MaxTracked),
		bursts:  newTable[string, time.Time](cfg.MaxTracked),
		spread:  newTable[string, *spreadState](cfg.MaxTracked),
		usage:   newTable[string, *history](cfg.MaxTracked),
	}
	d.m.init()
	if d.counter == nil {
		d.counter = NewLocalCounter(cfg.MaxTracked)
	}
	d.wants[keyward.SignalFailure] = cfg.BruteForce.Enabled || cfg.RevokedKeyUse.Enabled || cfg.FailureBurst.Enabled
	d.wants[keyward.SignalNetwork] = cfg.IPSpread.Enabled
	d.wants[keyward.SignalUsage] = cfg.UsageSpike.Enabled
	return d, nil
}

// Signal implements keyward.SignalSink: it queues s and returns at once. A
// signal no enabled rule uses is ignored; one that finds the queue full is
// dropped and counted.
func (d *Detector) Signal(s keyward.Signal) {
	if int(s.Kind) >= len(d.wants) || !d.wants[s.Kind] {
		return
	}
	select {
	case d.queue <- s:
	default:
		d.m.dropped.Add(1)
	}
}

// Run evaluates queued signals until ctx is done, then returns nil; signals
// still queued then are not evaluated. Call it once, in its own goroutine.
func (d *Detector) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case s := <-d.queue:
			d.handle(ctx, s)
		}
	}
}

// Drain evaluates every signal queued so far in the caller's goroutine and
// returns when the queue is empty: tests drive the detector with it instead
// of Run. With Run running, the two share the work.
func (d *Detector) Drain(ctx context.Context) {
	for {
		select {
		case s := <-d.queue:
			d.handle(ctx, s)
		default:
			return
		}
	}
}

// handle evaluates s with every rule that uses its kind.
func (d *Detector) handle(ctx context.Context, s keyward.Signal) {
	d.mu.Lock()
	defer d.mu.Unlock()
	// A signal being evaluated when Run's ctx ends is finished, within
	// the timeout, so its anomaly and action are not lost.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.Timeout)
	defer cancel()
	d.m.processed.Add(1)
	if s.At.IsZero() {
		s.At = d.now()
	}
	switch s.Kind {
	case keyward.SignalFailure:
		d.bruteForce(ctx, &s)
		d.revokedKeyUse(ctx, &s)
		d.failureBurst(ctx, &s)
	case keyward.SignalNetwork:
		d.ipSpread(ctx, &s)
	case keyward.SignalUsage:
		d.usageSpike(ctx, &s)
	}
	if dropped := d.m.dropped.Load(); dropped != d.dropLog && d.mayLog() {
		d.log.Warn("abuse signal queue full: signals were dropped and not evaluated; raise the queue size if this persists",
			"dropped_total", dropped)
		d.dropLog = dropped
	}
}

// mayLog reports whether a rate-limited warning may be logged now, and if
// so starts a new interval.
func (d *Detector) mayLog() bool {
	now := d.now()
	if now.Sub(d.lastLog) < logInterval {
		return false
	}
	d.lastLog = now
	return true
}

// fail counts an error of op and logs it, rate-limited.
func (d *Detector) fail(op string, err error) {
	d.m.errors[op].Add(1)
	if d.mayLog() {
		d.log.Warn("abuse detection: "+op+" failed (further errors for a minute are only counted)", "err", err)
	}
}

// Operations whose errors are counted (the op label of
// keyward_abuse_errors_total).
const (
	opCount  = "count"
	opClaim  = "claim"
	opAction = "action"
	opReload = "reload"
	opRecord = "record"
	opTrack  = "track"
)

var ops = []string{opCount, opClaim, opAction, opReload, opRecord, opTrack}

// report runs act (when not nil) to carry out a.Action, then stores a and
// hands it to the event sink, and returns the action's error. details are
// the rule's numbers.
func (d *Detector) report(ctx context.Context, a *keyward.Anomaly, details map[string]any, act func(ctx context.Context, reason string) error) error {
	a.ID = apikey.NewID("anm")
	a.CreatedAt = d.now().UTC()
	if b, err := json.Marshal(details); err == nil {
		a.Details = b
	} else { // finite numbers and strings only, so never; keep the finding
		d.fail(opRecord, fmt.Errorf("details of anomaly %s: %w", a.ID, err))
	}
	var actErr error
	if act != nil {
		reason := fmt.Sprintf("keyward abuse detection: %s (anomaly %s)", a.Type, a.ID)
		if actErr = act(ctx, reason); actErr != nil {
			a.ActionError = actErr.Error()
			d.fail(opAction, fmt.Errorf("%s of anomaly %s: %w", a.Action, a.ID, actErr))
		}
	}
	d.m.anomalies[a.Type].Add(1)
	if err := d.cfg.Recorder.RecordAnomaly(ctx, a); err != nil {
		d.fail(opRecord, fmt.Errorf("anomaly %s (%s): %w", a.ID, a.Type, err))
	}
	if d.cfg.Events != nil {
		d.cfg.Events.AnomalyDetected(ctx, a)
	}
	return actErr
}

// blockNetwork is the network a block of ip covers.
func (d *Detector) blockNetwork(ip netip.Addr) netip.Prefix {
	if ip.Is4() {
		return netip.PrefixFrom(ip, 32)
	}
	return netip.PrefixFrom(ip, d.cfg.IPv6PrefixLen).Masked()
}

// blockAction returns the action that blocks the network of ip, or why it
// may not be blocked.
func (d *Detector) blockAction(ip netip.Addr) (act func(ctx context.Context, reason string) error, refused string) {
	switch {
	case !ip.IsValid():
		return nil, "not blocked: the client address is unknown"
	case keyward.PrefixesContain(d.cfg.AllowList, ip):
		return nil, fmt.Sprintf("not blocked: %s is in the abuse allow list", ip)
	}
	network := d.blockNetwork(ip)
	if d.coversProxy(network) {
		return nil, fmt.Sprintf("not blocked: %s holds a trusted proxy", network)
	}
	until := d.now().Add(d.cfg.BlockFor)
	return func(ctx context.Context, reason string) error {
		return d.cfg.Actions.BlockIP(ctx, network, until, reason)
	}, ""
}

// coversProxy reports whether network overlaps a trusted proxy's: a block
// of it would refuse every client behind that proxy.
func (d *Detector) coversProxy(network netip.Prefix) bool {
	for _, p := range d.cfg.TrustedProxies {
		if p.Overlaps(network) {
			return true
		}
	}
	return false
}

// disableAction returns the action that disables keyID.
func (d *Detector) disableAction(keyID string) func(ctx context.Context, reason string) error {
	return func(ctx context.Context, reason string) error {
		return d.cfg.Actions.DisableKey(ctx, keyID, reason)
	}
}

// clientIP returns s.IP without IPv4 mapping and zone; zero if unknown.
func clientIP(s *keyward.Signal) netip.Addr {
	if !s.IP.IsValid() {
		return netip.Addr{}
	}
	return s.IP.Unmap().WithZone("")
}

// ipString is ip in an anomaly, "" when unknown.
func ipString(ip netip.Addr) string {
	if !ip.IsValid() {
		return ""
	}
	return ip.String()
}

// table is a map bounded to max entries. When full, entries that stale
// reports as no longer needed are swept, at most once a second of the
// detector's clock so a full table of live entries costs no more.
type table[K comparable, V any] struct {
	m     map[K]V
	max   int
	swept time.Time
}

func newTable[K comparable, V any](max int) table[K, V] {
	return table[K, V]{m: make(map[K]V), max: max}
}

// room reports whether t can take one more entry.
func (t *table[K, V]) room(now time.Time, stale func(V) bool) bool {
	if len(t.m) < t.max {
		return true
	}
	if now.Sub(t.swept) < time.Second {
		return false
	}
	t.swept = now
	for k, v := range t.m {
		if stale(v) {
			delete(t.m, k)
		}
	}
	return len(t.m) < t.max
}

// put sets k to v if there is room (see room); false if there is not.
func (t *table[K, V]) put(now time.Time, k K, v V, stale func(V) bool) bool {
	if _, ok := t.m[k]; !ok && !t.room(now, stale) {
		return false
	}
	t.m[k] = v
	return true
}

// counters are the detector's metrics (see metrics.go).
type counters struct {
	processed, dropped atomic.Uint64
	anomalies          map[keyward.AnomalyType]*atomic.Uint64
	errors             map[string]*atomic.Uint64
}

func (c *counters) init() {
	c.anomalies = make(map[keyward.AnomalyType]*atomic.Uint64, len(anomalyTypes))
	for _, t := range anomalyTypes {
		c.anomalies[t] = new(atomic.Uint64)
	}
	c.errors = make(map[string]*atomic.Uint64, len(ops))
	for _, op := range ops {
		c.errors[op] = new(atomic.Uint64)
	}
}

var anomalyTypes = []keyward.AnomalyType{
	keyward.AnomalyBruteForce, keyward.AnomalyIPSpread, keyward.AnomalyUsageSpike,
	keyward.AnomalyRevokedKeyUse, keyward.AnomalyFailureBurst,
}
