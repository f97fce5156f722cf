package verify_test

import (
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/credits"
	"github.com/keyward/keyward/ratelimit/redislimit"
	"github.com/keyward/keyward/verify"
	goredis "github.com/redis/go-redis/v9"
)

func limit(name string, n int64, window time.Duration) keyward.RateLimit {
	return keyward.RateLimit{Name: name, Limit: n, Window: keyward.Duration(window)}
}

// call verifies raw with named limits and a cost.
func (e *env) call(raw string, limits []string, cost int64) verify.Result {
	return e.engine.Verify(e.ctx, verify.Request{Key: raw, Limits: limits, Cost: cost})
}

// step is one verification of a rate limit test and what it must answer:
// the decision and, per limit reported (in order), "name:remaining" with a
// "!" after the name for a limit that refused.
type step struct {
	advance time.Duration
	key     string // a name of the test's keys
	limits  []string
	manual  []string // Request.ManualLimits
	cost    int64
	want    keyward.Decision
	report  []string
}

func TestRateLimits(t *testing.T) {
	sec := limit("sec", 2, time.Second)
	minute := limit("min", 3, time.Minute)
	ten := limit("ten", 10, time.Minute)
	manualMin := minute
	manualMin.Manual = true
	for _, tc := range []struct {
		name     string
		defaults []keyward.RateLimit // the account's
		keys     map[string][]keyward.RateLimit
		steps    []step
	}{
		{"enforced and refilled by the clock", nil, map[string][]keyward.RateLimit{"k": {sec}}, []step{
			{key: "k", want: keyward.DecisionValid, report: []string{"sec:1"}},
			{key: "k", want: keyward.DecisionValid, report: []string{"sec:0"}},
			{key: "k", want: keyward.DecisionRateLimited, report: []string{"sec!:0"}},
			{advance: 499 * time.Millisecond, key: "k", want: keyward.DecisionRateLimited, report: []string{"sec!:0"}},
			{advance: time.Millisecond, key: "k", want: keyward.DecisionValid, report: []string{"sec:0"}},
			{advance: 2 * time.Second, key: "k", want: keyward.DecisionValid, report: []string{"sec:1"}},
		}},
		{"named limits; unknown names ignored", nil, map[string][]keyward.RateLimit{"k": {sec, minute}}, []step{
			{key: "k", limits: []string{"sec"}, want: keyward.DecisionValid, report: []string{"sec:1"}},
			{key: "k", limits: []string{"sec"}, want: keyward.DecisionValid, report: []string{"sec:0"}},
			{key: "k", limits: []string{"sec"}, want: keyward.DecisionRateLimited, report: []string{"sec!:0"}},
			// The sec calls did not count against min.
			{key: "k", limits: []string{"min", "nope"}, want: keyward.DecisionValid, report: []string{"min:2"}},
			{key: "k", limits: []string{"nope"}, want: keyward.DecisionValid},
			// All of them: sec refuses, min admits but is not spent.
			{key: "k", want: keyward.DecisionRateLimited, report: []string{"sec!:0", "min:2"}},
			{advance: time.Second, key: "k", want: keyward.DecisionValid, report: []string{"sec:1", "min:1"}},
		}},
		{"manual limits count only when named", nil, map[string][]keyward.RateLimit{"k": {sec, manualMin}}, []step{
			{key: "k", want: keyward.DecisionValid, report: []string{"sec:1"}},
			// Named as manual: the automatic limit and it.
			{key: "k", manual: []string{"min"}, want: keyward.DecisionValid, report: []string{"sec:0", "min:2"}},
			// The automatic limit refuses: min is not spent.
			{key: "k", manual: []string{"min"}, want: keyward.DecisionRateLimited, report: []string{"sec!:0", "min:2"}},
			// Named in Limits: it alone, as for any limit.
			{key: "k", limits: []string{"min"}, want: keyward.DecisionValid, report: []string{"min:1"}},
			{key: "k", limits: []string{"min"}, manual: []string{"sec", "nope"}, want: keyward.DecisionRateLimited, report: []string{"sec!:0", "min:1"}},
			// Without names: never the manual limit, however spent.
			{key: "k", limits: []string{"min"}, want: keyward.DecisionValid, report: []string{"min:0"}},
			{advance: time.Second, key: "k", want: keyward.DecisionValid, report: []string{"sec:1"}},
			{key: "k", manual: []string{"min"}, want: keyward.DecisionRateLimited, report: []string{"sec:1", "min!:0"}},
		}},
		{"cost", nil, map[string][]keyward.RateLimit{"k": {ten}}, []step{
			{key: "k", cost: 4, want: keyward.DecisionValid, report: []string{"ten:6"}},
			{key: "k", cost: 4, want: keyward.DecisionValid, report: []string{"ten:2"}},
			{key: "k", cost: 4, want: keyward.DecisionRateLimited, report: []string{"ten!:2"}},
			{key: "k", cost: 0, want: keyward.DecisionValid, report: []string{"ten:1"}}, // 0 means 1
			// More than the limit can ever admit: refused, not an error.
			{advance: time.Hour, key: "k", cost: 11, want: keyward.DecisionRateLimited, report: []string{"ten!:0"}},
			{key: "k", cost: 10, want: keyward.DecisionValid, report: []string{"ten:0"}},
		}},
		{"account defaults apply to keys without limits, per key", []keyward.RateLimit{limit("acct", 1, time.Minute)},
			map[string][]keyward.RateLimit{"own": {sec}, "a": nil, "b": nil}, []step{
				{key: "a", want: keyward.DecisionValid, report: []string{"acct:0"}},
				{key: "a", want: keyward.DecisionRateLimited, report: []string{"acct!:0"}},
				{key: "b", want: keyward.DecisionValid, report: []string{"acct:0"}},
				{key: "own", want: keyward.DecisionValid, report: []string{"sec:1"}},
				{key: "own", want: keyward.DecisionValid, report: []string{"sec:0"}},
				{key: "own", limits: []string{"acct"}, want: keyward.DecisionValid},
			}},
		{"no limits", nil, map[string][]keyward.RateLimit{"k": nil}, []step{
			{key: "k", cost: keyward.MaxVerificationCost, want: keyward.DecisionValid},
			{key: "k", cost: keyward.MaxVerificationCost, want: keyward.DecisionValid},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			if tc.defaults != nil {
				if _, err := e.store.UpdateAccount(e.ctx, keyward.Change{}, e.acct.ID, func(a *keyward.Account) error {
					a.RateLimits = tc.defaults
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			}
			secrets := map[string]string{}
			for name, limits := range tc.keys {
				secrets[name] = e.key(keyward.Key{RateLimits: limits}).Secret
			}
			for i, s := range tc.steps {
				e.clock.Advance(s.advance)
				res := e.engine.Verify(e.ctx, verify.Request{Key: secrets[s.key], Limits: s.limits, ManualLimits: s.manual, Cost: s.cost})
				var got []string
				for _, d := range res.RateLimits() {
					mark := ""
					if !d.Allowed {
						mark = "!"
						if d.RetryAfter <= 0 {
							t.Errorf("step %d: %s refused with no RetryAfter: %+v", i, d.Limit.Name, d)
						}
					}
					got = append(got, d.Limit.Name+mark+":"+strconv.FormatInt(d.Remaining, 10))
				}
				if res.Decision != s.want || !slices.Equal(got, s.report) {
					t.Fatalf("step %d (%s, limits %v, manual %v, cost %d): %s %v, want %s %v", i, s.key, s.limits, s.manual, s.cost, res.Decision, got, s.want, s.report)
				}
				vr := res.VerifyResult()
				if len(vr.RateLimits) != len(got) || vr.Valid != (s.want == keyward.DecisionValid) {
					t.Fatalf("step %d: VerifyResult %+v does not match %v", i, vr, got)
				}
			}
		})
	}
}

// creditsOf returns the key's credits as the store holds them.
func (e *env) creditsOf(id string) int64 {
	e.t.Helper()
	k, err := e.store.Key(e.ctx, id)
	if err != nil || k.Credits == nil {
		e.t.Fatalf("key %s: %v, credits %v", id, err, k)
	}
	return k.Credits.Remaining
}

func TestCredits(t *testing.T) {
	e := newEnv(t, func(c *verify.Config) { c.Credits = credits.NewStoreLedger(c.Store.(keyward.Store)) })
	now := e.clock.Now()
	k := e.key(keyward.Key{
		RateLimits: []keyward.RateLimit{limit("min", 6, time.Minute)},
		Credits: &keyward.Credits{Remaining: 5, RefilledAt: now,
			Refill: &keyward.CreditRefill{Amount: 4, Interval: keyward.Duration(time.Hour)}},
	})
	for i, s := range []struct {
		advance time.Duration
		cost    int64
		want    keyward.Decision
		// remaining is the result's CreditsRemaining, -1 for none; stored
		// is what the store then holds.
		remaining, stored int64
	}{
		{0, 2, keyward.DecisionValid, 3, 3},
		{0, 2, keyward.DecisionValid, 1, 1},
		// Too few credits: refused, nothing spent (but the limit counted).
		{0, 2, keyward.DecisionUsageExceeded, 1, 1},
		// The limit is spent (6 of 6): rate limited, no credits spent,
		// none reported.
		{0, 1, keyward.DecisionRateLimited, -1, 1},
		{time.Minute, 1, keyward.DecisionValid, 0, 0},
		{0, 1, keyward.DecisionUsageExceeded, 0, 0},
		// The refill is due an hour after the credits were set.
		{time.Hour - time.Minute - time.Nanosecond, 1, keyward.DecisionUsageExceeded, 0, 0},
		{time.Nanosecond, 3, keyward.DecisionValid, 1, 1},
	} {
		e.clock.Advance(s.advance)
		res := e.call(k.Secret, nil, s.cost)
		got := int64(-1)
		if res.HasCredits {
			got = res.CreditsRemaining
		}
		if res.Decision != s.want || got != s.remaining {
			t.Fatalf("step %d: %s with %d credits left, want %s with %d", i, res.Decision, got, s.want, s.remaining)
		}
		if stored := e.creditsOf(k.ID); stored != s.stored {
			t.Fatalf("step %d: the store holds %d credits, want %d", i, stored, s.stored)
		}
		vr := res.VerifyResult()
		if (vr.CreditsRemaining == nil) != (s.remaining < 0) || vr.CreditsRemaining != nil && *vr.CreditsRemaining != s.remaining {
			t.Fatalf("step %d: VerifyResult.CreditsRemaining = %v, want %d", i, vr.CreditsRemaining, s.remaining)
		}
	}
}

// TestCreditsConcurrent: concurrent verifications never spend more than the
// key has.
func TestCreditsConcurrent(t *testing.T) {
	e := newEnv(t, func(c *verify.Config) { c.Credits = credits.NewStoreLedger(c.Store.(keyward.Store)) })
	k := e.key(keyward.Key{Credits: &keyward.Credits{Remaining: 50, RefilledAt: e.clock.Now()}})
	var mu sync.Mutex
	counts := map[keyward.Decision]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 10 {
				d := e.call(k.Secret, nil, 1).Decision
				mu.Lock()
				counts[d]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if counts[keyward.DecisionValid] != 50 || counts[keyward.DecisionUsageExceeded] != 30 {
		t.Errorf("80 calls on 50 credits: %v, want 50 VALID and 30 USAGE_EXCEEDED", counts)
	}
}

// TestCreditsWithoutLedger: a key with credits fails closed when the engine
// has no ledger; other keys are not affected.
func TestCreditsWithoutLedger(t *testing.T) {
	e := newEnv(t, nil)
	metered := e.key(keyward.Key{
		RateLimits: []keyward.RateLimit{limit("min", 100, time.Minute)},
		Credits:    &keyward.Credits{Remaining: 5, RefilledAt: e.clock.Now()},
	})
	plain := e.key(keyward.Key{})
	for range 2 {
		if res := e.want(metered.Secret, keyward.DecisionUnavailable); len(res.RateLimits()) != 0 || res.HasCredits {
			t.Errorf("UNAVAILABLE with limits %v, credits %v", res.RateLimits(), res.HasCredits)
		}
		e.want(plain.Secret, keyward.DecisionValid)
	}
	if n := e.creditsOf(metered.ID); n != 5 {
		t.Errorf("%d credits left, want 5", n)
	}
}

// TestLimiterDown: a limiter that cannot decide makes keys with limits
// UNAVAILABLE (never VALID) and leaves other keys alone.
func TestLimiterDown(t *testing.T) {
	rc := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
	rc.Close() // every command now fails: Redis is "down"
	l, err := redislimit.New(rc, "")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *verify.Config) { c.Limiter = l })
	limited := e.key(keyward.Key{RateLimits: []keyward.RateLimit{limit("min", 100, time.Minute)}})
	plain := e.key(keyward.Key{})
	res := e.want(limited.Secret, keyward.DecisionUnavailable)
	if res.KeyID() != limited.ID || len(res.RateLimits()) != 0 {
		t.Errorf("result %+v: want the key and no limits", res)
	}
	e.want(plain.Secret, keyward.DecisionValid)
}

func TestNewRequest(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   keyward.VerifyRequest
		ok   bool
	}{
		{"zero cost", keyward.VerifyRequest{Key: "k"}, true},
		{"max cost", keyward.VerifyRequest{Key: "k", Cost: keyward.MaxVerificationCost, IP: "2001:db8::1"}, true},
		{"negative cost", keyward.VerifyRequest{Key: "k", Cost: -1}, false},
		{"cost over the max", keyward.VerifyRequest{Key: "k", Cost: keyward.MaxVerificationCost + 1}, false},
		{"bad ip", keyward.VerifyRequest{Key: "k", IP: "10.0.0"}, false},
	} {
		req, err := verify.NewRequest(tc.in)
		if tc.ok != (err == nil) || !tc.ok && keyward.ErrorCode(err) != keyward.EINVALID {
			t.Errorf("%s: NewRequest error %v", tc.name, err)
		}
		if tc.ok && (req.Cost != tc.in.Cost || req.Key != tc.in.Key) {
			t.Errorf("%s: NewRequest = %+v", tc.name, req)
		}
	}
	e := newEnv(t, nil)
	k := e.key(keyward.Key{})
	if _, err := e.engine.VerifyKey(e.ctx, keyward.VerifyRequest{Key: k.Secret, Cost: -1}); keyward.ErrorCode(err) != keyward.EINVALID {
		t.Errorf("VerifyKey with cost -1: %v, want EINVALID", err)
	}
	// In process, a bad cost is a bug of the caller: never VALID.
	for _, cost := range []int64{-1, keyward.MaxVerificationCost + 1} {
		if res := e.call(k.Secret, nil, cost); res.Decision != keyward.DecisionUnavailable {
			t.Errorf("Verify with cost %d: %s, want UNAVAILABLE", cost, res.Decision)
		}
	}
}
