package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/sqlstore"
)

// Timing of Bus.
const (
	// DefaultBusPoll is how often a Bus subscription reads new
	// invalidations: a change made by one process reaches the others
	// sharing the file within about this long.
	DefaultBusPoll = 250 * time.Millisecond
	// busRetention is how long a published invalidation stays in the
	// table; publishers prune older rows at most once per busPruneEvery.
	// A subscriber that falls further behind finds a gap and drops its
	// whole cache (BusHandler.Connected).
	busRetention  = time.Minute
	busPruneEvery = 10 * time.Second
	// busBatch bounds the rows one poll reads; more wait for the next.
	busBatch       = 256
	busMinBackoff  = 100 * time.Millisecond
	busMaxBackoff  = 5 * time.Second
	badBusLogEvery = time.Minute
)

// Bus is a keyward.Bus between the processes that share one SQLite database
// file, such as keyward serve and a keyward gateway --data on the same data
// directory: Publish appends the invalidation to the invalidations table,
// and each subscription polls that table (one indexed read of the rows
// above the last one it saw) every poll interval. A change committed by one
// process thus reaches the caches of the others within about one interval
// (DefaultBusPoll), where an in-process bus would leave them to their cache
// TTL. Delivery is at most once, like the other buses: a subscriber that
// was down, or fell more than a minute behind, drops its whole cache.
type Bus struct {
	s    *Store
	poll time.Duration
	log  *slog.Logger

	lastPrune  atomic.Int64
	lastBadLog atomic.Int64
}

var _ keyward.Bus = (*Bus)(nil)

// NewBus returns a Bus on the database of s, polled every poll (zero:
// DefaultBusPoll). logger (nil: slog.Default()) gets debug records of
// failed polls; reporting an outage once is the subscriber's job
// (bus.Broadcaster).
func NewBus(s *Store, poll time.Duration, logger *slog.Logger) *Bus {
	if poll <= 0 {
		poll = DefaultBusPoll
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Bus{s: s, poll: poll, log: logger.With("component", "sqlite-bus")}
}

// Publish implements keyward.Bus: it appends inv to the table, and prunes
// rows older than a minute from time to time. EUNAVAILABLE if the database
// does not take it.
func (b *Bus) Publish(ctx context.Context, inv keyward.Invalidation) error {
	payload, err := json.Marshal(inv)
	if err != nil {
		return fmt.Errorf("sqlite: encode invalidation: %w", err)
	}
	now := time.Now()
	last := b.lastPrune.Load()
	prune := now.UnixNano()-last >= int64(busPruneEvery) && b.lastPrune.CompareAndSwap(last, now.UnixNano())
	err = b.s.WriteUnaudited(ctx, func(tx *sqlstore.Tx) error {
		if _, err := tx.ExecContext(ctx, "INSERT INTO invalidations (payload, created_at) VALUES (?, ?)", string(payload), sqlstore.FormatTime(now)); err != nil {
			return err
		}
		if prune {
			_, err := tx.ExecContext(ctx, "DELETE FROM invalidations WHERE created_at < ?", sqlstore.FormatTime(now.Add(-busRetention)))
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: publish invalidation: %w", b.s.Error(err, sqlstore.Conflicts{}))
	}
	return nil
}

// Subscribe implements keyward.Bus.
func (b *Bus) Subscribe(ctx context.Context, h keyward.BusHandler) error {
	if h.Receive == nil {
		return keyward.Errorf(keyward.EINVALID, "sqlite: BusHandler.Receive is required")
	}
	return keyward.Resubscribe(ctx, h, busMinBackoff, busMaxBackoff, b.log, b.session)
}

// session reads the last seq, calls h.Connected, then polls and delivers
// until a read fails. established says whether Connected was called.
func (b *Bus) session(ctx context.Context, h keyward.BusHandler) (established bool, err error) {
	var last int64
	if err := b.s.Reader().QueryRowContext(ctx, "SELECT COALESCE(MAX(seq), 0) FROM invalidations").Scan(&last); err != nil {
		return false, b.s.Error(err, sqlstore.Conflicts{})
	}
	if h.Connected != nil {
		h.Connected()
	}
	t := time.NewTicker(b.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case <-t.C:
		}
		if last, err = b.deliver(ctx, h, last); err != nil {
			return true, err
		}
	}
}

// deliver hands h the invalidations above seq last and returns the last seq
// it read. A gap after last (rows pruned before this subscriber read them)
// calls h.Connected, since messages were lost.
func (b *Bus) deliver(ctx context.Context, h keyward.BusHandler, last int64) (int64, error) {
	rows, err := b.s.Reader().QueryContext(ctx, "SELECT seq, payload FROM invalidations WHERE seq > ? ORDER BY seq LIMIT ?", last, busBatch)
	if err != nil {
		return last, b.s.Error(err, sqlstore.Conflicts{})
	}
	defer rows.Close()
	first := true
	for rows.Next() {
		var seq int64
		var payload string
		if err := rows.Scan(&seq, &payload); err != nil {
			return last, b.s.Error(err, sqlstore.Conflicts{})
		}
		if first && seq > last+1 && h.Connected != nil {
			h.Connected()
		}
		first, last = false, seq
		var inv keyward.Invalidation
		if err := json.Unmarshal([]byte(payload), &inv); err != nil {
			b.badMessage(err)
			continue
		}
		h.Receive(inv)
	}
	return last, b.s.Error(rows.Err(), sqlstore.Conflicts{})
}

// badMessage logs an undecodable row, at most once a minute: a stale entry
// it may have named is bounded by the cache TTL.
func (b *Bus) badMessage(err error) {
	now := time.Now().UnixNano()
	last := b.lastBadLog.Load()
	if now-last >= int64(badBusLogEvery) && b.lastBadLog.CompareAndSwap(last, now) {
		b.log.Warn("ignoring an undecodable row of the invalidations table (an incompatible keyward version wrote it)", "err", err)
	}
}
