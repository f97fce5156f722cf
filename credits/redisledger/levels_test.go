package redisledger_test

import (
	"sync"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/credits/creditstest"
	"github.com/keyward/keyward/credits/redisledger"
	"github.com/keyward/keyward/keywardtest"
)

// TestLevelsTwoInstances: two ledgers standing for two instances spend a
// user's shared credits from three keys and admit exactly those credits;
// their write-backs leave the store with the final counts, and a counter
// lost from Redis is created again from the store.
func TestLevelsTwoInstances(t *testing.T) {
	s := keywardtest.NewSQLiteStore(t)
	c1, c2 := client(t, ""), client(t, "")
	prefix := newPrefix(t, c1)
	l1, l2 := newLedger(t, c1, s, prefix), newLedger(t, c2, s, prefix)
	keys := creditstest.SharedKeys(t, s, l1, 3, creditstest.Credits(100, 0, 0), creditstest.Credits(30, 0, 0), creditstest.Credits(1000, 0, 0))
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		admitted int
	)
	for i := range 90 {
		l := []*redisledger.Ledger{l1, l2}[i%2]
		k := keys[i%3]
		wg.Go(func() {
			got, err := l.SpendLevels(t.Context(), k, 1, epoch)
			if err != nil {
				t.Error(err)
				return
			}
			if got.Refused == "" {
				mu.Lock()
				admitted++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if admitted != 30 {
		t.Fatalf("90 spends over two instances on 30 shared credits admitted %d", admitted)
	}
	for _, l := range []*redisledger.Ledger{l1, l2} {
		if err := l.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	user, err := s.Meter(t.Context(), keys[0].UserID)
	if err != nil || user.Credits.Remaining != 0 {
		t.Fatalf("stored user credits %+v, %v; want 0", user, err)
	}
	account, err := s.Meter(t.Context(), keys[0].AccountID)
	if err != nil || account.Credits.Remaining != 970 {
		t.Fatalf("stored account credits %+v, %v; want 970", account, err)
	}
	var own int64
	for _, k := range keys {
		own += stored(t, s, k.ID).Remaining
	}
	if own != 270 {
		t.Fatalf("the keys' own stored credits sum to %d, want 270", own)
	}
	// Redis loses the counters: the next spend recreates them from the
	// store, which the write-back brought up to date.
	all, _ := c1.Keys(t.Context(), prefix+"*").Result()
	if len(all) != 5 {
		t.Fatalf("Redis holds %d counters, want 5 (3 keys, a user, an account): %v", len(all), all)
	}
	c1.Del(t.Context(), all...)
	got, err := l1.SpendLevels(t.Context(), keys[0], 1, epoch)
	if err != nil || got.Refused != keyward.LevelUser {
		t.Fatalf("after Redis lost the counters: %+v, %v; want refused by the user", got, err)
	}
}
