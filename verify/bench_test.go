package verify_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/permission"
	"github.com/keyward/keyward/tracing"
	"github.com/keyward/keyward/verify"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// benchKeys returns an engine whose cache holds n user keys, put there the
// way a mutation puts them (KeyChanged), and their secrets. Creating 100k
// keys through SQLite would only slow the benchmark down; the store is
// never asked (checked after each benchmark).
func benchKeys(b *testing.B, n int) (*env, []string) {
	return benchKeysWith(b, n, nil, nil, nil)
}

// benchKeysWith is benchKeys with rate limits on every key, the
// permissions perms (nil: memories:read and memories:write) and configure
// applied to the engine's config.
func benchKeysWith(b *testing.B, n int, limits []keyward.RateLimit, perms []string, configure func(*verify.Config)) (*env, []string) {
	if perms == nil {
		perms = []string{"memories:read", "memories:write"}
	}
	return benchKeysShaped(b, n, configure, func(k *keyward.Key) { k.Permissions, k.RateLimits = perms, limits })
}

// benchKeysShaped is benchKeys with shape applied to every key before it is
// cached, and configure to the engine's config.
func benchKeysShaped(b *testing.B, n int, configure func(*verify.Config), shape func(*keyward.Key)) (*env, []string) {
	// The real clock: the test clock's mutex would be measured too.
	e := newEnv(b, func(c *verify.Config) {
		c.CacheTTL = time.Hour
		c.Now = nil
		if configure != nil {
			configure(c)
		}
	})
	secrets := make([]string, n)
	now := e.clock.Now()
	for i := range secrets {
		s, err := apikey.Generate(apikey.PrefixUser)
		if err != nil {
			b.Fatal(err)
		}
		raw := s.Reveal()
		secrets[i] = raw
		k := &keyward.Key{
			ID: apikey.NewID("key"), Hash: e.hasher.Hash(raw), PepperVersion: e.hasher.Current(),
			Start: apikey.Start(raw), Prefix: apikey.PrefixUser, Role: keyward.RoleUser,
			AccountID: e.acct.ID, UserID: e.user.ID, CreatedAt: now, UpdatedAt: now,
		}
		shape(k)
		e.engine.KeyChanged(k)
		if i == 0 {
			e.want(raw, keyward.DecisionValid, k.EffectivePermissions()[0])
		}
	}
	return e, secrets
}

// BenchmarkHMACKey is the floor of a verification: one HMAC-SHA256 of a key
// with the current pepper.
func BenchmarkHMACKey(b *testing.B) {
	for _, n := range []int{10, 100_000} {
		e, secrets := benchKeys(b, n)
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			var sink keyward.KeyHash
			for i := 0; b.Loop(); i++ {
				sink = e.hasher.Hash(secrets[i%len(secrets)])
			}
			_ = sink
		})
	}
}

// BenchmarkVerifyCacheHit is a whole in-process verification of a cached
// key needing one permission, with metrics and usage recording; the target
// is within 3x BenchmarkHMACKey and no allocation, whatever the number of
// cached keys.
func BenchmarkVerifyCacheHit(b *testing.B) {
	for _, n := range []int{10, 100_000} {
		e, secrets := benchKeys(b, n)
		perms := []string{"memories:read"}
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			before := e.lookups()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				res := e.engine.Verify(e.ctx, verify.Request{Key: secrets[i%len(secrets)], Permissions: perms})
				if res.Decision != keyward.DecisionValid {
					b.Fatalf("Decision = %s", res.Decision)
				}
			}
			e.wantLookups(before, 0)
		})
		b.Run(fmt.Sprintf("keys=%d/parallel", n), func(b *testing.B) {
			before := e.lookups()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for i := 0; pb.Next(); i++ {
					res := e.engine.Verify(e.ctx, verify.Request{Key: secrets[i%len(secrets)], Permissions: perms})
					if res.Decision != keyward.DecisionValid {
						b.Errorf("Decision = %s", res.Decision)
						return
					}
				}
			})
			e.wantLookups(before, 0)
		})
	}
}

// discard is a signal sink that keeps nothing, so the benchmark measures
// the engine's side of signalling.
type discard struct{}

func (discard) Signal(keyward.Signal) {}

// BenchmarkVerifyCacheHitWith is BenchmarkVerifyCacheHit (10 keys) from a
// client address, as the gateway verifies: plain ("none"), with one rate
// limit on every key decided by the local limiter (a limit the benchmark
// does not reach), with a signal sink (counting uses, tracking networks: every
// call from one address, as most keys are used), and with both. The
// differences to "none" are what a rate limit and signals add to the hot
// path.
func BenchmarkVerifyCacheHitWith(b *testing.B) {
	// The largest limit an hour may hold (keyward.MinRateLimitInterval).
	limits := []keyward.RateLimit{{Name: "per-hour", Limit: int64(time.Hour / keyward.MinRateLimitInterval), Window: keyward.Duration(time.Hour)}}
	withSink := func(c *verify.Config) { c.Signals = discard{} }
	for _, bc := range []struct {
		name      string
		limits    []keyward.RateLimit
		configure func(*verify.Config)
	}{
		{"none", nil, nil},
		{"limit", limits, nil},
		{"sink", nil, withSink},
		{"limit+sink", limits, withSink},
	} {
		e, secrets := benchKeysWith(b, 10, bc.limits, nil, bc.configure)
		perms := []string{"memories:read"}
		ip := netip.MustParseAddr("192.0.2.1")
		b.Run(bc.name, func(b *testing.B) {
			before := e.lookups()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				res := e.engine.Verify(e.ctx, verify.Request{Key: secrets[i%len(secrets)], Permissions: perms, IP: ip})
				if res.Decision != keyward.DecisionValid {
					b.Fatalf("Decision = %s", res.Decision)
				}
			}
			e.wantLookups(before, 0)
		})
	}
}

