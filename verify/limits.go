package verify

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/ratelimit"
)

// inlineLimits is how many rate limit decisions a Result holds without
// allocating; keys with more limits cost one allocation per verification.
const inlineLimits = 3

// warnEvery throttles the warnings of a failing limiter or ledger, which
// would otherwise log once per verification during an outage.
const warnEvery = int64(10 * time.Second)

// limitBuf is the scratch space of one rate limit decision: the limits
// named by the request and the limiter's decisions. Pooled, because a
// buffer handed to the Limiter interface escapes to the heap.
type limitBuf struct {
	limits []keyward.RateLimit
	ds     []ratelimit.Decision
	levels []ratelimit.Level // of rateLimitLevels
}

var limitBufs = sync.Pool{New: func() any { return new(limitBuf) }}

// RateLimits returns the decisions of the rate limits the call counted
// against: set for VALID, RATE_LIMITED and USAGE_EXCEEDED when the key has
// limits, nil otherwise. The slice shares r's memory.
func (r *Result) RateLimits() []ratelimit.Decision {
	if r.moreLimits != nil {
		return r.moreLimits
	}
	return r.limits[:r.nLimits]
}

// setRateLimits copies ds into r.
func (r *Result) setRateLimits(ds []ratelimit.Decision) {
	r.moreLimits = nil
	if len(ds) > inlineLimits {
		r.moreLimits = slices.Clone(ds)
		return
	}
	r.nLimits = copy(r.limits[:], ds)
}

// countsAll reports whether req counts against every limit of ls, which
// then need no copy.
func (req *Request) countsAll(ls []keyward.RateLimit) bool {
	for _, l := range ls {
		if !l.Counts(req.Limits, req.ManualLimits) {
			return false
		}
	}
	return true
}

// appendCounted appends to dst the limits of ls that req counts against.
func (req *Request) appendCounted(dst, ls []keyward.RateLimit) []keyward.RateLimit {
	for _, l := range ls {
		if l.Counts(req.Limits, req.ManualLimits) {
			dst = append(dst, l)
		}
	}
	return dst
}

// cost returns the cost of req: Cost, 0 meaning 1.
func (req *Request) cost() int64 { return max(req.Cost, 1) }

// rateLimit decides step 7's rate limits of the key of res for req: limits are
// the key's effective limits (its own, else its account's defaults, each
// counted per key: the bucket is the key's id), restricted to those req
// counts against (keyward.RateLimit.Counts). It sets res.Decision to
// RATE_LIMITED when one of them refuses (and nothing is consumed from any),
// UNAVAILABLE when the limiter cannot decide.
func (e *Engine) rateLimit(ctx context.Context, res *Result, req *Request, limits []keyward.RateLimit, now time.Time) {
	buf := limitBufs.Get().(*limitBuf)
	defer limitBufs.Put(buf)
	if !req.countsAll(limits) {
		buf.limits = req.appendCounted(buf.limits[:0], limits)
		limits = buf.limits
		if len(limits) == 0 {
			return
		}
	}
	cost := req.cost()
	// A cost above a limit never fits it, however long the caller waits:
	// refuse without asking the limiter (for which it is an invalid
	// call), reporting only such limits. Their state is not read, so each
	// is reported empty, with its whole window as the wait.
	ds := buf.ds[:0]
	for _, l := range limits {
		if cost > l.Limit {
			w := time.Duration(l.Window)
			ds = append(ds, ratelimit.Decision{Limit: l, ResetAfter: w, RetryAfter: w})
		}
	}
	if len(ds) > 0 {
		buf.ds = ds
		res.setRateLimits(ds)
		res.Decision, res.LimitLevel = keyward.DecisionRateLimited, keyward.LevelKey
		return
	}
	ds, ok, err := e.limiter.AllowAll(ctx, res.key.meter(), limits, cost, now, ds)
	buf.ds = ds
	if err != nil {
		e.warn("rate limits could not be decided: keys with limits answer UNAVAILABLE", "key_id", res.key.keyID(), "err", err)
		res.Decision = keyward.DecisionUnavailable
		return
	}
	res.setRateLimits(ds)
	if !ok {
		res.Decision, res.LimitLevel = keyward.DecisionRateLimited, keyward.LevelKey
	}
}

// spend spends req's cost from the credits of the key of res through the
// ledger.
// It sets res.Decision to USAGE_EXCEEDED when too few remain, UNAVAILABLE
// (without the rate limits, although they counted the call) when there is
// no ledger or it cannot decide.
func (e *Engine) spend(ctx context.Context, res *Result, req *Request, now time.Time) {
	if e.noCreditLedger(res) {
		return
	}
	remaining, ok, err := e.credits.Spend(ctx, res.key.key(), req.cost(), now)
	if err != nil {
		e.creditsUnavailable(res, err)
		return
	}
	res.CreditsRemaining, res.HasCredits = remaining, true
	switch {
	case !ok:
		res.Decision, res.LimitLevel = keyward.DecisionUsageExceeded, keyward.LevelKey
	case remaining == 0 && req.cost() > 0 && e.signals != nil:
		sig := keyward.Signal{Kind: keyward.SignalQuotaExhausted, At: now, Decision: keyward.DecisionValid, Count: 1}
		sig.KeyID, sig.AccountID = res.key.signalIDs()
		e.signals.Signal(sig)
	}
}

// noCreditLedger reports whether the engine has no ledger, and then
// answers res UNAVAILABLE (without the rate limits, although they counted
// the call), logging it once.
func (e *Engine) noCreditLedger(res *Result) bool {
	if e.credits != nil {
		return false
	}
	e.noLedger.Do(func() {
		e.log.Error("a key has credits but the engine has no credit ledger (verify.Config.Credits): keys with credits answer UNAVAILABLE until one is configured",
			"key_id", res.key.keyID())
	})
	res.Decision = keyward.DecisionUnavailable
	res.setRateLimits(nil)
	return true
}

// creditsUnavailable answers res UNAVAILABLE (without the rate limits)
// for a ledger that could not decide, logging err throttled.
func (e *Engine) creditsUnavailable(res *Result, err error) {
	e.warn("credits could not be spent: keys with credits answer UNAVAILABLE", "key_id", res.key.keyID(), "err", err)
	res.Decision = keyward.DecisionUnavailable
	res.setRateLimits(nil)
}

// badCost logs a Request.Cost out of range, a bug of the caller (NewRequest
// rejects it), throttled.
func (e *Engine) badCost(cost int64) {
	e.throttled(slog.LevelError, "verification refused as UNAVAILABLE: its cost is out of range (a bug of the caller; check costs with verify.NewRequest)",
		"cost", cost, "max", int64(keyward.MaxVerificationCost))
}

// warn logs msg at warning level, throttled.
func (e *Engine) warn(msg string, args ...any) { e.throttled(slog.LevelWarn, msg, args...) }

// throttled logs msg unless the engine logged through it in the last
// warnEvery (real time: the injected clock may stand still).
func (e *Engine) throttled(level slog.Level, msg string, args ...any) {
	now := time.Now().UnixNano()
	last := e.warned.Load()
	if now-last < warnEvery || !e.warned.CompareAndSwap(last, now) {
		return
	}
	e.log.Log(context.Background(), level, msg, args...)
}
