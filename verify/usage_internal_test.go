package verify

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"unsafe"

	"github.com/keyward/keyward"
)

// TestUsageBatchBounded: a flood of distinct keys used between two flushes
// queues at most maxUsagePending entries; one that finds the batch full is
// not marked queued, so a later use queues it.
func TestUsageBatchBounded(t *testing.T) {
	var e Engine
	var last *entry
	for i := range maxUsagePending + 1000 {
		last = &entry{}
		last.setIDs(nil, [4]string{"key_" + strconv.Itoa(i)})
		e.used(last, int64(i+1)*usageResolution)
	}
	if n := len(e.usage.pending); n != maxUsagePending {
		t.Fatalf("usage batch holds %d entries, bound %d", n, maxUsagePending)
	}
	if last.lastUsed.Load()&queuedBit != 0 {
		t.Error("an entry that found the batch full is marked queued: it would never be queued again")
	}
}

// touchFails is a store whose usage writes fail.
type touchFails struct{ noKeys }

func (touchFails) TouchKeys(context.Context, []keyward.KeyUse) error {
	return keyward.Errorf(keyward.EUNAVAILABLE, "store down")
}

// TestUsageRetryKeepsNoEntry: the uses a failed flush keeps for the next
// one hold copies of the keys' ids, not views into their entries, so an
// entry the cache drops is not kept alive by a store that stays down.
func TestUsageRetryKeepsNoEntry(t *testing.T) {
	e := Engine{store: touchFails{}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	en := &entry{}
	en.setIDs(nil, [4]string{"key_1", "acc_1"})
	e.used(en, usageResolution)
	if err := e.flush(context.Background()); err == nil {
		t.Fatal("a flush to a failing store succeeded")
	}
	if len(e.usage.retry) != 1 {
		t.Fatalf("kept %d uses for the next flush, want 1", len(e.usage.retry))
	}
	start := uintptr(unsafe.Pointer(en))
	for id := range e.usage.retry {
		if p := uintptr(unsafe.Pointer(unsafe.StringData(id))); id != "key_1" || p >= start && p < start+unsafe.Sizeof(*en) {
			t.Errorf("kept use of %q is a view into the entry: it would keep the entry alive", id)
		}
	}
}
