// Package redislimit is the ratelimit.Limiter shared by every keyward
// instance through Redis: one Lua script decides and updates a key's buckets
// atomically on the server, with the same GCRA as ratelimit.Local.
//
// Keys. A bucket lives at <prefix>{<key>}:<limit name> and holds its
// theoretical arrival time in Unix microseconds, with a TTL of the time
// until it is full again plus 5 seconds (a full bucket holds no
// information, so expiry loses nothing, and keeping it longer changes no
// decision). The TTL runs on Redis's clock, the time until full on the
// caller's: the margin keeps a bucket from expiring before it is full on
// the clock of an instance that lags the writer's, or while a caller with
// an injected clock, such as a test's, stalls. The braces are a Cluster hash tag: all the buckets of one key sit
// in one slot, which is what lets AllowAll decide several limits in one
// script, all or nothing, on a Cluster too. The buckets of AllowLevels (a
// key's, its user's and its account's limits decided together) live at
// <prefix>{<account id>}:<level key>:<limit name>: one slot per account, so
// one script decides every level.
//
// Time. The script uses the now of the caller (its injected clock), not
// Redis TIME: tests drive refills without sleeping, and both engines decide
// from the same clock. The cost is that instances' clocks must agree. An
// instance whose clock is d ahead sees buckets refill d early and may admit
// about d/(Window/Limit) calls more than the limit; one d behind admits that
// much less (the script clamps a bucket that looks more than full-spent, so
// Remaining is never negative). With NTP (skew of milliseconds) that is
// negligible for limits counted per second or longer; without a synchronised
// clock, do not share limits across hosts.
//
// Failure. Every Redis error (unreachable, timeout, ctx ended) is returned
// as EUNAVAILABLE and nothing is admitted: keyward then answers UNAVAILABLE
// (HTTP 503), never VALID. Falling back to a local limiter is the caller's
// choice, not this package's.
package redislimit

import (
	"context"
	_ "embed"
	"fmt"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/ratelimit"
	goredis "github.com/redis/go-redis/v9"
)

// DefaultPrefix is the key prefix of New when none is given.
const DefaultPrefix = "keyward:rl:"

//go:embed gcra.lua
var gcraSource string

// script is sent with EVALSHA, and with EVAL once after a NOSCRIPT (a new or
// restarted server).
var script = goredis.NewScript(gcraSource)

// Limiter is a ratelimit.Limiter on Redis. Safe for concurrent use; it
// holds no state but the client.
type Limiter struct {
	client goredis.UniversalClient
	prefix string
}

var _ ratelimit.Limiter = (*Limiter)(nil)

// New returns a Limiter that keeps its buckets under prefix ("" means
// DefaultPrefix) in client, which it does not close. EINVALID if prefix
// holds '{' or '}', which would break the hash tag.
func New(client goredis.UniversalClient, prefix string) (*Limiter, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if strings.ContainsAny(prefix, "{}") {
		return nil, keyward.Errorf(keyward.EINVALID, "redislimit: key prefix %q must not contain '{' or '}'", prefix)
	}
	return &Limiter{client: client, prefix: prefix}, nil
}

// Allow implements ratelimit.Limiter.
func (l *Limiter) Allow(ctx context.Context, key string, limit keyward.RateLimit, cost int64, now time.Time) (ratelimit.Decision, error) {
	var buf [1]ratelimit.Decision
	ds, _, err := l.AllowAll(ctx, key, []keyward.RateLimit{limit}, cost, now, buf[:0])
	if err != nil {
		return ratelimit.Decision{}, err
	}
	return ds[0], nil
}

// AllowLevels implements ratelimit.Limiter: one script for every limit of
// every level, so the decision is atomic across levels. Their buckets live
// at <prefix>{<group>}:<level key>:<limit name>, all in the hash slot of
// the account (group), apart from the buckets of AllowAll.
func (l *Limiter) AllowLevels(ctx context.Context, group string, levels []ratelimit.Level, cost int64, now time.Time, dst []ratelimit.Decision) ([]ratelimit.Decision, int, error) {
	var limits []keyward.RateLimit
	var keys []string
	for _, lv := range levels {
		if lv.Key == "" {
			return dst, -1, keyward.Errorf(keyward.EINVALID, "redislimit: empty key of the %s level", lv.Level)
		}
		for _, lim := range lv.Limits {
			limits = append(limits, lim)
			keys = append(keys, l.prefix+"{"+group+"}:"+lv.Key+":"+lim.Name)
		}
	}
	if group == "" {
		return dst, -1, keyward.Errorf(keyward.EINVALID, "redislimit: empty group")
	}
	first := len(dst)
	dst, _, err := l.run(ctx, group, keys, limits, cost, now, dst)
	if err != nil {
		return dst, -1, err
	}
	i := first
	for _, lv := range levels {
		for range lv.Limits {
			dst[i].Level = lv.Level
			i++
		}
	}
	return dst, ratelimit.RefusedLevel(levels, dst[first:]), nil
}

// AllowAll implements ratelimit.Limiter: one round trip for all the limits.
func (l *Limiter) AllowAll(ctx context.Context, key string, limits []keyward.RateLimit, cost int64, now time.Time, dst []ratelimit.Decision) ([]ratelimit.Decision, bool, error) {
	if len(limits) == 0 {
		return dst, true, nil
	}
	if key == "" {
		return dst, false, keyward.Errorf(keyward.EINVALID, "redislimit: empty key")
	}
	keys := make([]string, len(limits))
	for i, lim := range limits {
		keys[i] = l.prefix + "{" + key + "}:" + lim.Name
	}
	return l.run(ctx, key, keys, limits, cost, now, dst)
}

// run decides limits, whose buckets are keys, in one script; key names
// them in errors.
func (l *Limiter) run(ctx context.Context, key string, keys []string, limits []keyward.RateLimit, cost int64, now time.Time, dst []ratelimit.Decision) ([]ratelimit.Decision, bool, error) {
	if len(limits) == 0 {
		return dst, true, nil
	}
	args := make([]any, 2, 2+2*len(limits))
	args[0], args[1] = now.UnixMicro(), cost
	for _, lim := range limits {
		if err := ratelimit.Check(lim, cost); err != nil {
			return dst, false, err
		}
		args = append(args, time.Duration(lim.Window).Microseconds()/lim.Limit, lim.Limit)
	}
	res, err := script.Run(ctx, l.client, keys, args...).Int64Slice()
	if err != nil {
		return dst, false, keyward.WrapError(keyward.EUNAVAILABLE, err, "redislimit: rate limit of %s", key)
	}
	if len(res) != 1+4*len(limits) {
		return dst, false, keyward.WrapError(keyward.EINTERNAL, fmt.Errorf("script returned %d values for %d limits", len(res), len(limits)), "redislimit: rate limit of %s", key)
	}
	for i, lim := range limits {
		r := res[1+4*i:]
		dst = append(dst, ratelimit.Decision{
			Limit:      lim,
			Allowed:    r[0] == 1,
			Remaining:  r[1],
			ResetAfter: time.Duration(r[2]) * time.Microsecond,
			RetryAfter: time.Duration(r[3]) * time.Microsecond,
		})
	}
	return dst, res[0] == 1, nil
}
