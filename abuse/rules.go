package abuse

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/keyward/keyward"
)

// maxNetworksPerWindow bounds the distinct networks ip_spread remembers for
// one key in one window; a key's count saturates there.
const maxNetworksPerWindow = 4096

// Names in the Counter. Counts and markers live in separate namespaces of
// a Counter, so a count and a marker may share a name.
const (
	nameFailures = "failures:"     // + network: brute-force count
	nameBlock    = "block:"        // + network: brute-force block marker
	nameRevoked  = "revoked:"      // + key id: revoked_key_use report marker
	nameBurst    = "burst:"        // + account id: failure_burst count
	nameBurstRep = "burst-report:" // + account id + ":" + window start: report marker
)

// bruteForce counts a failure against its network and blocks the network
// at the threshold.
func (d *Detector) bruteForce(ctx context.Context, s *keyward.Signal) {
	c := &d.cfg.BruteForce
	ip := clientIP(s)
	if !c.Enabled || !ip.IsValid() || !s.Decision.Unauthenticated() || keyward.PrefixesContain(d.cfg.AllowList, ip) {
		return
	}
	network := d.blockNetwork(ip)
	if d.coversProxy(network) {
		return
	}
	now := d.now()
	if until, ok := d.blocked.m[network]; ok && now.Before(until) {
		return
	}
	name := network.String()
	n, err := d.counter.Add(ctx, nameFailures+name, 1, s.At, c.Window)
	if err != nil {
		d.fail(opCount, fmt.Errorf("failures of %s: %w", name, err))
		return
	}
	if n < c.Threshold {
		return
	}
	until := now.Add(d.cfg.BlockFor)
	won, err := d.counter.Claim(ctx, nameBlock+name, now, d.cfg.BlockFor)
	if err != nil {
		d.fail(opClaim, fmt.Errorf("block of %s: %w", name, err))
		return
	}
	if !won { // another instance blocks it
		d.rememberBlocked(now, network, until)
		if err := d.cfg.Actions.ReloadIPRules(ctx); err != nil {
			d.fail(opReload, err)
		}
		return
	}
	a := &keyward.Anomaly{
		Type: keyward.AnomalyBruteForce, Severity: c.Severity,
		IP: ip.String(), Action: keyward.AnomalyActionBlockIP,
	}
	details := map[string]any{
		"failures": n, "threshold": c.Threshold, "window_seconds": c.Window.Seconds(),
		"network": name, "blocked_until": until.UTC(),
	}
	err = d.report(ctx, a, details, func(ctx context.Context, reason string) error {
		return d.cfg.Actions.BlockIP(ctx, network, until, reason)
	})
	if err != nil {
		// Let the next failure, here or on another instance, try again.
		if err := d.counter.Release(ctx, nameBlock+name); err != nil {
			d.fail(opClaim, fmt.Errorf("release block marker of %s: %w", name, err))
		}
		until = now.Add(retryAfterFailure)
	}
	d.rememberBlocked(now, network, until)
}

func (d *Detector) rememberBlocked(now time.Time, network netip.Prefix, until time.Time) {
	if !d.blocked.put(now, network, until, expired(now)) {
		d.fail(opTrack, fmt.Errorf("%d blocked networks remembered, Config.MaxTracked: %s will be counted again", d.blocked.max, network))
	}
}

// expired returns a staleness test for tables of expiry times.
func expired(now time.Time) func(time.Time) bool {
	return func(until time.Time) bool { return !now.Before(until) }
}

// revokedKeyUse reports a revoked or expired key presented, once per key
// per window.
func (d *Detector) revokedKeyUse(ctx context.Context, s *keyward.Signal) {
	c := &d.cfg.RevokedKeyUse
	if !c.Enabled || s.KeyID == "" || (s.Decision != keyward.DecisionRevoked && s.Decision != keyward.DecisionExpired) {
		return
	}
	now := d.now()
	if until, ok := d.revoked.m[s.KeyID]; ok && now.Before(until) {
		return
	}
	won, err := d.counter.Claim(ctx, nameRevoked+s.KeyID, now, c.Window)
	if err != nil {
		d.fail(opClaim, fmt.Errorf("revoked_key_use of %s: %w", s.KeyID, err))
		return
	}
	if !d.revoked.put(now, s.KeyID, now.Add(c.Window), expired(now)) {
		d.fail(opTrack, fmt.Errorf("%d reported keys remembered, Config.MaxTracked", d.revoked.max))
	}
	if !won {
		return
	}
	ip := clientIP(s)
	a := &keyward.Anomaly{
		Type: keyward.AnomalyRevokedKeyUse, Severity: c.Severity,
		AccountID: s.AccountID, KeyID: s.KeyID, IP: ipString(ip), Action: c.Action,
	}
	var act func(context.Context, string) error
	if c.Action == keyward.AnomalyActionBlockIP {
		act, a.ActionError = d.blockAction(ip)
	}
	d.report(ctx, a, map[string]any{"decision": s.Decision, "window_seconds": c.Window.Seconds()}, act)
}

