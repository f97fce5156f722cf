// Package ratelimit decides whether a call fits the named rate limits of a
// key (docs/architecture.md, verification step 7). Limiter is the interface the verify
// engine and the gateway call; NewLocal is the in-process engine, exact for
// one instance; package redislimit is the engine shared by every instance
// through Redis. Both implement the same GCRA (generic cell rate algorithm,
// the "virtual scheduling" form of a token bucket): a limit of N per window W
// admits a burst of N and then one unit every W/N, smoothly, with a single
// timestamp of state per bucket. The header helpers render a Decision as
// the IETF RateLimit-Policy, RateLimit and Retry-After fields.
//
// The package imports only the standard library and the root, so the verify
// engine and the net/http middleware can use the local engine without pulling
// in a Redis driver.
package ratelimit

import (
	"context"
	"time"

	"github.com/keyward/keyward"
)

// Limiter decides whether a call of some cost fits rate limits. The bucket
// of a limit is identified by key (the API key's id, or any other partition)
// and the limit's Name; Limit and Window may change between calls, the
// bucket keeps its state.
//
// Time comes from the caller: now is the caller's (injected) clock, so that
// tests do not sleep and every engine decides from the same notion of time.
//
// Errors: EINVALID if a limit cannot be used (see keyward.RateLimit.Validate,
// of which Allow checks only the numbers) or cost is not between 1 and the
// smallest Limit; EUNAVAILABLE if the engine cannot decide (Redis is down or
// ctx ended). On an error nothing is consumed and the call must not be
// admitted: keyward answers UNAVAILABLE (HTTP 503), never VALID, exactly as
// when the store is down.
type Limiter interface {
	// Allow decides one limit: it admits the call and consumes cost from
	// the bucket, or denies it and consumes nothing.
	Allow(ctx context.Context, key string, limit keyward.RateLimit, cost int64, now time.Time) (Decision, error)

	// AllowAll decides several limits of one key at once, all or nothing:
	// the call is admitted, and cost consumed from every bucket, only if
	// every limit admits it; otherwise nothing is consumed. It appends one
	// Decision per limit, in order, to dst and returns it with the verdict.
	// Each Decision's Allowed says whether that limit alone would admit
	// the call. Limit names must be distinct.
	AllowAll(ctx context.Context, key string, limits []keyward.RateLimit, cost int64, now time.Time, dst []Decision) ([]Decision, bool, error)

	// AllowLevels decides the limits of several levels at once (a key's
	// own, its user's and its account's, docs/abuse-protection.md#shared-limits),
	// all or nothing across every level: the call is admitted, and cost
	// consumed from every bucket of every level, only if every limit of
	// every level admits it; otherwise nothing is consumed anywhere. The
	// bucket of a limit is identified by its level's Key and the limit's
	// Name. group is the account the levels belong to: an engine may keep
	// the buckets of one group together (Redis: in one hash slot), apart
	// from the buckets of Allow and AllowAll. It appends one Decision per
	// limit, level after level, each naming its level, and returns the
	// index of the first level with a limit that refused, -1 when the call
	// is admitted. Level keys must be distinct, and limit names within a
	// level.
	AllowLevels(ctx context.Context, group string, levels []Level, cost int64, now time.Time, dst []Decision) ([]Decision, int, error)
}

// Level is the limits of one level in AllowLevels, counted in the buckets
// of Key: the key's meter (keyward.Key.Meter), the user's or the account's
// id.
type Level struct {
	Level  keyward.LimitLevel
	Key    string
	Limits []keyward.RateLimit
}

// RefusedLevel returns the index of the first level of levels whose
// decisions in ds (one per limit, level after level, as AllowLevels appends
// them) hold a refusal; -1 if none.
func RefusedLevel(levels []Level, ds []Decision) int {
	i := 0
	for n, lv := range levels {
		for range lv.Limits {
			if !ds[i].Allowed {
				return n
			}
			i++
		}
	}
	return -1
}

// Decision is the answer of one limit to one call.
type Decision struct {
	// Limit is the limit decided, for the headers.
	Limit keyward.RateLimit
	// Level is the level of the limit in AllowLevels; empty otherwise.
	Level keyward.LimitLevel
	// Allowed says whether the limit admits the call.
	Allowed bool
	// Remaining is the cost the bucket would still admit right now, after
	// this call if it was admitted. Never negative.
	Remaining int64
	// ResetAfter is how long until the bucket is full again (Remaining ==
	// Limit) if nothing more is spent.
	ResetAfter time.Duration
	// RetryAfter is how long until the same call would be admitted by this
	// limit: zero when Allowed.
	RetryAfter time.Duration
}

// Denied returns the first decision in ds that does not allow, and whether
// there is one.
func Denied(ds []Decision) (Decision, bool) {
	for _, d := range ds {
		if !d.Allowed {
			return d, true
		}
	}
	return Decision{}, false
}

// Check returns EINVALID unless the numbers of l are usable (see
// keyward.RateLimit.Validate; the name is the caller's to validate) and cost
// is between 1 and l.Limit. Every engine calls it first.
func Check(l keyward.RateLimit, cost int64) error {
	w := time.Duration(l.Window)
	if l.Limit < 1 || w < keyward.MinRateLimitWindow || w > keyward.MaxRateLimitWindow ||
		w/time.Duration(l.Limit) < keyward.MinRateLimitInterval {
		return l.Validate()
	}
	if cost < 1 || cost > l.Limit {
		return keyward.Errorf(keyward.EINVALID, "ratelimit: cost %d is not between 1 and the limit %d of %q", cost, l.Limit, l.Name)
	}
	return nil
}

// gcra decides one limit. tat is the bucket's theoretical arrival time (the
// time at which it is full again; 0 for a new bucket), now the current time,
// interval the emission interval, all in one unit. It returns the new tat
// (unchanged when denied) and the decision in that unit. The Redis engine's
// Lua script is a transcription of this function: change both together.
func gcra(tat, now, interval, limit, cost int64) (newTAT int64, allowed bool, remaining, reset, retry int64) {
	tau := interval * limit // burst tolerance: the whole limit
	if tat < now {
		tat = now
	}
	if tat > now+tau {
		// Only a clock that went backwards (or another instance's clock
		// ahead of ours) gets here; clamp so that Remaining stays >= 0.
		tat = now + tau
	}
	next := tat + cost*interval
	if wait := next - tau - now; wait > 0 {
		return tat, false, (tau - (tat - now)) / interval, tat - now, wait
	}
	return next, true, (tau - (next - now)) / interval, next - now, 0
}

// unspent returns the Remaining and ResetAfter of a bucket as it is, for a
// limit that admitted a call that another limit denied.
func unspent(tat, now, interval, limit int64) (remaining, reset int64) {
	tau := interval * limit
	tat = min(max(tat, now), now+tau)
	return (tau - (tat - now)) / interval, tat - now
}
