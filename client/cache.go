package client

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"slices"
	"sync"
	"time"

	"github.com/keyward/keyward"
)

// Defaults of CacheConfig.
const (
	DefaultCacheTTL         = 15 * time.Second
	DefaultNegativeCacheTTL = 5 * time.Second
	DefaultMaxEntries       = 10_000
	DefaultMaxNegative      = 10_000
	DefaultVerifyTimeout    = 5 * time.Second
)

// CacheConfig configures a CachedVerifier. Zero values take the defaults.
type CacheConfig struct {
	// TTL is how long a VALID result is served from the cache (never past
	// the key's expiry). It is also how long a revocation can take to be
	// seen. Default DefaultCacheTTL; negative: VALID results are not
	// cached.
	TTL time.Duration
	// NegativeTTL is how long a refusal (NOT_FOUND, REVOKED,
	// INSUFFICIENT_PERMISSIONS, ...) is served from the cache, so a
	// client retrying a bad key does not reach keyward on every request.
	// RATE_LIMITED and USAGE_EXCEEDED are never cached, nor is any result
	// for a key with rate limits or credits. Default
	// DefaultNegativeCacheTTL; negative: refusals are not cached.
	NegativeTTL time.Duration
	// MaxEntries bounds the cached VALID results; when full, an expired
	// or else an arbitrary entry is evicted. Default DefaultMaxEntries.
	MaxEntries int
	// MaxNegative bounds the cached refusals, separately, so a flood of
	// bad keys cannot evict the good ones. Default DefaultMaxNegative.
	MaxNegative int
	// Timeout bounds one remote verification, shared by every request
	// waiting on it; a request whose own context ends stops waiting
	// sooner. Default DefaultVerifyTimeout.
	Timeout time.Duration
	// Now is the clock of the TTLs. Default time.Now.
	Now func() time.Time
}

// CachedVerifier is a keyward.KeyVerifier that asks another verifier,
// typically a *Client talking to a remote keyward, and remembers the
// answers: VALID results for TTL, refusals for the shorter NegativeTTL, both
// bounded in number. Concurrent requests for the same uncached key make one
// remote call. Errors (keyward unreachable, UNAVAILABLE, the verifier's
// own key refused) are returned, never cached, and so is an UNAVAILABLE
// result: the middleware answers 503 and the next request asks again.
//
// Entries are keyed by a SHA-256 digest of the key, the permissions asked
// for, the limits named, the cost and the client IP: raw keys are held only
// while their remote call is in flight. The agent is not part of the key;
// each result carries the agent of its own request.
//
// A key with rate limits or credits (a result with RateLimits or
// CreditsRemaining) is metered: every request must reach keyward to be
// counted. Its results are never cached; for TTL the verifier remembers
// that the key is metered and sends each request for it on its own, and a
// request that waited on a shared call whose result turns out metered
// makes its own call.
//
// What the cache trades: a revoked or disabled key keeps passing until its
// entry expires (at most TTL), and keyward sees at most one verification
// per key, permission set and IP per TTL of a key that is not metered, so
// its last-used time counts those, not every request. Use a negative TTL,
// the gateway or forward-auth where every request must reach keyward.
//
// A CachedVerifier is safe for concurrent use and needs no Close.
type CachedVerifier struct {
	v           keyward.KeyVerifier
	ttl, negTTL time.Duration
	maxPos      int
	maxNeg      int
	timeout     time.Duration
	now         func() time.Time

	mu    sync.Mutex
	pos   map[digest]cacheEntry
	neg   map[digest]cacheEntry
	calls map[digest]*call

	// onWait, set by tests, runs (under mu) each time a request starts
	// waiting on a remote call.
	onWait func()
}

var _ keyward.KeyVerifier = (*CachedVerifier)(nil)

// digest identifies a cache entry: SHA-256 of key, permissions, limits,
// cost and IP.
type digest [sha256.Size]byte

type cacheEntry struct {
	// res is the cached answer; nil marks a metered key, whose requests
	// each go to the verifier.
	res     *keyward.VerifyResult
	expires time.Time
}

// call is one remote verification in flight.
type call struct {
	done chan struct{}
	res  *keyward.VerifyResult // set before done is closed
	err  error
}

