package bus

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/verify"
)

// Defaults of Config.
const (
	DefaultDegradedTTL    = 5 * time.Second
	DefaultQueueSize      = 4096
	DefaultPublishTimeout = 5 * time.Second
)

// probeInterval is how often a Broadcaster whose last publish failed
// publishes an empty message to find out whether the bus is back, when it
// has nothing real to send.
const probeInterval = time.Second

// dropLogInterval rate-limits the warning about a full publish queue.
const dropLogInterval = time.Minute

// Config configures a Broadcaster.
type Config struct {
	// Engine is this instance's verification engine. Required.
	Engine *verify.Engine
	// Bus carries invalidations between instances: NewLocal() for a single
	// process, redis.NewBus or postgres.NewNotifyBus for many instances,
	// sqlite.NewBus for the processes on one SQLite file. Required.
	Bus keyward.Bus
	// Origin names this instance in the messages it publishes, so it can
	// ignore them when they come back. Default: a new random id, which is
	// what every instance needs; set it only to make logs easier to read,
	// and then uniquely per process.
	Origin string
	// DegradedTTL is the cache TTL while the bus is down, so a change made
	// on another instance is seen within it even though its message is
	// lost. It is capped at the engine's TTL. Default DefaultDegradedTTL.
	DegradedTTL time.Duration
	// QueueSize bounds the invalidations waiting to be published; when it
	// is full, more are dropped (counted, and logged once a minute) and
	// other instances see those changes within their cache TTL. Default
	// DefaultQueueSize.
	QueueSize int
	// PublishTimeout bounds one publish. Default DefaultPublishTimeout.
	PublishTimeout time.Duration
	// Logger receives one warning when the bus goes down and one info when
	// it recovers. Default slog.Default(); component=invalidation is added.
	Logger *slog.Logger
}

// Broadcaster is the keyward.KeyObserver of an instance that shares its store
// with others. Each change is applied to the local engine at once (the new
// state of a changed key is written into the cache, as verify.Engine does)
// and then published, off the caller's goroutine, so other instances drop
// those entries and reload them. A publish failure never fails the change
// that caused it: the change is committed already, and other instances see it
// within their cache TTL.
//
// Run subscribes to the bus. While the subscription (or publishing) is down,
// the Broadcaster logs one warning, sets keyward_invalidation_bus_up to 0 and
// shortens the engine's cache TTL to Config.DegradedTTL; when the
// subscription is established again it drops the engine's whole cache (it
// may have missed messages), restores the TTL and logs one info.
//
// A Broadcaster is a prometheus.Collector; register it with your registry.
type Broadcaster struct {
	engine         *verify.Engine
	bus            keyward.Bus
	origin         string
	degradedTTL    time.Duration
	publishTimeout time.Duration
	log            *slog.Logger
	queue          chan keyward.Invalidation

	mu         sync.Mutex // serialises state transitions and their logs
	subscribed bool       // the subscription is established
	subDown    bool       // the subscription was lost or never came up
	pubFailing bool       // the last publish failed
	degraded   bool       // subDown || pubFailing, as last logged
	everUp     bool       // the subscription has been established once

	up          atomic.Bool
	lastDropLog atomic.Int64
	m           counters
}

type counters struct {
	published, publishErrors, received, dropped, reconnects atomic.Uint64
}

var _ keyward.KeyObserver = (*Broadcaster)(nil)

// New returns a Broadcaster. It does nothing on the bus until Run.
func New(cfg Config) (*Broadcaster, error) {
	if cfg.Engine == nil {
		return nil, keyward.Errorf(keyward.EINVALID, "bus: Config.Engine is required")
	}
	if cfg.Bus == nil {
		return nil, keyward.Errorf(keyward.EINVALID, "bus: Config.Bus is required (bus.NewLocal() for a single instance)")
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"DegradedTTL", &cfg.DegradedTTL, DefaultDegradedTTL},
		{"PublishTimeout", &cfg.PublishTimeout, DefaultPublishTimeout},
	} {
		switch {
		case *d.v < 0:
			return nil, keyward.Errorf(keyward.EINVALID, "bus: Config.%s is %v; it must be positive (or zero for the default %v)", d.name, *d.v, d.def)
		case *d.v == 0:
			*d.v = d.def
		}
	}
	switch {
	case cfg.QueueSize < 0:
		return nil, keyward.Errorf(keyward.EINVALID, "bus: Config.QueueSize is %d; it must be positive (or zero for the default %d)", cfg.QueueSize, DefaultQueueSize)
	case cfg.QueueSize == 0:
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.Origin == "" {
		cfg.Origin = apikey.NewID("inst")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Broadcaster{
		engine:         cfg.Engine,
		bus:            cfg.Bus,
		origin:         cfg.Origin,
		degradedTTL:    min(cfg.DegradedTTL, cfg.Engine.CacheTTL()),
		publishTimeout: cfg.PublishTimeout,
		log:            cfg.Logger.With("component", "invalidation", "origin", cfg.Origin),
		queue:          make(chan keyward.Invalidation, cfg.QueueSize),
	}, nil
}

// Origin returns the name this instance publishes under.
func (b *Broadcaster) Origin() string { return b.origin }

// Up reports whether the subscription is established and publishing works.
func (b *Broadcaster) Up() bool { return b.up.Load() }

// Run subscribes to the bus and publishes queued invalidations until ctx is
// done, then returns nil (or the bus's error if it cannot subscribe at all).
// Call it once, in its own goroutine, and wait for it to return before
// closing the bus's client.
func (b *Broadcaster) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { b.publishLoop(ctx) })
	err := b.bus.Subscribe(ctx, keyward.BusHandler{
		Receive:      b.receive,
		Connected:    b.connected,
		Disconnected: b.disconnected,
	})
	cancel()
	wg.Wait()
	return err
}

