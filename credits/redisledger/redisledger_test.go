package redisledger_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/credits/creditstest"
	"github.com/keyward/keyward/credits/redisledger"
	"github.com/keyward/keyward/keywardtest"
	goredis "github.com/redis/go-redis/v9"
)

var epoch = creditstest.Epoch

// client returns a client for the test Redis, at addr if not empty,
// closed when the test ends.
func client(t testing.TB, addr string) goredis.UniversalClient {
	return keywardtest.NewRedisClient(t, addr)
}

// newPrefix returns a key prefix of the test's own, whose keys are deleted
// when the test ends.
func newPrefix(t testing.TB, c goredis.UniversalClient) string {
	t.Helper()
	prefix := fmt.Sprintf("keyward:test:cr:%x:", rand.Uint64())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		keys, _ := c.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			c.Del(ctx, keys...)
		}
	})
	return prefix
}

// newLedger returns a Ledger under prefix whose loop never writes back
// during a test (tests call Flush), closed when the test ends.
func newLedger(t testing.TB, c goredis.UniversalClient, s keyward.Store, prefix string) *redisledger.Ledger {
	t.Helper()
	l, err := redisledger.New(c, s, redisledger.Options{Prefix: prefix, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// setup returns a store, a client and a ledger of the test's own.
func setup(t testing.TB) (keyward.Store, goredis.UniversalClient, *redisledger.Ledger, string) {
	t.Helper()
	s := keywardtest.NewSQLiteStore(t)
	c := client(t, "")
	prefix := newPrefix(t, c)
	return s, c, newLedger(t, c, s, prefix), prefix
}

// stored returns the credits of keyID as the store holds them.
func stored(t testing.TB, s keyward.Store, keyID string) *keyward.Credits {
	t.Helper()
	k, err := s.Key(t.Context(), keyID)
	if err != nil {
		t.Fatal(err)
	}
	if k.Credits == nil {
		t.Fatalf("stored key %s has no credits", keyID)
	}
	return k.Credits
}

func spend(t testing.TB, l keyward.CreditLedger, k *keyward.Key, cost int64, wantLeft int64) {
	t.Helper()
	left, ok, err := l.Spend(t.Context(), k, cost, epoch)
	if err != nil || !ok || left != wantLeft {
		t.Fatalf("Spend(%d) = %d, %v, %v; want %d left", cost, left, ok, err, wantLeft)
	}
}

func TestLedger(t *testing.T) {
	c := client(t, "")
	if err := c.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("Redis at KEYWARD_TEST_REDIS_URL: %v", err)
	}
	creditstest.Run(t, func(t *testing.T) (keyward.Store, keyward.CreditLedger) {
		s := keywardtest.NewSQLiteStore(t)
		return s, newLedger(t, c, s, newPrefix(t, c))
	})
}

// TestTwoInstances: two ledgers on separate connections, one Redis and one
// store, standing for two keyward instances, admit exactly the credits
// between them, and their write-backs leave the store with the final count.
func TestTwoInstances(t *testing.T) {
	s := keywardtest.NewSQLiteStore(t)
	c1, c2 := client(t, ""), client(t, "")
	prefix := newPrefix(t, c1)
	l1, l2 := newLedger(t, c1, s, prefix), newLedger(t, c2, s, prefix)
	k := creditstest.NewKey(t, s, creditstest.Credits(500, 0, 0))
	creditstest.WantExactly(t, creditstest.SpendConcurrently(t, k, 1000, l1, l2), 500)
	for _, l := range []*redisledger.Ledger{l2, l1} {
		if err := l.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if c := stored(t, s, k.ID); c.Remaining != 0 {
		t.Errorf("stored remaining %d after both write-backs, want 0", c.Remaining)
	}
}

// TestWriteBack: spends reach the store at a Flush or Close, not before;
// a set and a top-up reach it at once.
func TestWriteBack(t *testing.T) {
	s, c, l, prefix := setup(t)
	k := creditstest.NewKey(t, s, creditstest.Credits(10, 0, 0))
	spend(t, l, k, 3, 7)
	if got := stored(t, s, k.ID); got.Remaining != 10 {
		t.Fatalf("stored remaining %d before the write-back, want 10", got.Remaining)
	}
	if err := l.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := stored(t, s, k.ID)
	if got.Remaining != 7 || got.Version <= k.Credits.Version {
		t.Fatalf("stored after Flush: %+v; want 7 remaining, version above %d", got, k.Credits.Version)
	}

	// A second instance writes back at its Close.
	l2, err := redisledger.New(c, s, redisledger.Options{Prefix: prefix, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	spend(t, l2, k, 2, 5)
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	if got := stored(t, s, k.ID); got.Remaining != 5 {
		t.Fatalf("stored remaining %d after Close, want 5", got.Remaining)
	}

	if _, err := l.TopUpCredits(t.Context(), k.ID, 4, epoch); err != nil {
		t.Fatal(err)
	}
	if got := stored(t, s, k.ID); got.Remaining != 9 {
		t.Fatalf("stored remaining %d after the top-up, want 9", got.Remaining)
	}
}

// TestStaleWriteBack: a write-back older than what the store holds changes
// nothing, also one of a counter from before the credits were removed and
// set again.
func TestStaleWriteBack(t *testing.T) {
	s, c, l, prefix := setup(t)
	k := creditstest.NewKey(t, s, creditstest.Credits(10, 0, 0))
	spend(t, l, k, 1, 9)
	old := counter(t, c, prefix, k.ID)
	spend(t, l, k, 1, 8)
	if err := l.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteCredits(t.Context(), []keyward.CreditWrite{old}); err != nil {
		t.Fatal(err)
	}
	if got := stored(t, s, k.ID); got.Remaining != 8 {
		t.Fatalf("stored remaining %d after a stale write-back of 9, want 8", got.Remaining)
	}

	old = counter(t, c, prefix, k.ID)
	if _, err := l.SetCredits(t.Context(), keyward.Change{}, k.ID, nil, epoch); err != nil {
		t.Fatal(err)
	}
	if _, err := l.SetCredits(t.Context(), keyward.Change{}, k.ID, creditstest.Credits(3, 0, 0), epoch); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteCredits(t.Context(), []keyward.CreditWrite{old}); err != nil {
		t.Fatal(err)
	}
	if got := stored(t, s, k.ID); got.Remaining != 3 {
		t.Fatalf("stored remaining %d after a write-back from before the set, want 3", got.Remaining)
	}
}

// counter reads keyID's counter from Redis as a write-back would.
func counter(t testing.TB, c goredis.UniversalClient, prefix, keyID string) keyward.CreditWrite {
	t.Helper()
	var h struct {
		R int64 `redis:"r"`
		T int64 `redis:"t"`
		V int64 `redis:"v"`
	}
	if err := c.HMGet(t.Context(), prefix+"{"+keyID+"}", "r", "t", "v").Scan(&h); err != nil || h.V == 0 {
		t.Fatalf("read the counter of %s: %+v, %v", keyID, h, err)
	}
	return keyward.CreditWrite{KeyID: keyID, Remaining: h.R, RefilledAt: time.UnixMicro(h.T).UTC(), Version: h.V}
}

// TestCounterLost: when Redis loses a counter, it is created again from
// the store, which lags by the spends since the last write-back; a counter
// is created from the store, not from the caller's snapshot.
func TestCounterLost(t *testing.T) {
	s, c, l, prefix := setup(t)
	k := creditstest.NewKey(t, s, creditstest.Credits(10, 0, 0))
	spend(t, l, k, 3, 7)
	if err := l.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	spend(t, l, k, 2, 5)
	key := prefix + "{" + k.ID + "}"
	if err := c.Del(t.Context(), key).Err(); err != nil {
		t.Fatal(err)
	}
	spend(t, l, k, 1, 6)
	ttl, err := c.PTTL(t.Context(), key).Result()
	if err != nil || ttl <= 23*time.Hour || ttl > redisledger.DefaultIdleTTL {
		t.Errorf("PTTL of the counter = %v, %v; want about %v", ttl, err, redisledger.DefaultIdleTTL)
	}
}

// TestUnavailable: with Redis out of reach every method returns
// EUNAVAILABLE, nothing is admitted and the store is unchanged.
func TestUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := keywardtest.NewSQLiteStore(t)
	l := newLedger(t, client(t, addr), s, "keyward:test:cr:down:")
	k := creditstest.NewKey(t, s, creditstest.Credits(10, 0, 0))
	unavailable := func(what string, err error) {
		t.Helper()
		if code := keyward.ErrorCode(err); code != keyward.EUNAVAILABLE {
			t.Errorf("%s with Redis down: %v (code %q), want EUNAVAILABLE", what, err, code)
		}
	}
	left, ok, err := l.Spend(t.Context(), k, 1, epoch)
	unavailable("Spend", err)
	if ok || left != 0 {
		t.Errorf("Spend with Redis down = %d, %v; want nothing admitted", left, ok)
	}
	_, err = l.Credits(t.Context(), k.ID, epoch)
	unavailable("Credits", err)
	_, err = l.SetCredits(t.Context(), keyward.Change{}, k.ID, creditstest.Credits(1, 0, 0), epoch)
	unavailable("SetCredits", err)
	_, err = l.SetCredits(t.Context(), keyward.Change{}, k.ID, nil, epoch)
	unavailable("SetCredits(nil)", err)
	_, err = l.TopUpCredits(t.Context(), k.ID, 1, epoch)
	unavailable("TopUpCredits", err)
	if got := stored(t, s, k.ID); got.Remaining != 10 || got.Version != k.Credits.Version {
		t.Errorf("stored credits %+v after the failures, want the key's %+v", got, k.Credits)
	}
}

// TestFlushRetries: counters a write-back could not read stay marked and
// are written back by the next one.
func TestFlushRetries(t *testing.T) {
	opts, err := goredis.ParseURL(keywardtest.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := keywardtest.NewProxy(t, opts.Addr)
	s := keywardtest.NewSQLiteStore(t)
	c := client(t, proxy.Addr())
	l := newLedger(t, c, s, newPrefix(t, client(t, "")))
	k := creditstest.NewKey(t, s, creditstest.Credits(10, 0, 0))
	spend(t, l, k, 4, 6)
	proxy.Cut()
	if err := l.Flush(t.Context()); keyward.ErrorCode(err) != keyward.EUNAVAILABLE {
		t.Fatalf("Flush with Redis cut: %v, want EUNAVAILABLE", err)
	}
	proxy.Restore()
	if err := l.Flush(t.Context()); err != nil {
		t.Fatalf("Flush after the restore: %v", err)
	}
	if got := stored(t, s, k.ID); got.Remaining != 6 {
		t.Fatalf("stored remaining %d after the retried write-back, want 6", got.Remaining)
	}
}

func TestNew(t *testing.T) {
	for name, opts := range map[string]redisledger.Options{
		"prefix with braces":  {Prefix: "a{b}:"},
		"negative interval":   {FlushInterval: -time.Second},
		"TTL below 10 writes": {FlushInterval: time.Hour, IdleTTL: 9 * time.Hour},
	} {
		if _, err := redisledger.New(nil, nil, opts); keyward.ErrorCode(err) != keyward.EINVALID {
			t.Errorf("New with %s: %v, want EINVALID", name, err)
		}
	}
}

func BenchmarkRedisLedgerSpend(b *testing.B) {
	s, _, l, _ := setup(b)
	keys := make([]*keyward.Key, 64)
	for i := range keys {
		keys[i] = creditstest.NewKey(b, s, creditstest.Credits(keyward.MaxCredits, 0, 0))
	}
	b.Run("serial", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, ok, err := l.Spend(b.Context(), keys[i%len(keys)], 1, epoch); err != nil || !ok {
				b.Fatalf("Spend = %v, %v", ok, err)
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(16)
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			i := int(n.Add(1))
			for pb.Next() {
				if _, ok, err := l.Spend(b.Context(), keys[i%len(keys)], 1, epoch); err != nil || !ok {
					b.Errorf("Spend = %v, %v", ok, err)
					return
				}
				i++
			}
		})
	})
}
