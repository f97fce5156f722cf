package client

// SetOnWait makes c call f (under its lock) each time a request starts
// waiting on a remote call, so tests know when every request has joined.
func SetOnWait(c *CachedVerifier, f func()) { c.onWait = f }

// CacheLen returns the number of cached valid results and refusals.
func CacheLen(c *CachedVerifier) (positive, negative int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pos), len(c.neg)
}
