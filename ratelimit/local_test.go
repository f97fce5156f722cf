package ratelimit_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/ratelimit"
	"github.com/keyward/keyward/ratelimit/ratelimittest"
)

func TestLocal(t *testing.T) {
	ratelimittest.Run(t, func(t *testing.T) ratelimit.Limiter {
		return ratelimit.NewLocal(ratelimit.LocalOptions{})
	})
}

var perSecond = keyward.RateLimit{Name: "per-second", Limit: 10, Window: keyward.Duration(time.Second)}

// TestLocalBounded: the number of buckets stays under MaxBuckets, full
// buckets go first, and the partly spent ones survive while there is room.
func TestLocalBounded(t *testing.T) {
	const max = 64 * 16 // 16 per shard
	l := ratelimit.NewLocal(ratelimit.LocalOptions{MaxBuckets: max})
	ctx := t.Context()
	now := ratelimittest.Epoch
	for i := range 10 * max {
		if _, err := l.Allow(ctx, fmt.Sprint("idle-", i), perSecond, 1, now); err != nil {
			t.Fatal(err)
		}
		if n := l.Len(); n > max {
			t.Fatalf("after %d keys: %d buckets, more than %d", i+1, n, max)
		}
	}
	// Spent buckets survive a stream of new keys, as long as the older
	// of those refill in time to make room. The idle buckets are full
	// again by now, so making room for the spent ones never picks one of
	// them (a random pick among 16 when a and c share a shard made this
	// test fail about once in 250 runs).
	now = now.Add(time.Second)
	day := keyward.RateLimit{Name: "day", Limit: 5, Window: keyward.Duration(24 * time.Hour)}
	spent := []string{"a", "b", "c"}
	for _, k := range spent {
		for range 5 {
			if d, _ := l.Allow(ctx, k, day, 1, now); !d.Allowed {
				t.Fatalf("%s denied", k)
			}
		}
	}
	for i := range 10 * max {
		now = now.Add(100 * time.Millisecond)
		l.Allow(ctx, fmt.Sprint("new-", i), perSecond, 1, now)
		if n := l.Len(); n > max {
			t.Fatalf("%d buckets, more than %d", n, max)
		}
	}
	for _, k := range spent {
		if d, _ := l.Allow(ctx, k, day, 1, now); d.Allowed {
			t.Errorf("%s: spent bucket was evicted: %+v", k, d)
		}
	}
}

func TestLocalNoAllocs(t *testing.T) {
	l := ratelimit.NewLocal(ratelimit.LocalOptions{})
	ctx := t.Context()
	limits := []keyward.RateLimit{perSecond, {Name: "day", Limit: 1000, Window: keyward.Duration(24 * time.Hour)}}
	dst := make([]ratelimit.Decision, 0, 2)
	now := ratelimittest.Epoch
	l.Allow(ctx, "k", perSecond, 1, now)
	l.AllowAll(ctx, "k", limits, 1, now, dst)
	if n := testing.AllocsPerRun(1000, func() {
		now = now.Add(time.Millisecond)
		l.Allow(ctx, "k", perSecond, 1, now)
		l.AllowAll(ctx, "k", limits, 1, now, dst[:0])
	}); n != 0 {
		t.Errorf("%v allocations per call on an existing bucket, want 0", n)
	}
}

func BenchmarkLocal(b *testing.B) {
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("key_%04d", i)
	}
	// Never refuses within a run, at the finest interval a limit may have
	// (one per 100µs: 36,000,000 an hour).
	big := keyward.RateLimit{Name: "big", Limit: 30_000_000, Window: keyward.Duration(time.Hour)}
	ctx := b.Context()
	now := ratelimittest.Epoch
	b.Run("serial", func(b *testing.B) {
		l := ratelimit.NewLocal(ratelimit.LocalOptions{})
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			l.Allow(ctx, keys[i&1023], big, 1, now)
			i++
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
	})
	b.Run("parallel", func(b *testing.B) {
		l := ratelimit.NewLocal(ratelimit.LocalOptions{})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				l.Allow(ctx, keys[i&1023], big, 1, now)
				i++
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
	})
	b.Run("parallel-one-key", func(b *testing.B) {
		l := ratelimit.NewLocal(ratelimit.LocalOptions{})
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				l.Allow(ctx, "hot", big, 1, now)
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
	})
}
