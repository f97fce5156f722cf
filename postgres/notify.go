package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/sqlstore"
)

// DefaultNotifyChannel is the channel of NewNotifyBus when none is given.
// Channels are per database, not per schema: keyward deployments that
// share a database in separate schemas give each its own channel.
const DefaultNotifyChannel = "keyward_invalidations"

// maxNotifyPayload is the largest payload NotifyBus sends in one NOTIFY;
// PostgreSQL refuses payloads of 8000 bytes or more.
const maxNotifyPayload = 7999

// Listener health and reconnection timing.
const (
	// defaultNotifyPingInterval: with no notification for this long the
	// listener pings its connection, and reconnects if that fails.
	defaultNotifyPingInterval = 5 * time.Second
	notifyMinBackoff          = 100 * time.Millisecond
	notifyMaxBackoff          = 5 * time.Second
	// badNotifyLogInterval rate-limits the warning about undecodable
	// payloads.
	badNotifyLogInterval = time.Minute
)

// channelName is what NewNotifyBus accepts: an identifier PostgreSQL does
// not fold, so LISTEN and pg_notify name the same channel.
var channelName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// NotifyBus is a keyward.Bus on PostgreSQL LISTEN/NOTIFY, for deployments
// with PostgreSQL and no Redis. Publish sends pg_notify through a small pool
// of its own (an invalidation too large for one payload goes as several
// notifications, in one transaction); Subscribe LISTENs on a dedicated
// connection, pings it while idle and re-establishes it with backoff
// whenever it fails. Notifications reach the sessions listening at commit
// time, at most once, which is the contract of keyward.Bus.
//
// Behind a transaction-mode pooler (PgBouncer) LISTEN does not work: give
// NotifyBus a URL that reaches PostgreSQL directly or through a
// session-mode pool.
type NotifyBus struct {
	pool    *pgxpool.Pool
	conn    *pgx.ConnConfig
	channel string
	log     *slog.Logger

	pingInterval time.Duration
	lastBadLog   atomic.Int64
}

var _ keyward.Bus = (*NotifyBus)(nil)

// NewNotifyBus returns a bus on channel ("" means DefaultNotifyChannel) of
// the database at url (the store's URL will do; the publishing pool opens
// connections as they are needed, usually one). It does not connect until
// used. logger (nil means slog.Default()) gets debug records of each
// failed attempt; reporting an outage once is the subscriber's job
// (bus.Broadcaster). Close it when done. EINVALID for a bad URL or channel.
func NewNotifyBus(url, channel string, logger *slog.Logger) (*NotifyBus, error) {
	if channel == "" {
		channel = DefaultNotifyChannel
	}
	if !channelName.MatchString(channel) {
		return nil, keyward.Errorf(keyward.EINVALID,
			"postgres: notify channel %q: use lower case letters, digits and underscores, not starting with a digit, at most 63 characters", channel)
	}
	cfg, _, err := parseConfig(url, Options{})
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, keyward.WrapError(keyward.EINVALID, err, "postgres: notify bus")
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &NotifyBus{
		pool:         pool,
		conn:         cfg.ConnConfig,
		channel:      channel,
		log:          logger.With("component", "postgres-bus", "channel", channel),
		pingInterval: defaultNotifyPingInterval,
	}, nil
}

// Close closes the publishing pool. Subscriptions end with their contexts.
func (b *NotifyBus) Close() { b.pool.Close() }

// Publish implements keyward.Bus. EUNAVAILABLE if the database does not
// take the notifications.
func (b *NotifyBus) Publish(ctx context.Context, inv keyward.Invalidation) error {
	payloads, err := notifyPayloads(inv, maxNotifyPayload)
	if err != nil {
		return err
	}
	// One statement, one transaction: the parts arrive together.
	if _, err := b.pool.Exec(ctx, "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p", b.channel, payloads); err != nil {
		err = mapError(err, sqlstore.Conflicts{})
		if keyward.ErrorCode(err) == keyward.EINTERNAL {
			err = keyward.WrapError(keyward.EUNAVAILABLE, err, "database unavailable")
		}
		return fmt.Errorf("postgres: notify %s: %w", b.channel, err)
	}
	return nil
}

// notifyPayloads encodes inv as JSON payloads of at most max bytes each:
// one if it fits, else its hashes spread over several, the account and the
// origin in every one. Their union is inv.
func notifyPayloads(inv keyward.Invalidation, max int) ([]string, error) {
	whole, err := json.Marshal(inv)
	if err != nil {
		return nil, fmt.Errorf("postgres: encode invalidation: %w", err)
	}
	if len(whole) <= max {
		return []string{string(whole)}, nil
	}
	var out []string
	rest := inv.KeyHashes
	for len(rest) > 0 {
		// Binary search for the most hashes that fit; sizes are uniform,
		// so this settles in a few encodings.
		lo, hi := 0, len(rest) // lo fits (0 always does unless the frame is too big)
		for lo < hi {
			mid := (lo + hi + 1) / 2
			b, err := json.Marshal(keyward.Invalidation{Origin: inv.Origin, AccountID: inv.AccountID, KeyHashes: rest[:mid]})
			if err != nil {
				return nil, fmt.Errorf("postgres: encode invalidation: %w", err)
			}
			if len(b) <= max {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		if lo == 0 {
			return nil, keyward.Errorf(keyward.EINVALID, "postgres: invalidation of account %q from %q does not fit in a notification", inv.AccountID, inv.Origin)
		}
		b, _ := json.Marshal(keyward.Invalidation{Origin: inv.Origin, AccountID: inv.AccountID, KeyHashes: rest[:lo]})
		out = append(out, string(b))
		rest = rest[lo:]
	}
	return out, nil
}

// Subscribe implements keyward.Bus.
func (b *NotifyBus) Subscribe(ctx context.Context, h keyward.BusHandler) error {
	if h.Receive == nil {
		return keyward.Errorf(keyward.EINVALID, "postgres: BusHandler.Receive is required")
	}
	return keyward.Resubscribe(ctx, h, notifyMinBackoff, notifyMaxBackoff, b.log, b.listen)
}

// listen connects, LISTENs, calls h.Connected and delivers notifications
// until the connection fails. established says whether Connected was
// called.
func (b *NotifyBus) listen(ctx context.Context, h keyward.BusHandler) (established bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, b.conn.Copy())
	if err != nil {
		return false, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{b.channel}.Sanitize()); err != nil {
		return false, err
	}
	if h.Connected != nil {
		h.Connected()
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, b.pingInterval)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return true, ctx.Err()
		case err != nil && errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			// Idle: make sure the connection still works.
			pctx, cancel := context.WithTimeout(ctx, b.pingInterval)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return true, fmt.Errorf("postgres: ping the listening connection: %w", err)
			}
			continue
		case err != nil:
			return true, err
		}
		var inv keyward.Invalidation
		if err := json.Unmarshal([]byte(n.Payload), &inv); err != nil {
			now, last := time.Now().UnixNano(), b.lastBadLog.Load()
			if now-last >= int64(badNotifyLogInterval) && b.lastBadLog.CompareAndSwap(last, now) {
				b.log.Warn("ignoring an undecodable notification on the invalidation channel (another program, or an incompatible keyward version, notifies on it)", "err", err)
			}
			continue
		}
		h.Receive(inv)
	}
}
