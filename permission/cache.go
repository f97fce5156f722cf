package permission

import (
	"sync"
	"sync/atomic"
)

// MaxCached bounds the queries a Cache holds.
const MaxCached = 1024

// Cache parses each distinct query once: verifiers that receive queries as
// text (the HTTP API, in-process callers) keep one. It holds at most
// MaxCached queries and starts over when full, so untrusted queries cost it
// a bounded amount. The zero value is ready; it is safe for concurrent use.
type Cache struct {
	m sync.Map // query text -> *Query
	n atomic.Int64
}

// Parse returns the parsed query s, parsing it unless the cache holds it.
// Errors are Parse's and are not cached.
func (c *Cache) Parse(s string) (*Query, error) {
	if q, ok := c.m.Load(s); ok {
		return q.(*Query), nil
	}
	q, err := Parse(s)
	if err != nil {
		return nil, err
	}
	if c.n.Add(1) > MaxCached {
		c.m.Clear()
		c.n.Store(1)
	}
	c.m.Store(s, q)
	return q, nil
}
