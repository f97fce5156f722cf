package verify

import "context"

// Test access to the engine's internals: no hooks, only observation and the
// background work run on demand.

// Flush writes pending usage now.
func (e *Engine) Flush(ctx context.Context) error { return e.flush(ctx) }

// CacheLen returns the number of positive and negative entries.
func (e *Engine) CacheLen() (positive, negative int) {
	e.scan(func(s *shard) {
		positive += len(s.pos)
		negative += len(s.neg)
	})
	if n := int(e.cache.negCount.Load()); n != negative {
		panic("negative entry count out of step with the maps")
	}
	return positive, negative
}
