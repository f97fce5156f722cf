package redislimit_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/ratelimit"
	"github.com/keyward/keyward/ratelimit/ratelimittest"
	"github.com/keyward/keyward/ratelimit/redislimit"
	goredis "github.com/redis/go-redis/v9"
)

// client returns a client for the test Redis, at addr if not empty,
// closed when the test ends.
func client(t testing.TB, addr string) goredis.UniversalClient {
	return keywardtest.NewRedisClient(t, addr)
}

// newLimiter returns a Limiter under a prefix of the test's own, whose keys
// are deleted when the test ends.
func newLimiter(t testing.TB, c goredis.UniversalClient) *redislimit.Limiter {
	t.Helper()
	prefix := fmt.Sprintf("keyward:test:rl:%x:", rand.Uint64())
	l, err := redislimit.New(c, prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		keys, _ := c.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			c.Del(ctx, keys...)
		}
	})
	return l
}

func TestLimiter(t *testing.T) {
	c := client(t, "")
	if err := c.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("Redis at KEYWARD_TEST_REDIS_URL: %v", err)
	}
	ratelimittest.Run(t, func(t *testing.T) ratelimit.Limiter { return newLimiter(t, c) })
}

var perSecond = keyward.RateLimit{Name: "per-second", Limit: 10, Window: keyward.Duration(time.Second)}

// TestKeys: the buckets of one key share a hash slot and expire 5 s after
// they are full again.
func TestKeys(t *testing.T) {
	c := client(t, "")
	prefix := fmt.Sprintf("keyward:test:rl:%x:", rand.Uint64())
	l, err := redislimit.New(c, prefix)
	if err != nil {
		t.Fatal(err)
	}
	day := keyward.RateLimit{Name: "day", Limit: 1000, Window: keyward.Duration(24 * time.Hour)}
	if _, ok, err := l.AllowAll(t.Context(), "key_1", []keyward.RateLimit{perSecond, day}, 1, time.Now(), nil); err != nil || !ok {
		t.Fatalf("AllowAll = %v, %v", ok, err)
	}
	const margin = 5 * time.Second
	for name, full := range map[string]time.Duration{"per-second": 100 * time.Millisecond, "day": 86400 * time.Millisecond} {
		k := prefix + "{key_1}:" + name
		ttl, err := c.PTTL(t.Context(), k).Result()
		if err != nil || ttl <= margin/2 || ttl > full+margin {
			t.Errorf("PTTL %s = %v, %v; want in (%v, %v]", k, ttl, err, margin/2, full+margin)
		}
		c.Del(t.Context(), k)
	}
	if _, err := redislimit.New(c, "a{b}:"); keyward.ErrorCode(err) != keyward.EINVALID {
		t.Errorf("prefix with braces: %v, want EINVALID", err)
	}
}

// TestUnavailable: with Redis out of reach, Allow returns EUNAVAILABLE and
// never an admission; it works again once Redis is back.
func TestUnavailable(t *testing.T) {
	opts, err := goredis.ParseURL(keywardtest.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := keywardtest.NewProxy(t, opts.Addr)
	l := newLimiter(t, client(t, proxy.Addr()))
	now := ratelimittest.Epoch
	if d, err := l.Allow(t.Context(), "k", perSecond, 1, now); err != nil || !d.Allowed {
		t.Fatalf("before the cut: %+v, %v", d, err)
	}
	proxy.Cut()
	for range 3 {
		d, err := l.Allow(t.Context(), "k", perSecond, 1, now)
		if code := keyward.ErrorCode(err); code != keyward.EUNAVAILABLE || d.Allowed {
			t.Fatalf("Redis cut: %+v, %v (code %q); want EUNAVAILABLE and not allowed", d, err, code)
		}
		ds, ok, err := l.AllowAll(t.Context(), "k", []keyward.RateLimit{perSecond}, 1, now, nil)
		if code := keyward.ErrorCode(err); code != keyward.EUNAVAILABLE || ok || len(ds) != 0 {
			t.Fatalf("Redis cut: AllowAll = %v, %v, %v (code %q); want EUNAVAILABLE", ds, ok, err, code)
		}
	}
	proxy.Restore()
	if d, err := l.Allow(t.Context(), "k", perSecond, 1, now); err != nil || !d.Allowed || d.Remaining != 8 {
		t.Fatalf("after the restore: %+v, %v; want allowed with 8 left", d, err)
	}
}

// TestTwoInstances: two limiters on separate connections, standing for two
// keyward instances with the same clock, admit exactly the limit between
// them.
func TestTwoInstances(t *testing.T) {
	c1, c2 := client(t, ""), client(t, "")
	prefix := fmt.Sprintf("keyward:test:rl:%x:", rand.Uint64())
	l1, _ := redislimit.New(c1, prefix)
	l2, _ := redislimit.New(c2, prefix)
	hundred := keyward.RateLimit{Name: "hundred", Limit: 100, Window: keyward.Duration(time.Minute)}
	var admitted atomic.Int64
	done := make(chan struct{})
	for _, l := range []*redislimit.Limiter{l1, l2} {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 150 {
				d, err := l.Allow(t.Context(), "k", hundred, 1, ratelimittest.Epoch)
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					admitted.Add(1)
				}
			}
		}()
	}
	<-done
	<-done
	c1.Del(t.Context(), prefix+"{k}:hundred")
	if n := admitted.Load(); n != 100 {
		t.Errorf("two instances admitted %d, want 100", n)
	}
}

func BenchmarkLimiter(b *testing.B) {
	c := client(b, "")
	l := newLimiter(b, c)
	// Never refuses within a run, at the finest interval a limit may have
	// (one per 100µs: 36,000,000 an hour).
	big := keyward.RateLimit{Name: "big", Limit: 30_000_000, Window: keyward.Duration(time.Hour)}
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("key_%04d", i)
	}
	now := ratelimittest.Epoch
	b.Run("serial", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := l.Allow(b.Context(), keys[i&1023], big, 1, now); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(16)
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			i := int(n.Add(1)) * 64
			for pb.Next() {
				if _, err := l.Allow(b.Context(), keys[i&1023], big, 1, now); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
	})
}