// KeyChanged implements keyward.KeyObserver.
func (b *Broadcaster) KeyChanged(k *keyward.Key) {
	if k == nil {
		return
	}
	b.engine.KeyChanged(k)
	b.enqueue(keyward.Invalidation{KeyHashes: []keyward.KeyHash{k.Hash}})
}

// KeysDeleted implements keyward.KeyObserver.
func (b *Broadcaster) KeysDeleted(hashes []keyward.KeyHash) {
	if len(hashes) == 0 {
		return
	}
	b.engine.KeysDeleted(hashes)
	b.enqueue(keyward.Invalidation{KeyHashes: append([]keyward.KeyHash(nil), hashes...)})
}

// AccountChanged implements keyward.KeyObserver.
func (b *Broadcaster) AccountChanged(accountID string) {
	b.engine.AccountChanged(accountID)
	b.enqueue(keyward.Invalidation{AccountID: accountID})
}

// enqueue hands inv to the publish loop without ever blocking the caller,
// an admin request whose change is already committed.
func (b *Broadcaster) enqueue(inv keyward.Invalidation) {
	inv.Origin = b.origin
	select {
	case b.queue <- inv:
		return
	default:
	}
	b.m.dropped.Add(1)
	now := time.Now().UnixNano()
	last := b.lastDropLog.Load()
	if now-last >= int64(dropLogInterval) && b.lastDropLog.CompareAndSwap(last, now) {
		b.log.Warn("invalidation queue full: dropping messages; other instances see these changes within their cache TTL",
			"dropped_total", b.m.dropped.Load())
	}
}

// publishLoop publishes queued invalidations one at a time, in order. After
// a failure it probes the bus with empty messages until one goes through.
func (b *Broadcaster) publishLoop(ctx context.Context) {
	probe := time.NewTicker(probeInterval)
	defer probe.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case inv := <-b.queue:
			b.publish(ctx, inv)
		case <-probe.C:
			b.mu.Lock()
			failing := b.pubFailing
			b.mu.Unlock()
			if failing {
				b.publish(ctx, keyward.Invalidation{Origin: b.origin})
			}
		}
	}
}

func (b *Broadcaster) publish(ctx context.Context, inv keyward.Invalidation) {
	pctx, cancel := context.WithTimeout(ctx, b.publishTimeout)
	err := b.bus.Publish(pctx, inv)
	cancel()
	if ctx.Err() != nil {
		return // shutting down: not a bus failure
	}
	if err != nil {
		b.m.publishErrors.Add(1)
		if !inv.Empty() {
			b.log.Debug("publishing an invalidation failed; other instances see the change within their cache TTL", "err", err)
		}
	} else if !inv.Empty() {
		b.m.published.Add(1)
	}
	b.transition(func() { b.pubFailing = err != nil }, err)
}

// receive applies an invalidation published by another instance.
func (b *Broadcaster) receive(inv keyward.Invalidation) {
	if inv.Origin == b.origin || inv.Empty() {
		return
	}
	b.m.received.Add(1)
	b.engine.Invalidate(inv.KeyHashes)
	if inv.AccountID != "" {
		b.engine.InvalidateAccount(inv.AccountID)
	}
}

// connected: the subscription is (re)established. Anything published while
// it was not listening is lost, so the whole cache goes.
func (b *Broadcaster) connected() {
	b.engine.Purge()
	b.transition(func() {
		b.subscribed, b.subDown = true, false
		if b.everUp {
			b.m.reconnects.Add(1)
		} else {
			b.everUp = true
			b.log.Info("listening for invalidations from other instances")
		}
	}, nil)
}

func (b *Broadcaster) disconnected(err error) {
	b.transition(func() { b.subscribed, b.subDown = false, true }, err)
}

// transition applies change to the state and, when it moves between healthy
// and degraded, logs once and sets the cache TTL.
func (b *Broadcaster) transition(change func(), cause error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	change()
	b.up.Store(b.subscribed && !b.pubFailing)
	degraded := b.subDown || b.pubFailing
	if degraded == b.degraded {
		return
	}
	b.degraded = degraded
	if degraded {
		b.engine.SetCacheTTL(b.degradedTTL)
		b.log.Warn("invalidation bus is down: serving with a shorter cache TTL until it is back; changes made on other instances are seen within it",
			"err", cause, "cache_ttl", b.degradedTTL)
		return
	}
	b.engine.SetCacheTTL(0)
	b.log.Info("invalidation bus is back: cache TTL restored", "cache_ttl", b.engine.CacheTTL())
}
