package verify

import (
	"context"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/ratelimit"
)

// Shared limits (docs/abuse-protection.md#shared-limits): a key whose user
// or account has a meter counts against the meter's limits and credits
// together with its own, through the multi-level operations of the limiter
// (AllowLevels) and the ledger (SpendLevels). Keys without shared limits
// keep the single-level path of limits.go.

// sharedLimits reports whether the key's user or account has shared rate
// limits.
func (x *extra) sharedLimits() bool {
	return x.userMeter != nil && len(x.userMeter.RateLimits) > 0 ||
		x.accountMeter != nil && len(x.accountMeter.RateLimits) > 0
}

// sharedCredits reports whether the key's user or account has shared
// credits.
func (x *extra) sharedCredits() bool {
	return x.userMeter != nil && x.userMeter.Credits != nil ||
		x.accountMeter != nil && x.accountMeter.Credits != nil
}

// named returns the limits of ls that req counts against
// (keyward.RateLimit.Counts).
func (req *Request) named(ls []keyward.RateLimit) []keyward.RateLimit {
	if req.countsAll(ls) {
		return ls
	}
	return req.appendCounted(nil, ls)
}

// rateLimitLevels decides step 7's rate limits of every level of the key
// of res for req, all or nothing: the key's effective limits (counted in
// its meter's buckets), its user's and its account's shared limits, each
// restricted to those req counts against (Request.named). It sets res.Decision to
// RATE_LIMITED, and res.LimitLevel to the level that refused, when a limit
// refuses (and nothing is consumed at any level), UNAVAILABLE when the
// limiter cannot decide.
func (e *Engine) rateLimitLevels(ctx context.Context, res *Result, req *Request, now time.Time) {
	en, x := res.key, res.key.extra
	buf := limitBufs.Get().(*limitBuf)
	defer limitBufs.Put(buf)
	levels := buf.levels[:0]
	add := func(level keyward.LimitLevel, key string, ls []keyward.RateLimit) {
		if ls = req.named(ls); len(ls) > 0 {
			levels = append(levels, ratelimit.Level{Level: level, Key: key, Limits: ls})
		}
	}
	add(keyward.LevelKey, en.meter(), en.effectiveRateLimits())
	if x.userMeter != nil {
		add(keyward.LevelUser, x.userMeter.ID, x.userMeter.RateLimits)
	}
	if x.accountMeter != nil {
		add(keyward.LevelAccount, x.accountMeter.ID, x.accountMeter.RateLimits)
	}
	buf.levels = levels
	if len(levels) == 0 {
		return
	}
	cost := req.cost()
	// A cost above a limit never fits it: refuse without asking the
	// limiter, reporting only such limits (as rateLimit does).
	ds := buf.ds[:0]
	for _, lv := range levels {
		for _, l := range lv.Limits {
			if cost > l.Limit {
				w := time.Duration(l.Window)
				ds = append(ds, ratelimit.Decision{Limit: l, Level: lv.Level, ResetAfter: w, RetryAfter: w})
			}
		}
	}
	if len(ds) > 0 {
		buf.ds = ds
		res.setRateLimits(ds)
		res.Decision, res.LimitLevel = keyward.DecisionRateLimited, ds[0].Level
		return
	}
	ds, refused, err := e.limiter.AllowLevels(ctx, en.accountID(), levels, cost, now, ds)
	buf.ds = ds
	if err != nil {
		e.warn("rate limits could not be decided: keys with limits answer UNAVAILABLE", "key_id", en.keyID(), "err", err)
		res.Decision = keyward.DecisionUnavailable
		return
	}
	res.setRateLimits(ds)
	if refused >= 0 {
		res.Decision, res.LimitLevel = keyward.DecisionRateLimited, levels[refused].Level
	}
}

// spendLevels spends req's cost from the credits of every level of the
// key of res (its own, its user's, its account's) through the ledger, all
// or nothing. It sets res.Decision to USAGE_EXCEEDED, and res.LimitLevel to
// the level with too few, when one has too few (nothing is then spent at
// any level), UNAVAILABLE (without the rate limits) when there is no
// ledger or it cannot decide. CreditsRemaining is the least any level
// holds after the call.
func (e *Engine) spendLevels(ctx context.Context, res *Result, req *Request, now time.Time) {
	if e.noCreditLedger(res) {
		return
	}
	sp, err := e.credits.SpendLevels(ctx, res.key.key(), req.cost(), now)
	if err != nil {
		e.creditsUnavailable(res, err)
		return
	}
	res.CreditsRemaining, res.HasCredits = sp.Least()
	switch {
	case sp.Refused != "":
		res.Decision, res.LimitLevel = keyward.DecisionUsageExceeded, sp.Refused
	case res.HasCredits && res.CreditsRemaining == 0 && e.signals != nil:
		sig := keyward.Signal{Kind: keyward.SignalQuotaExhausted, At: now, Decision: keyward.DecisionValid, Count: 1}
		sig.KeyID, sig.AccountID = res.key.signalIDs()
		e.signals.Signal(sig)
	}
}
