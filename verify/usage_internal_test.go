package verify

import (
	"strconv"
	"testing"
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
