package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward"
	goredis "github.com/redis/go-redis/v9"
)

// DefaultChannel is the pub/sub channel of NewBus when none is given.
// Deployments that share one Redis between separate keyward clusters give
// each its own channel.
const DefaultChannel = "keyward:invalidations"

// Subscription health and reconnection timing.
const (
	// defaultPingInterval: with no message for this long the subscriber
	// pings; with no answer for as long again it reconnects. A dead
	// connection that nobody closed is found within twice this.
	defaultPingInterval = 5 * time.Second
	minBackoff          = 100 * time.Millisecond
	maxBackoff          = 5 * time.Second
	// badMessageLogInterval rate-limits the warning about undecodable
	// messages on the channel.
	badMessageLogInterval = time.Minute
)

// Bus is a keyward.Bus on Redis pub/sub: Publish is one PUBLISH on the
// channel, Subscribe holds one SUBSCRIBE connection, pings it while it is
// idle and re-establishes it with backoff whenever it fails. Redis pub/sub
// delivers at most once, to the subscribers connected at the time, which is
// the contract of keyward.Bus. On a Cluster, PUBLISH reaches every node, so
// subscribers may connect to any.
type Bus struct {
	client  goredis.UniversalClient
	channel string
	log     *slog.Logger

	pingInterval time.Duration
	maxBackoff   time.Duration
	lastBadLog   atomic.Int64
}

var _ keyward.Bus = (*Bus)(nil)

// NewBus returns a Bus on channel ("" means DefaultChannel) of client, which
// it does not close. logger (nil means slog.Default()) gets debug records of
// each failed attempt; reporting an outage once is the subscriber's job
// (bus.Broadcaster).
func NewBus(client goredis.UniversalClient, channel string, logger *slog.Logger) *Bus {
	if channel == "" {
		channel = DefaultChannel
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Bus{
		client:       client,
		channel:      channel,
		log:          logger.With("component", "redis-bus", "channel", channel),
		pingInterval: defaultPingInterval,
		maxBackoff:   maxBackoff,
	}
}

// Publish implements keyward.Bus. EUNAVAILABLE if Redis does not take the
// message.
func (b *Bus) Publish(ctx context.Context, inv keyward.Invalidation) error {
	payload, err := json.Marshal(inv)
	if err != nil {
		return fmt.Errorf("redis: encode invalidation: %w", err)
	}
	if err := b.client.Publish(ctx, b.channel, payload).Err(); err != nil {
		return keyward.WrapError(keyward.EUNAVAILABLE, err, "redis: publish on %s", b.channel)
	}
	return nil
}

// Subscribe implements keyward.Bus.
func (b *Bus) Subscribe(ctx context.Context, h keyward.BusHandler) error {
	if h.Receive == nil {
		return keyward.Errorf(keyward.EINVALID, "redis: BusHandler.Receive is required")
	}
	return keyward.Resubscribe(ctx, h, minBackoff, b.maxBackoff, b.log, b.session)
}

// session subscribes, calls h.Connected once Redis confirms, and delivers
// messages until the connection fails. established says whether Connected
// was called.
func (b *Bus) session(ctx context.Context, h keyward.BusHandler) (established bool, err error) {
	ps := b.client.Subscribe(ctx, b.channel)
	defer ps.Close()
	// A blocked receive does not watch ctx: closing the connection ends it.
	stop := context.AfterFunc(ctx, func() { ps.Close() })
	defer stop()

	pingSent := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, b.pingInterval)
		if err != nil {
			if !isTimeout(err) || ctx.Err() != nil {
				return established, err
			}
			if !established || pingSent {
				return established, fmt.Errorf("redis: no answer from the subscription connection for %v", b.pingInterval)
			}
			if err := ps.Ping(ctx); err != nil {
				return established, err
			}
			pingSent = true
			continue
		}
		pingSent = false
		switch m := msg.(type) {
		case *goredis.Subscription:
			// The confirmation of SUBSCRIBE: first, or after go-redis
			// re-subscribed on a new connection by itself, in which
			// case messages may have been missed in between.
			if m.Kind == "subscribe" && h.Connected != nil {
				h.Connected()
			}
			established = true
		case *goredis.Message:
			var inv keyward.Invalidation
			if err := json.Unmarshal([]byte(m.Payload), &inv); err != nil {
				b.badMessage(err)
				continue
			}
			h.Receive(inv)
		case *goredis.Pong:
		}
	}
}

// badMessage logs an undecodable message, at most once a minute: a stale
// entry it may have named is bounded by the cache TTL.
func (b *Bus) badMessage(err error) {
	now := time.Now().UnixNano()
	last := b.lastBadLog.Load()
	if now-last >= int64(badMessageLogInterval) && b.lastBadLog.CompareAndSwap(last, now) {
		b.log.Warn("ignoring an undecodable message on the invalidation channel (another program, or an incompatible keyward version, publishes on it)", "err", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
