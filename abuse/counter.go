package abuse

import (
	"context"
	"sync"
	"time"

	"github.com/keyward/keyward"
)

// Counter keeps the counts and markers of the detector. NewLocalCounter
// keeps them in this process; redisabuse.Counter shares them between the
// instances using one Redis. Errors are EUNAVAILABLE when the backend
// cannot answer; the detector then counts and logs the error and skips the
// signal.
type Counter interface {
	// Add adds n (> 0) to the count named key in the fixed window of
	// length window that holds now (see WindowStart), and returns the count
	// after adding. Counts of past windows expire.
	Add(ctx context.Context, key string, n int64, now time.Time, window time.Duration) (int64, error)
	// Claim sets the marker named key for ttl unless it is set, and
	// reports whether this call set it: of the callers that claim the same
	// marker while it lives, exactly one gets true. LocalCounter counts ttl
	// from now; a shared backend may count it by its own clock.
	Claim(ctx context.Context, key string, now time.Time, ttl time.Duration) (bool, error)
	// Release deletes the marker named key, so it can be claimed again.
	Release(ctx context.Context, key string) error
}

// WindowStart returns the start of the fixed window of length window that
// holds now: windows are aligned to the Unix epoch, in whole milliseconds,
// so every instance computes the same windows.
func WindowStart(now time.Time, window time.Duration) time.Time {
	ms, w := now.UnixMilli(), window.Milliseconds()
	return time.UnixMilli(ms - ((ms%w)+w)%w).UTC()
}

// LocalCounter is a Counter for one instance. Safe for concurrent use.
type LocalCounter struct {
	mu     sync.Mutex
	counts table[windowKey, localCount]
	marks  table[string, time.Time]
}

type windowKey struct {
	key   string
	start int64 // Unix milliseconds
}

type localCount struct {
	n   int64
	end time.Time // the window's end: the count expires then
}

var _ Counter = (*LocalCounter)(nil)

// NewLocalCounter returns a LocalCounter holding at most max counts and max
// markers (DefaultMaxTracked if max <= 0). Expired entries are swept when it
// is full; past the bound, Add and Claim return EUNAVAILABLE.
func NewLocalCounter(max int) *LocalCounter {
	if max <= 0 {
		max = DefaultMaxTracked
	}
	return &LocalCounter{
		counts: newTable[windowKey, localCount](max),
		marks:  newTable[string, time.Time](max),
	}
}

// Add implements Counter.
func (c *LocalCounter) Add(_ context.Context, key string, n int64, now time.Time, window time.Duration) (int64, error) {
	start := WindowStart(now, window)
	k := windowKey{key, start.UnixMilli()}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.counts.m[k]
	e.n += n
	e.end = start.Add(window)
	if !c.counts.put(now, k, e, func(e localCount) bool { return !now.Before(e.end) }) {
		return 0, c.full("counts")
	}
	return e.n, nil
}

// Claim implements Counter.
func (c *LocalCounter) Claim(_ context.Context, key string, now time.Time, ttl time.Duration) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if until, ok := c.marks.m[key]; ok && now.Before(until) {
		return false, nil
	}
	if !c.marks.put(now, key, now.Add(ttl), func(until time.Time) bool { return !now.Before(until) }) {
		return false, c.full("markers")
	}
	return true, nil
}

// Release implements Counter.
func (c *LocalCounter) Release(_ context.Context, key string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.marks.m, key)
	return nil
}

// Len returns the number of counts and markers held, expired or not.
func (c *LocalCounter) Len() (counts, markers int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.counts.m), len(c.marks.m)
}

func (c *LocalCounter) full(what string) error {
	return keyward.Errorf(keyward.EUNAVAILABLE, "abuse: the local counter holds %d live %s, its bound: raise Config.MaxTracked", c.counts.max, what)
}
