package verify_test

import (
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/verify"
)

// BenchmarkVerifySharedLimits is a cache hit of a key with a rate limit of
// its own (the single-level path) and of a key whose user also has one
// (AllowLevels over both, local engine).
func BenchmarkVerifySharedLimits(b *testing.B) {
	limits := []keyward.RateLimit{{Name: "per-hour", Limit: int64(time.Hour / keyward.MinRateLimitInterval), Window: keyward.Duration(time.Hour)}}
	for _, bc := range []struct {
		name   string
		shared bool
	}{{"key", false}, {"key+user", true}} {
		e := newEnv(b, func(c *verify.Config) { c.CacheTTL, c.Now = time.Hour, nil })
		var meter *keyward.Meter
		if bc.shared {
			meter = &keyward.Meter{ID: e.user.ID, Level: keyward.LevelUser, AccountID: e.acct.ID, RateLimits: limits}
		}
		secrets := make([]string, 10)
		now := e.clock.Now()
		for i := range secrets {
			s, err := apikey.Generate(apikey.PrefixUser)
			if err != nil {
				b.Fatal(err)
			}
			secrets[i] = s.Reveal()
			e.engine.KeyChanged(&keyward.Key{
				ID: apikey.NewID("key"), Hash: e.hasher.Hash(secrets[i]), PepperVersion: e.hasher.Current(),
				Start: apikey.Start(secrets[i]), Prefix: apikey.PrefixUser, Role: keyward.RoleUser,
				AccountID: e.acct.ID, UserID: e.user.ID, RateLimits: limits, UserMeter: meter, CreatedAt: now, UpdatedAt: now,
			})
		}
		b.Run(bc.name, func(b *testing.B) {
			before := e.lookups()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				res := e.engine.Verify(e.ctx, verify.Request{Key: secrets[i%len(secrets)]})
				if res.Decision != keyward.DecisionValid || len(res.RateLimits()) != map[bool]int{false: 1, true: 2}[bc.shared] {
					b.Fatalf("Decision = %s with %d limits", res.Decision, len(res.RateLimits()))
				}
			}
			e.wantLookups(before, 0)
		})
	}
}
