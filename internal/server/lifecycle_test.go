package server

import (
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
