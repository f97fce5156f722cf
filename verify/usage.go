package verify

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keyward/keyward"
)

// usageResolution is the precision of last_used_at: a use within this long
// of the last recorded one changes nothing, so a hot key costs one atomic
// load per verification rather than a contended store.
const usageResolution = int64(time.Millisecond)

// flushTimeout bounds one TouchKeys call of the background flusher.
const flushTimeout = 10 * time.Second

// maxUsageRetry bounds the usage kept for the next flush when TouchKeys
// fails; beyond it the failed batch is dropped (last_used_at is advisory).
const maxUsageRetry = 250_000

// maxUsagePending bounds the batch of entries used since the last flush: a
// flood of distinct keys between two flushes (entries evicted and loaded
// again each queue anew) queues no more. An entry that finds the batch full
// is queued on a later use; its uses stay counted in it meanwhile.
const maxUsagePending = 250_000

// queuedBit is the bit of entry.lastUsed that says the entry waits in the
// usage batch: the flag shares the word (and the cache line) a use writes
// anyway, and the flusher clears it and reads the time in one operation.
// The times stored have it cleared: a nanosecond less precision.
const queuedBit = 1

// usage is the batch of entries used since the last flush. An entry is
// queued once per flush (its queuedBit), however often it is used; the
// flusher reads its latest use when it writes the batch.
type usage struct {
	mu      sync.Mutex
	pending []*entry
	spare   []*entry // the previous batch's array, reused by the next

	flushMu sync.Mutex       // one flush at a time
	retry   map[string]int64 // uses of a failed flush, by key id
}

// used records an authenticated use of en at now (Unix nanoseconds).
func (e *Engine) used(en *entry, now int64) {
	for {
		old := en.lastUsed.Load()
		if now-old&^queuedBit < usageResolution {
			return
		}
		if en.lastUsed.CompareAndSwap(old, now&^queuedBit|old&queuedBit) {
			break
		}
	}
	e.queue(en)
}

// queue adds en to the next flush's batch unless it waits there already.
// The flusher clears queuedBit as it reads lastUsed, and before it reads
// uses, so a use stored after that finds the bit clear and queues the
// entry again.
func (e *Engine) queue(en *entry) {
	for {
		v := en.lastUsed.Load()
		if v&queuedBit != 0 {
			return
		}
		if en.lastUsed.CompareAndSwap(v, v|queuedBit) {
			break
		}
	}
	e.usage.mu.Lock()
	full := len(e.usage.pending) >= maxUsagePending
	if !full {
		e.usage.pending = append(e.usage.pending, en)
	}
	e.usage.mu.Unlock()
	if full {
		en.lastUsed.And(^int64(queuedBit))
	}
}

// flush writes the latest use of every key used since the last flush with
// one TouchKeys call, and reports their VALID uses to the signal sink
// (whether or not the write succeeds).
func (e *Engine) flush(ctx context.Context) error {
	u := &e.usage
	u.flushMu.Lock()
	defer u.flushMu.Unlock()

	u.mu.Lock()
	batch := u.pending
	u.pending, u.spare = u.spare, nil
	u.mu.Unlock()
	defer func() {
		clear(batch)
		u.mu.Lock()
		u.spare = batch[:0]
		u.mu.Unlock()
	}()

	at := u.retry
	u.retry = nil
	if at == nil {
		at = make(map[string]int64, len(batch))
	}
	for _, en := range batch {
		if t := en.lastUsed.And(^int64(queuedBit)) &^ queuedBit; t > at[en.keyID()] {
			at[en.keyID()] = t
		}
	}
	if e.signals != nil {
		e.usageSignals(batch, e.now())
	}
	if len(at) == 0 {
		return nil
	}
	uses := make([]keyward.KeyUse, 0, len(at))
	for id, t := range at {
		uses = append(uses, keyward.KeyUse{ID: id, At: time.Unix(0, t).UTC()})
	}
	slices.SortFunc(uses, func(a, b keyward.KeyUse) int { return strings.Compare(a.ID, b.ID) })
	if err := e.store.TouchKeys(ctx, uses); err != nil {
		if len(at) <= maxUsageRetry {
			// Kept past this flush: copies of the ids, which are views
			// into entries the cache may drop meanwhile.
			u.retry = make(map[string]int64, len(at))
			for id, t := range at {
				u.retry[strings.Clone(id)] = t
			}
		} else {
			e.log.Warn("dropping key usage after a failed flush", "keys", len(at))
		}
		return fmt.Errorf("verify: record usage of %d keys: %w", len(uses), err)
	}
	return nil
}