// NewCachedVerifier returns a CachedVerifier in front of v, usually a
// *Client whose key may verify keys (root, or the keys:verify permission):
//
//	v := client.NewCachedVerifier(client.New("https://keyward.internal", verifierKey), client.CacheConfig{})
func NewCachedVerifier(v keyward.KeyVerifier, cfg CacheConfig) *CachedVerifier {
	if v == nil {
		panic("client: NewCachedVerifier needs a keyward.KeyVerifier")
	}
	c := &CachedVerifier{
		v:       v,
		ttl:     orDefault(cfg.TTL, DefaultCacheTTL),
		negTTL:  orDefault(cfg.NegativeTTL, DefaultNegativeCacheTTL),
		maxPos:  cfg.MaxEntries,
		maxNeg:  cfg.MaxNegative,
		timeout: orDefault(cfg.Timeout, DefaultVerifyTimeout),
		now:     cfg.Now,
		pos:     make(map[digest]cacheEntry),
		neg:     make(map[digest]cacheEntry),
		calls:   make(map[digest]*call),
	}
	if c.maxPos <= 0 {
		c.maxPos = DefaultMaxEntries
	}
	if c.maxNeg <= 0 {
		c.maxNeg = DefaultMaxNegative
	}
	if c.timeout < 0 {
		c.timeout = DefaultVerifyTimeout
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// VerifyKey implements keyward.KeyVerifier: from the cache when it holds
// an answer for r, else from the remote verifier, sharing one call among
// concurrent requests for the same key. The result is the caller's own
// copy.
func (c *CachedVerifier) VerifyKey(ctx context.Context, r keyward.VerifyRequest) (*keyward.VerifyResult, error) {
	d := digestOf(r)
	c.mu.Lock()
	if res, ok := c.cached(d, c.now()); ok {
		c.mu.Unlock()
		if res == nil {
			return c.direct(ctx, d, r)
		}
		return copyResult(res, r.Agent), nil
	}
	cl := c.calls[d]
	own := cl == nil
	if own {
		cl = &call{done: make(chan struct{})}
		c.calls[d] = cl
		// The call outlives any one waiter: a request that gives up
		// must not fail the others. It keeps ctx's values.
		go c.fetch(context.WithoutCancel(ctx), d, cl, r)
	}
	if c.onWait != nil {
		c.onWait()
	}
	c.mu.Unlock()
	select {
	case <-cl.done:
		if cl.err != nil {
			return nil, cl.err
		}
		if !own && metered(cl.res) {
			// The shared call counted one request: this one must be
			// counted too.
			return c.direct(ctx, d, r)
		}
		return copyResult(cl.res, r.Agent), nil
	case <-ctx.Done():
		return nil, keyward.WrapError(keyward.EUNAVAILABLE, context.Cause(ctx), "verifying the key: %v", ctx.Err())
	}
}

// fetch makes the remote call of cl and caches its answer.
func (c *CachedVerifier) fetch(ctx context.Context, d digest, cl *call, r keyward.VerifyRequest) {
	start := c.now()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	res, err := c.v.VerifyKey(ctx, r)
	if err == nil && res == nil {
		err = keyward.Errorf(keyward.EINTERNAL, "the verifier returned neither a result nor an error")
	}
	c.mu.Lock()
	delete(c.calls, d)
	if err == nil {
		c.store(d, res, start)
	}
	c.mu.Unlock()
	cl.res, cl.err = res, err
	close(cl.done)
}

// direct asks the verifier for r alone, without the cache or sharing the
// call, and caches the answer as fetch does.
func (c *CachedVerifier) direct(ctx context.Context, d digest, r keyward.VerifyRequest) (*keyward.VerifyResult, error) {
	start := c.now()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	res, err := c.v.VerifyKey(ctx, r)
	if err == nil && res == nil {
		err = keyward.Errorf(keyward.EINTERNAL, "the verifier returned neither a result nor an error")
	}
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.store(d, res, start)
	c.mu.Unlock()
	return copyResult(res, r.Agent), nil
}

// metered reports whether res is of a key with rate limits or credits,
// whose every request must reach keyward.
func metered(res *keyward.VerifyResult) bool {
	return len(res.RateLimits) > 0 || res.CreditsRemaining != nil
}

// cached returns the unexpired answer for d, nil for a metered key. Called
// with mu held.
func (c *CachedVerifier) cached(d digest, now time.Time) (*keyward.VerifyResult, bool) {
	for _, m := range [...]map[digest]cacheEntry{c.pos, c.neg} {
		if e, ok := m[d]; ok {
			if now.Before(e.expires) {
				return e.res, true
			}
			delete(m, d)
		}
	}
	return nil, false
}

// store caches res, asked for at now, if its kind is cacheable. Called
// with mu held.
func (c *CachedVerifier) store(d digest, res *keyward.VerifyResult, now time.Time) {
	switch code := res.Code; {
	case res.Valid != code.Valid():
		// Inconsistent: the middleware refuses it; do not keep it.
	case metered(res):
		// Remember the key is metered, so its requests are neither
		// answered from the cache nor made to share a call.
		if c.ttl < 0 {
			return
		}
		delete(c.neg, d)
		put(c.pos, c.maxPos, d, cacheEntry{expires: now.Add(c.ttl)}, now)
	case code == keyward.DecisionValid:
		if c.ttl < 0 {
			return
		}
		exp := now.Add(c.ttl)
		if res.ExpiresAt != nil && res.ExpiresAt.Before(exp) {
			exp = *res.ExpiresAt
		}
		put(c.pos, c.maxPos, d, cacheEntry{res: res, expires: exp}, now)
	case code == keyward.DecisionUnavailable, code == keyward.DecisionRateLimited, code == keyward.DecisionUsageExceeded:
		// No decision, or limits that change by the second: ask again
		// next time.
	case slices.Contains(keyward.Decisions, code):
		if c.negTTL < 0 {
			return
		}
		delete(c.pos, d)
		put(c.neg, c.maxNeg, d, cacheEntry{res: res, expires: now.Add(c.negTTL)}, now)
	}
}

// evictScan bounds the entries looked at for an expired one to evict.
const evictScan = 8

// put adds e to m, evicting an entry first when m holds max: an expired one
// among the first few visited, else the first visited (map order is
// random).
func put(m map[digest]cacheEntry, max int, d digest, e cacheEntry, now time.Time) {
	if _, ok := m[d]; !ok && len(m) >= max {
		var victim digest
		n := 0
		for k, old := range m {
			if n == 0 {
				victim = k
			}
			if !now.Before(old.expires) {
				victim = k
				break
			}
			if n++; n == evictScan {
				break
			}
		}
		delete(m, victim)
	}
	m[d] = e
}

// digestOf hashes what decides a verification: the key, the sets of
// permissions, of limits and of manual limits (order and duplicates do
// not matter), the query, the role required, the cost, the IP and the
// environment required.
// Each part is length-prefixed so no two requests share a digest by
// concatenation.
func digestOf(r keyward.VerifyRequest) digest {
	h := sha256.New()
	writePart(h, r.Key)
	writeSet(h, r.Permissions)
	writeSet(h, r.Limits)
	writeSet(h, r.ManualLimits)
	writePart(h, r.Query)
	writePart(h, string(r.RequireRole))
	var n [binary.MaxVarintLen64]byte
	h.Write(n[:binary.PutVarint(n[:], r.Cost)])
	writePart(h, r.IP)
	writePart(h, r.Environment)
	var d digest
	h.Sum(d[:0])
	return d
}

// writeSet writes the distinct strings of ss, sorted, after their number.
func writeSet(h hash.Hash, ss []string) {
	set := slices.Compact(slices.Sorted(slices.Values(ss)))
	var n [binary.MaxVarintLen64]byte
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(set)))])
	for _, s := range set {
		writePart(h, s)
	}
}

func writePart(h hash.Hash, s string) {
	var n [binary.MaxVarintLen64]byte
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
	h.Write([]byte(s))
}

// copyResult returns a copy of res for a request by agent, sharing nothing
// mutable with the cache.
func copyResult(res *keyward.VerifyResult, agent string) *keyward.VerifyResult {
	out := *res
	out.Permissions = slices.Clone(res.Permissions)
	out.MissingPermissions = slices.Clone(res.MissingPermissions)
	out.Meta = slices.Clone(res.Meta)
	if res.Identity != nil {
		id := *res.Identity
		id.Agent = agent
		id.Permissions = slices.Clone(res.Identity.Permissions)
		out.Identity = &id
	}
	return &out
}