// failureBurst counts a failure against its account and reports the
// threshold, once per account per window.
func (d *Detector) failureBurst(ctx context.Context, s *keyward.Signal) {
	c := &d.cfg.FailureBurst
	if !c.Enabled || s.AccountID == "" {
		return
	}
	switch s.Decision {
	case keyward.DecisionValid, keyward.DecisionUnavailable, keyward.DecisionRateLimited, keyward.DecisionUsageExceeded:
		return
	}
	start := WindowStart(s.At, c.Window)
	if reported, ok := d.bursts.m[s.AccountID]; ok && reported.Equal(start) {
		return
	}
	n, err := d.counter.Add(ctx, nameBurst+s.AccountID, 1, s.At, c.Window)
	if err != nil {
		d.fail(opCount, fmt.Errorf("failures of account %s: %w", s.AccountID, err))
		return
	}
	if n < c.Threshold {
		return
	}
	now := d.now()
	won, err := d.counter.Claim(ctx, nameBurstRep+s.AccountID+":"+strconv.FormatInt(start.UnixMilli(), 10), now, c.Window)
	if err != nil {
		d.fail(opClaim, fmt.Errorf("failure_burst of account %s: %w", s.AccountID, err))
		return
	}
	if !d.bursts.put(now, s.AccountID, start, func(t time.Time) bool { return !now.Before(t.Add(c.Window)) }) {
		d.fail(opTrack, fmt.Errorf("%d reported accounts remembered, Config.MaxTracked", d.bursts.max))
	}
	if !won {
		return
	}
	a := &keyward.Anomaly{Type: keyward.AnomalyFailureBurst, Severity: c.Severity, AccountID: s.AccountID}
	d.report(ctx, a, map[string]any{
		"failures": n, "threshold": c.Threshold, "window_seconds": c.Window.Seconds(),
	}, nil)
}

// ipSpread adds a network to a key's window and reports the key when it
// has been used from more networks than its limit, once per window.
func (d *Detector) ipSpread(ctx context.Context, s *keyward.Signal) {
	c := &d.cfg.IPSpread
	ip := clientIP(s)
	if !c.Enabled || s.KeyID == "" || !ip.IsValid() {
		return
	}
	now := d.now()
	start := WindowStart(s.At, c.Window)
	st := d.spread.m[s.KeyID]
	if st == nil {
		st = &spreadState{history: newHistory(start, c.Window, c.Windows)}
		if !d.spread.put(now, s.KeyID, st, func(st *spreadState) bool { return st.idle(now) }) {
			d.fail(opTrack, fmt.Errorf("ip_spread tracks %d keys, Config.MaxTracked: key %s is not judged", d.spread.max, s.KeyID))
			return
		}
	}
	if st.roll(start) {
		st.nets = st.nets[:0]
	}
	if st.reported {
		return
	}
	if len(st.nets) < maxNetworksPerWindow {
		st.add(spreadNetwork(ip))
		st.cur = int64(len(st.nets))
	}
	baseline := st.mean()
	limit := max(float64(c.MinNetworks), c.Factor*baseline)
	if float64(st.cur) <= limit {
		return
	}
	st.reported = true
	a := &keyward.Anomaly{
		Type: keyward.AnomalyIPSpread, Severity: c.Severity,
		AccountID: s.AccountID, KeyID: s.KeyID, IP: ip.String(), Action: c.Action,
	}
	var act func(context.Context, string) error
	if c.Action == keyward.AnomalyActionDisableKey {
		act = d.disableAction(s.KeyID)
	}
	d.report(ctx, a, map[string]any{
		"networks": st.cur, "limit": limit, "baseline": baseline, "min_networks": c.MinNetworks,
		"factor": c.Factor, "window_seconds": c.Window.Seconds(), "windows": c.Windows,
	}, act)
}

