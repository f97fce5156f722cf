package sqlite_test

import (
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/bus/bustest"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/sqlite"
)

// busFiles maps a bustest channel to its database file: buses on one
// channel share a file, each through its own Store, as separate processes
// do.
var busFiles sync.Map

func openBus(t testing.TB, channel string, log *slog.Logger) *sqlite.Bus {
	path, _ := busFiles.LoadOrStore(channel, filepath.Join(t.TempDir(), "keyward.db"))
	return sqlite.NewBus(keywardtest.OpenSQLiteStore(t, path.(string)), 0, log)
}

func TestBus(t *testing.T) {
	t.Parallel()
	bustest.Run(t, bustest.Backend{
		Open: func(t testing.TB, channel, _ string, log *slog.Logger) keyward.Bus { return openBus(t, channel, log) },
	})
}

// TestBusPropagation records how long an invalidation published through
// one Store takes to reach a subscriber on another Store of the same file:
// about one poll interval (sqlite.DefaultBusPoll). It asserts delivery, not
// the time, which it logs.
func TestBusPropagation(t *testing.T) {
	t.Parallel()
	ch := bustest.Channel(t)
	pub, sub := openBus(t, ch, nil), openBus(t, ch, nil)
	got := make(chan keyward.Invalidation, 16)
	connected := make(chan struct{}, 1)
	go sub.Subscribe(t.Context(), keyward.BusHandler{
		Receive:   func(inv keyward.Invalidation) { got <- inv },
		Connected: func() { connected <- struct{}{} },
	})
	<-connected
	var worst time.Duration
	for i := range 5 {
		start := time.Now()
		if err := pub.Publish(t.Context(), keyward.Invalidation{Origin: "pub", AccountID: "acc_" + string(rune('a'+i))}); err != nil {
			t.Fatal(err)
		}
		select {
		case inv := <-got:
			if inv.AccountID != "acc_"+string(rune('a'+i)) {
				t.Fatalf("received %+v, want account acc_%c", inv, 'a'+i)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("invalidation %d not delivered", i)
		}
		worst = max(worst, time.Since(start))
	}
	t.Logf("worst propagation over 5 invalidations: %v (poll interval %v)", worst, sqlite.DefaultBusPoll)
}
