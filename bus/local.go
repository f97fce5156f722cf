// Package bus keeps the verification caches of many keyward instances
// current (docs/architecture.md, verification pipeline). A Broadcaster is the keyward.KeyObserver of
// one instance: it applies each committed change to the local engine at once
// and publishes a keyward.Invalidation on a keyward.Bus, and it applies the
// invalidations other instances publish. Local is the in-process Bus; the
// redis, postgres and sqlite packages provide the ones that cross processes.
//
// The guarantees, for docs/deployment.md: the instance that made a change
// sees it at once; another instance sees it as soon as the bus delivers the
// message (milliseconds); if a message is lost, the cache TTL (default 30s)
// bounds how long the old state is served. While the bus is down an instance
// shortens its TTL (Config.DegradedTTL, default 5s) and, once it reconnects,
// drops its whole cache.
package bus

import (
	"context"
	"sync"

	"github.com/keyward/keyward"
)

// Local is a keyward.Bus inside one process: Publish hands the message to
// every subscription of the same Local, synchronously. It serves a single
// instance (its Broadcaster ignores its own messages, so the loop back is
// harmless) and tests that run several engines in one process. Its
// subscriptions never go down. The zero value is ready to use.
type Local struct {
	mu   sync.Mutex
	subs map[*localSub]struct{}
}

// localSub serialises the calls to one handler, as keyward.BusHandler
// promises.
type localSub struct {
	mu sync.Mutex
	h  keyward.BusHandler
}

var _ keyward.Bus = (*Local)(nil)

// NewLocal returns an empty Local bus.
func NewLocal() *Local { return &Local{} }

// Publish delivers inv to every current subscription before it returns.
// It never fails.
func (l *Local) Publish(ctx context.Context, inv keyward.Invalidation) error {
	l.mu.Lock()
	subs := make([]*localSub, 0, len(l.subs))
	for s := range l.subs {
		subs = append(subs, s)
	}
	l.mu.Unlock()
	for _, s := range subs {
		s.mu.Lock()
		s.h.Receive(inv)
		s.mu.Unlock()
	}
	return nil
}

// Subscribe calls h.Connected, delivers every message published until ctx
// is done, then returns nil.
func (l *Local) Subscribe(ctx context.Context, h keyward.BusHandler) error {
	if h.Receive == nil {
		return keyward.Errorf(keyward.EINVALID, "bus: BusHandler.Receive is required")
	}
	s := &localSub{h: h}
	s.mu.Lock()
	l.mu.Lock()
	if l.subs == nil {
		l.subs = make(map[*localSub]struct{})
	}
	l.subs[s] = struct{}{}
	l.mu.Unlock()
	if h.Connected != nil {
		h.Connected()
	}
	s.mu.Unlock()

	<-ctx.Done()
	l.mu.Lock()
	delete(l.subs, s)
	l.mu.Unlock()
	return nil
}