// usageSpike adds a key's uses to its window and reports the key when they
// reach the minimum and exceed its trailing mean by the factor, once per
// window.
func (d *Detector) usageSpike(ctx context.Context, s *keyward.Signal) {
	c := &d.cfg.UsageSpike
	if !c.Enabled || s.KeyID == "" || s.Count <= 0 {
		return
	}
	now := d.now()
	start := WindowStart(s.At, c.Window)
	h := d.usage.m[s.KeyID]
	if h == nil {
		h = new(newHistory(start, c.Window, c.Windows))
		if !d.usage.put(now, s.KeyID, h, func(h *history) bool { return h.idle(now) }) {
			d.fail(opTrack, fmt.Errorf("usage_spike tracks %d keys, Config.MaxTracked: key %s is not judged", d.usage.max, s.KeyID))
			return
		}
	}
	h.roll(start)
	h.cur += s.Count
	if h.reported || h.start-h.first < int64(c.Windows)*h.w {
		return
	}
	mean := h.mean()
	if h.cur < c.Minimum || float64(h.cur) <= c.Factor*mean {
		return
	}
	h.reported = true
	a := &keyward.Anomaly{
		Type: keyward.AnomalyUsageSpike, Severity: c.Severity,
		AccountID: s.AccountID, KeyID: s.KeyID, Action: c.Action,
	}
	var act func(context.Context, string) error
	if c.Action == keyward.AnomalyActionDisableKey {
		act = d.disableAction(s.KeyID)
	}
	d.report(ctx, a, map[string]any{
		"uses": h.cur, "mean": mean, "factor": c.Factor, "minimum": c.Minimum,
		"window_seconds": c.Window.Seconds(), "windows": c.Windows,
	}, act)
}

// spreadState is ip_spread's state of one key.
type spreadState struct {
	history
	// nets are the networks of the current window, sorted: most keys are
	// used from one or a few, which a slice holds in 32 bytes each where a
	// map took over 300 for the first.
	nets []netip.Prefix
}

// add adds network to s.nets unless it is there.
func (s *spreadState) add(network netip.Prefix) {
	i, found := slices.BinarySearchFunc(s.nets, network, netip.Prefix.Compare)
	if !found {
		s.nets = slices.Insert(s.nets, i, network)
	}
}

// spreadNetwork is the network ip_spread counts ip in: its /24 or /64.
func spreadNetwork(ip netip.Addr) netip.Prefix {
	if ip.Is4() {
		return netip.PrefixFrom(ip, 24).Masked()
	}
	return netip.PrefixFrom(ip, 64).Masked()
}

// history is one key's counts in fixed windows: the current window's, and
// those of the windows before it in a ring indexed by window number. The
// ring is made when a window with a count ends: most keys tracked are seen
// in one window only, and need none.
type history struct {
	w        int64   // window length, ms
	first    int64   // start of the first window tracked, Unix ms
	start    int64   // start of the current window, Unix ms
	cur      int64   // count of the current window
	past     []int64 // nil (all 0) or past[i%windows]: count of window number i
	windows  int32   // how many windows before the current the history holds
	reported bool    // the current window is reported
}

func newHistory(start time.Time, window time.Duration, windows int) history {
	ms := start.UnixMilli()
	return history{w: window.Milliseconds(), first: ms, start: ms, windows: int32(windows)}
}

// roll moves h to the window starting at start and reports whether that is
// a new window. A late signal of an earlier window counts in the current.
func (h *history) roll(start time.Time) bool {
	ms := start.UnixMilli()
	if ms <= h.start {
		return false
	}
	n := int64(h.windows)
	gap := (ms - h.start) / h.w
	switch {
	case gap > n:
		h.past = nil
	case h.past != nil || h.cur != 0:
		if h.past == nil {
			h.past = make([]int64, n)
		}
		i := h.start / h.w
		h.past[i%n] = h.cur
		for j := int64(1); j < gap; j++ {
			h.past[(i+j)%n] = 0
		}
	}
	h.start, h.cur, h.reported = ms, 0, false
	return true
}

// mean is the mean count of the windows before the current.
func (h *history) mean() float64 {
	var sum int64
	for _, c := range h.past {
		sum += c
	}
	return float64(sum) / float64(h.windows)
}

// idle reports whether h has seen nothing for a whole history by now, so
// forgetting it loses nothing.
func (h *history) idle(now time.Time) bool {
	return now.UnixMilli() >= h.start+(int64(h.windows)+1)*h.w
}
