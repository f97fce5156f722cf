// Package redisabuse is the abuse.Counter shared by every keyward instance
// through Redis, so brute-force counts and failure bursts add up across
// instances and a block or a report is made once.
//
// Keys. A count lives at <prefix>n:<name>:<window start in Unix ms>: Add is
// one script that runs INCRBY and, when it creates the key, PEXPIRE to
// twice the rest of the window (it is read only during its window; the
// margin covers instances whose clocks differ a little). A marker lives at
// <prefix>m:<name>, set with SET NX PX, so of the instances claiming it
// exactly one succeeds. Every command touches one key, so a Cluster works.
//
// Time. Windows come from the caller's clock (abuse.WindowStart), not Redis
// TIME: instances must agree on the time to share windows (NTP suffices;
// an instance whose clock is off by d counts in the neighbouring window for
// d of each window).
//
// Failure. A Redis error is returned as EUNAVAILABLE; the detector then
// skips the signal (and counts the error), so while Redis is unreachable no
// network is blocked for brute force.
package redisabuse

import (
	"context"
	"strconv"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/abuse"
	goredis "github.com/redis/go-redis/v9"
)

// DefaultPrefix is the key prefix of New when none is given.
const DefaultPrefix = "keyward:abuse:"

// add increments a count and sets its expiry when it creates it.
var add = goredis.NewScript(`
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if n == tonumber(ARGV[1]) then
	redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return n
`)

// Counter is an abuse.Counter on Redis. Safe for concurrent use; it holds
// no state but the client.
type Counter struct {
	client goredis.UniversalClient
	prefix string
}

var _ abuse.Counter = (*Counter)(nil)

// New returns a Counter that keeps its keys under prefix ("" means
// DefaultPrefix) in client, which it does not close.
func New(client goredis.UniversalClient, prefix string) *Counter {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Counter{client: client, prefix: prefix}
}

// Add implements abuse.Counter.
func (c *Counter) Add(ctx context.Context, name string, n int64, now time.Time, window time.Duration) (int64, error) {
	if n <= 0 {
		return 0, keyward.Errorf(keyward.EINVALID, "redisabuse: add %d to %s: the amount must be positive", n, name)
	}
	start := abuse.WindowStart(now, window)
	key := c.prefix + "n:" + name + ":" + strconv.FormatInt(start.UnixMilli(), 10)
	ttl := 2 * start.Add(window).Sub(now)
	count, err := add.Run(ctx, c.client, []string{key}, n, max(ttl.Milliseconds(), 1)).Int64()
	if err != nil {
		return 0, keyward.WrapError(keyward.EUNAVAILABLE, err, "redisabuse: count %s", name)
	}
	return count, nil
}

// Claim implements abuse.Counter.
func (c *Counter) Claim(ctx context.Context, name string, _ time.Time, ttl time.Duration) (bool, error) {
	ok, err := c.client.SetNX(ctx, c.prefix+"m:"+name, 1, ttl).Result()
	if err != nil {
		return false, keyward.WrapError(keyward.EUNAVAILABLE, err, "redisabuse: claim %s", name)
	}
	return ok, nil
}

// Release implements abuse.Counter.
func (c *Counter) Release(ctx context.Context, name string) error {
	if err := c.client.Del(ctx, c.prefix+"m:"+name).Err(); err != nil {
		return keyward.WrapError(keyward.EUNAVAILABLE, err, "redisabuse: release %s", name)
	}
	return nil
}