// BenchmarkVerifyCacheHitTraced is BenchmarkVerifyCacheHit (10 keys) with
// tracing on at the default sampling (tracing.DefaultSampleRatio, 1%):
// one call in 100 runs inside a sampled request, so its verification span
// and event are recorded and batched to an exporter that drops them; the
// others run inside unsampled requests, as the rest of a service's traffic
// does. The requests' own spans are made beforehand: this is what tracing
// adds to the verification, not what the HTTP server's span costs.
func BenchmarkVerifyCacheHitTraced(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(dropExporter{}))
	b.Cleanup(func() { tp.Shutdown(context.Background()) })
	e, secrets := benchKeysWith(b, 10, nil, nil, func(c *verify.Config) { c.TracerProvider = tp })
	period := int(1 / tracing.DefaultSampleRatio)
	sampled, request := tracing.Tracer(tp).Start(e.ctx, "request")
	defer request.End()
	unsampled := trace.ContextWithSpanContext(e.ctx, request.SpanContext().WithTraceFlags(0))
	perms := []string{"memories:read"}
	b.Run("keys=10", func(b *testing.B) {
		before := e.lookups()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			ctx := unsampled
			if i%period == 0 {
				ctx = sampled
			}
			res := e.engine.Verify(ctx, verify.Request{Key: secrets[i%len(secrets)], Permissions: perms})
			if res.Decision != keyward.DecisionValid {
				b.Fatalf("Decision = %s", res.Decision)
			}
		}
		e.wantLookups(before, 0)
	})
}

// dropExporter exports spans nowhere.
type dropExporter struct{}

func (dropExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (dropExporter) Shutdown(context.Context) error                             { return nil }

// BenchmarkVerifyPermissions is BenchmarkVerifyCacheHit (10 keys) with
// keys holding 20 permissions: "list" asks for 5 of them as a plain list,
// exact permissions against exact ones (the check before wildcards and
// queries); "query" asks a parsed query of 5 terms of a key whose 20
// permissions include 4 wildcards, three terms held through one; "roles"
// asks the same query of a key holding those 20 permissions through 3 named
// roles and its own (the cache entry holds the union, prepared as the key
// is loaded), and "roles+require_role" also names one of its roles as
// require_role. The target is "query" within 10% of "list", and "roles"
// as fast as "query", with no allocation.
func BenchmarkVerifyPermissions(b *testing.B) {
	exact := make([]string, 20)
	for i := range exact {
		exact[i] = fmt.Sprintf("service%02d:read", i)
	}
	withWildcards := append([]string{"memories:*", "admin:*", "billing.*", "search:*:run"}, exact[4:]...)
	query, err := permission.Parse("service10:read AND (memories:read OR x:y) AND admin:keys.list AND service15:read AND search:docs:run")
	if err != nil {
		b.Fatal(err)
	}
	// withWildcards again, spread over the key's own list and 3 roles.
	own, roles := withWildcards[12:], []string{"ops", "reader", "search"}
	roleShape := func(k *keyward.Key) {
		k.Permissions, k.Roles, k.RolePermissions = own, roles, keyward.UnionPermissions(withWildcards[:4], withWildcards[4:12])
	}
	for _, bc := range []struct {
		name  string
		shape func(*keyward.Key)
		perms []string
		query *permission.Query
		role  keyward.Role
	}{
		{"list", func(k *keyward.Key) { k.Permissions = exact }, []string{"service10:read", "service03:read", "service17:read", "service15:read", "service06:read"}, nil, ""},
		{"query", func(k *keyward.Key) { k.Permissions = withWildcards }, nil, query, ""},
		{"roles", roleShape, nil, query, ""},
		{"roles+require_role", roleShape, nil, query, "search"},
	} {
		e, secrets := benchKeysShaped(b, 10, nil, bc.shape)
		b.Run(bc.name, func(b *testing.B) {
			before := e.lookups()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				res := e.engine.Verify(e.ctx, verify.Request{Key: secrets[i%len(secrets)], Permissions: bc.perms, Query: bc.query, Role: bc.role})
				if res.Decision != keyward.DecisionValid {
					b.Fatalf("Decision = %s", res.Decision)
				}
			}
			e.wantLookups(before, 0)
		})
	}
}
