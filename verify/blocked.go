package verify

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/keyward/keyward"
)

// An automatic block (keyward.IPRule.Automatic, made by brute-force
// blocking) refuses a guessing client without locking out the real keys
// used from its address, which behind a NAT or a proxy is everyone's: a
// key that verifies VALID passes, everything else is IP_BLOCKED. What can
// be refused before the store is: a token that fails its checksum, and a
// hash the negative cache knows. Other misses reach the store within a
// budget per blocked network (BlockedLookupBurst, then one per
// BlockedLookupInterval), so the block still shields the store. A key
// cached before (valid a moment ago, its cache entry expired) is reloaded
// outside the budget: guessing cannot produce one. A block made by hand
// refuses everything before any parsing, as before.
const (
	// BlockedLookupBurst is how many store lookups of keys the cache does
	// not know a network under an automatic block may cause at once.
	BlockedLookupBurst = 5
	// BlockedLookupInterval is how often such a network earns one more.
	BlockedLookupInterval = time.Second
	// maxBlockedNets bounds the networks whose budget is tracked; past it
	// (every tracked budget in use) a blocked network gets no lookups.
	maxBlockedNets = 10_000
)

// errBlockedMiss is lookupBlocked's answer when the budget is spent.
var errBlockedMiss = errors.New("verify: lookup budget of an automatically blocked network spent")

// blockedNet names the automatic block a client address lies in: the
// first address of its range, and its family.
type blockedNet struct {
	lo u128
	v6 bool
}

// verifyAutoBlocked verifies a request whose address only automatic blocks
// hold: a key that authenticates keeps its own answer (VALID, or a refusal
// about what it may do); any credential refusal, and a miss beyond the
// budget, is IP_BLOCKED, with no key named.
func (e *Engine) verifyAutoBlocked(ctx context.Context, req *Request, now time.Time, rules *ipMatcher, res *Result) {
	ip := req.IP.Unmap()
	r, _ := rules.autoBlock.find(ip)
	bn := blockedNet{lo: r.lo, v6: !ip.Is4()}
	e.verifyKey(ctx, req, now, rules, &bn, res)
	if res.Decision.Unauthenticated() {
		*res = Result{Decision: keyward.DecisionIPBlocked, Agent: req.Agent}
	}
}

// lookupBlocked is lookup for a client in the automatically blocked
// network bn: a fresh cache entry (a key, or "no such key") answers as
// usual, and so does an expired key entry, reloaded; a hash the cache does
// not know is looked up only within bn's budget, else errBlockedMiss.
func (e *Engine) lookupBlocked(ctx context.Context, h keyward.KeyHash, raw string, now int64, bn blockedNet, en *entry, ok bool) (*entry, error) {
	if ok {
		e.m.hits.Add(1)
		return en, nil
	}
	if en == nil && !e.blockedLookups.take(bn, now) {
		return nil, errBlockedMiss
	}
	e.m.misses.Add(1)
	return e.load(ctx, h, raw)
}

// lookupBudgets holds the lookup budget of each automatically blocked
// network that used some, as the time its budget is full again (GCRA:
// BlockedLookupBurst lookups, one more per BlockedLookupInterval). Bounded
// by maxBlockedNets; a network whose budget is full again is dropped
// first.
type lookupBudgets struct {
	mu   sync.Mutex
	full map[blockedNet]int64 // Unix nanoseconds
}

// take spends one lookup of bn's budget at now, if there is one left.
func (b *lookupBudgets) take(bn blockedNet, now int64) bool {
	const every = int64(BlockedLookupInterval)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.full == nil {
		b.full = make(map[blockedNet]int64)
	}
	full, ok := b.full[bn]
	if !ok && len(b.full) >= maxBlockedNets {
		for n, f := range b.full {
			if f <= now {
				delete(b.full, n)
			}
		}
		if len(b.full) >= maxBlockedNets {
			return false
		}
	}
	full = max(full, now) + every
	if full-now > BlockedLookupBurst*every {
		return false
	}
	b.full[bn] = full
	return true
}
