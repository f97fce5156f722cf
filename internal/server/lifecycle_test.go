package server

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/keywardtest"
)

// TestUsageRetention: the retention of the usage block (checked in
// internal/config) reaches the aggregator: a start applies it at once.
func TestUsageRetention(t *testing.T) {
	old := keyward.UsageRow{Granularity: keyward.UsageMinute, Start: time.Now().Add(-5 * time.Hour), KeyID: "key_1", Code: keyward.DecisionValid, Count: 1}
	for _, c := range []struct {
		retention time.Duration
		kept      bool
	}{{0, true}, {3 * time.Hour, false}} {
		store := keywardtest.NewSQLiteStore(t)
		if err := store.AddUsage(t.Context(), []keyward.UsageRow{old}); err != nil {
			t.Fatal(err)
		}
		_, stop := startUsage(store, config.Usage{MinuteRetention: c.retention}, slog.New(slog.DiscardHandler))
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		rows, err := store.Usage(t.Context(), keyward.UsageFilter{Granularity: keyward.UsageMinute})
		if err != nil {
			t.Fatal(err)
		}
		if (len(rows) == 1) != c.kept {
			t.Errorf("minute retention %s: %d minute rows of 5h ago left, want kept=%v", c.retention, len(rows), c.kept)
		}
	}
}

// heldRollUp is a store whose usage roll-up waits until its context ends,
// as one does behind another instance's roll-up lock on PostgreSQL.
type heldRollUp struct {
	keyward.Store
	waited chan struct{}
}

func (s heldRollUp) RollUpUsage(ctx context.Context, before time.Time) error {
	<-ctx.Done()
	close(s.waited)
	return ctx.Err()
}

// TestUsageStartDoesNotWaitOnAHeldRollUp: a start whose roll-up cannot
// get the lock serves after startMaintainTimeout rather than waiting for
// it, and still writes its counts on stop.
func TestUsageStartDoesNotWaitOnAHeldRollUp(t *testing.T) {
	old := startMaintainTimeout
	startMaintainTimeout = 20 * time.Millisecond
	t.Cleanup(func() { startMaintainTimeout = old })
	store := heldRollUp{Store: keywardtest.NewSQLiteStore(t), waited: make(chan struct{})}
	agg, stop := startUsage(store, config.Usage{}, slog.New(slog.DiscardHandler))
	select {
	case <-store.waited:
	default:
		t.Fatal("startUsage returned before its roll-up gave up")
	}
	agg.Signal(keyward.Signal{Kind: keyward.SignalUsage, KeyID: "key_1", AccountID: "acc_1", Count: 1, At: time.Now()})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	rows, err := store.Usage(t.Context(), keyward.UsageFilter{Granularity: keyward.UsageMinute})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Count != 1 {
		t.Errorf("after stop: %+v, want the one count written", rows)
	}
}
