package redisabuse_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/abuse"
	"github.com/keyward/keyward/abuse/redisabuse"
	"github.com/keyward/keyward/keywardtest"
	goredis "github.com/redis/go-redis/v9"
)

// t0 is the start of a minute and of five.
var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// client returns a client for the test Redis, closed when the test ends.
func client(t testing.TB) goredis.UniversalClient {
	t.Helper()
	c := keywardtest.NewRedisClient(t, "")
	if err := c.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("Redis at KEYWARD_TEST_REDIS_URL: %v", err)
	}
	return c
}

// prefix returns a key prefix of the test's own, whose keys are deleted
// when the test ends.
func prefix(t testing.TB, c goredis.UniversalClient) string {
	p := fmt.Sprintf("keyward:test:abuse:%x:", rand.Uint64())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if keys, _ := c.Keys(ctx, p+"*").Result(); len(keys) > 0 {
			c.Del(ctx, keys...)
		}
	})
	return p
}

func TestCounter(t *testing.T) {
	ctx := t.Context()
	rc := client(t)
	p := prefix(t, rc)
	// Two instances, each with its own client.
	a, b := redisabuse.New(rc, p), redisabuse.New(client(t), p)
	add := func(c *redisabuse.Counter, at time.Time) int64 {
		t.Helper()
		n, err := c.Add(ctx, "failures:192.0.2.1/32", 1, at, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if add(a, t0) != 1 || add(b, t0.Add(30*time.Second)) != 2 || add(a, t0.Add(59*time.Second)) != 3 {
		t.Fatal("the instances do not share the count")
	}
	if add(b, t0.Add(time.Minute)) != 1 {
		t.Fatal("a new window does not start from zero")
	}
	// The count of the first window expires within twice its remaining time.
	ttl, err := rc.PTTL(ctx, fmt.Sprintf("%sn:failures:192.0.2.1/32:%d", p, t0.UnixMilli())).Result()
	if err != nil || ttl <= 0 || ttl > 2*time.Minute {
		t.Fatalf("PTTL = %v, %v; want an expiry within 2m", ttl, err)
	}
	if _, err := a.Add(ctx, "x", 0, t0, time.Minute); keyward.ErrorCode(err) != keyward.EINVALID {
		t.Fatalf("Add(0) = %v, want EINVALID", err)
	}

	// Of many concurrent claims, one wins.
	var wins atomic.Int64
	var wg sync.WaitGroup
	for i := range 50 {
		c := a
		if i%2 == 1 {
			c = b
		}
		wg.Go(func() {
			ok, err := c.Claim(ctx, "block:192.0.2.1/32", t0, time.Minute)
			if err != nil {
				t.Error(err)
			}
			if ok {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d claims won, want 1", wins.Load())
	}
	if err := b.Release(ctx, "block:192.0.2.1/32"); err != nil {
		t.Fatal(err)
	}
	if ok, err := a.Claim(ctx, "block:192.0.2.1/32", t0, time.Minute); err != nil || !ok {
		t.Fatalf("Claim after Release = %v, %v; want true", ok, err)
	}
	ttl, err = rc.PTTL(ctx, p+"m:block:192.0.2.1/32").Result()
	if err != nil || ttl <= 0 || ttl > time.Minute {
		t.Fatalf("marker PTTL = %v, %v; want an expiry within 1m", ttl, err)
	}
}

// TestUnavailable: an unreachable Redis is EUNAVAILABLE.
func TestUnavailable(t *testing.T) {
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { c.Close() })
	rc := redisabuse.New(c, "")
	if _, err := rc.Add(t.Context(), "x", 1, t0, time.Minute); keyward.ErrorCode(err) != keyward.EUNAVAILABLE {
		t.Errorf("Add = %v, want EUNAVAILABLE", err)
	}
	if _, err := rc.Claim(t.Context(), "x", t0, time.Minute); keyward.ErrorCode(err) != keyward.EUNAVAILABLE {
		t.Errorf("Claim = %v, want EUNAVAILABLE", err)
	}
	if err := rc.Release(t.Context(), "x"); keyward.ErrorCode(err) != keyward.EUNAVAILABLE {
		t.Errorf("Release = %v, want EUNAVAILABLE", err)
	}
}

// actions records what a detector asks of one instance.
type actions struct {
	blocks  []netip.Prefix
	reloads int
}

func (a *actions) BlockIP(_ context.Context, network netip.Prefix, _ time.Time, _ string) error {
	a.blocks = append(a.blocks, network)
	return nil
}
func (a *actions) DisableKey(context.Context, string, string) error { return nil }
func (a *actions) ReloadIPRules(context.Context) error              { a.reloads++; return nil }

// TestTwoDetectors: two instances sharing Redis and a store count failures
// together, and block, and report each burst and revoked key, once.
func TestTwoDetectors(t *testing.T) {
	rc := client(t)
	p := prefix(t, rc)
	store := keywardtest.NewSQLiteStore(t)
	now := func() time.Time { return t0 }
	type instance struct {
		d    *abuse.Detector
		acts *actions
	}
	var inst [2]instance
	for i := range inst {
		inst[i].acts = &actions{}
		cfg := abuse.DefaultConfig()
		cfg.Recorder, cfg.Actions, cfg.Now = keywardtest.AnomalyRecorder{Store: store}, inst[i].acts, now
		cfg.Counter = redisabuse.New(rc, p)
		cfg.Logger = slog.New(slog.DiscardHandler)
		d, err := abuse.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		inst[i].d = d
	}
	send := func(i int, s keyward.Signal) {
		s.At = t0
		inst[i].d.Signal(s)
		inst[i].d.Drain(t.Context())
	}
	attacker := netip.MustParseAddr("203.0.113.50")
	for i := range abuse.DefaultBruteForceThreshold {
		send(i%2, keyward.Signal{Kind: keyward.SignalFailure, Decision: keyward.DecisionNotFound, IP: attacker, Count: 1})
	}
	// The 20th failure, on instance 1, blocks; instance 0 sees the 21st.
	send(0, keyward.Signal{Kind: keyward.SignalFailure, Decision: keyward.DecisionNotFound, IP: attacker, Count: 1})
	want := netip.PrefixFrom(attacker, 32)
	if len(inst[1].acts.blocks) != 1 || inst[1].acts.blocks[0] != want || len(inst[0].acts.blocks) != 0 {
		t.Fatalf("blocks = %v and %v, want one of %v, by instance 1", inst[0].acts.blocks, inst[1].acts.blocks, want)
	}
	if inst[0].acts.reloads != 1 {
		t.Errorf("instance 0 reloaded its IP rules %d times, want once", inst[0].acts.reloads)
	}

	// 50 failures of one account's keys, 25 on each: one failure_burst;
	// a revoked key presented on both: one revoked_key_use.
	for i := range abuse.DefaultFailureBurstThreshold + 10 {
		send(i%2, keyward.Signal{Kind: keyward.SignalFailure, Decision: keyward.DecisionInsufficientPermissions,
			IP: netip.MustParseAddr("192.0.2.1"), KeyID: "key_1", AccountID: "acc_1", Count: 1})
	}
	for i := range 2 {
		send(i, keyward.Signal{Kind: keyward.SignalFailure, Decision: keyward.DecisionRevoked,
			IP: netip.MustParseAddr("192.0.2.2"), KeyID: "key_old", AccountID: "acc_1", Count: 1})
	}
	for typ, n := range map[keyward.AnomalyType]int{
		keyward.AnomalyBruteForce: 1, keyward.AnomalyFailureBurst: 1, keyward.AnomalyRevokedKeyUse: 1,
	} {
		as, _, err := store.Anomalies(t.Context(), keyward.AnomalyFilter{Type: typ}, keyward.Page{})
		if err != nil {
			t.Fatal(err)
		}
		if len(as) != n {
			t.Errorf("%s anomalies = %d, want %d", typ, len(as), n)
		}
	}
}
