package client_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/client"
)

// clock is the injected time of a CachedVerifier.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// verify calls v and requires no error and the code want.
func verifyCode(t *testing.T, v keyward.KeyVerifier, r keyward.VerifyRequest, want keyward.Decision) *keyward.VerifyResult {
	t.Helper()
	res, err := v.VerifyKey(t.Context(), r)
	if err != nil {
		t.Fatalf("VerifyKey: %v", err)
	}
	if res.Code != want || res.Valid != want.Valid() {
		t.Fatalf("VerifyKey = %s (valid %t), want %s", res.Code, res.Valid, want)
	}
	return res
}

func wantCalls(t *testing.T, rt *countingTransport, want int) {
	t.Helper()
	if got := rt.n(); got != want {
		t.Errorf("remote verify calls = %d, want %d", got, want)
	}
}

func TestCachedVerifierHit(t *testing.T) {
	e := newEnv(t)
	k := e.userKey("notes:read", "notes:write")
	c, rt := e.verifier(e.root)
	v := client.NewCachedVerifier(c, client.CacheConfig{Now: newClock().Now})

	first := verifyCode(t, v, keyward.VerifyRequest{Key: k.Secret, Permissions: []string{"notes:read"}, Agent: "a1"}, keyward.DecisionValid)
	wantCalls(t, rt, 1)
	if first.KeyID != k.ID || first.Identity == nil || first.Identity.UserID != e.user.ID || first.Identity.Agent != "a1" {
		t.Errorf("first result = %+v identity %+v", first, first.Identity)
	}

	// Same key and permissions: from the cache, with this request's agent.
	second := verifyCode(t, v, keyward.VerifyRequest{Key: k.Secret, Permissions: []string{"notes:read"}, Agent: "a2"}, keyward.DecisionValid)
	wantCalls(t, rt, 1)
	if second.Identity.Agent != "a2" || first.Identity.Agent != "a1" || second.KeyID != k.ID {
		t.Errorf("agents: first %q second %q", first.Identity.Agent, second.Identity.Agent)
	}
	// Results are the caller's own: changing one leaves the cache alone.
	second.Permissions[0] = "changed"
	second.Identity.Permissions[0] = "changed"
	third := verifyCode(t, v, keyward.VerifyRequest{Key: k.Secret, Permissions: []string{"notes:read"}}, keyward.DecisionValid)
	if third.Permissions[0] == "changed" || third.Identity.Permissions[0] == "changed" || third.Identity.Agent != "" {
		t.Errorf("the cache shares its result: %+v %+v", third, third.Identity)
	}
	wantCalls(t, rt, 1)

	// Another permission set is another question; order and duplicates
	// of one set do not matter.
	both := []string{"notes:write", "notes:read", "notes:write"}
	verifyCode(t, v, keyward.VerifyRequest{Key: k.Secret, Permissions: both}, keyward.DecisionValid)
	wantCalls(t, rt, 2)
	verifyCode(t, v, keyward.VerifyRequest{Key: k.Secret, Permissions: []string{"notes:read", "notes:write"}}, keyward.DecisionValid)
	wantCalls(t, rt, 2)
	if both[0] != "notes:write" {
		t.Error("VerifyKey sorted the caller's permissions")
	}

	// A different client IP is another question too (IP rules).
	verifyCode(t, v, keyward.VerifyRequest{Key: k.Secret, Permissions: []string{"notes:read"}, IP: "192.0.2.1"}, keyward.DecisionValid)
	wantCalls(t, rt, 3)

	// A permission the key lacks: a refusal, cached as one.
	verifyCode(t, v, keyward.VerifyRequest{Key: k.Secret, Permissions: []string{"admin"}}, keyward.DecisionInsufficientPermissions)
	verifyCode(t, v, keyward.VerifyRequest{Key: k.Secret, Permissions: []string{"admin"}}, keyward.DecisionInsufficientPermissions)
	wantCalls(t, rt, 4)
}

func TestCachedVerifierTTL(t *testing.T) {
	e := newEnv(t)
	k := e.userKey()
	c, rt := e.verifier(e.root)
	clk := newClock()
	v := client.NewCachedVerifier(c, client.CacheConfig{TTL: time.Minute, NegativeTTL: 10 * time.Second, Now: clk.Now})
	r := keyward.VerifyRequest{Key: k.Secret}

	verifyCode(t, v, r, keyward.DecisionValid)
	// Revoked at keyward: the cache answers VALID until its entry expires.
	if _, err := e.svc.Keys.RevokeKey(e.rootCtx(), k.ID); err != nil {
		t.Fatal(err)
	}
	clk.advance(time.Minute - time.Nanosecond)
	verifyCode(t, v, r, keyward.DecisionValid)
	wantCalls(t, rt, 1)
	clk.advance(time.Nanosecond)
	verifyCode(t, v, r, keyward.DecisionRevoked)
	wantCalls(t, rt, 2)

	// The refusal is kept for NegativeTTL, which is shorter.
	clk.advance(10*time.Second - time.Nanosecond)
	verifyCode(t, v, r, keyward.DecisionRevoked)
	wantCalls(t, rt, 2)
	clk.advance(time.Nanosecond)
	verifyCode(t, v, r, keyward.DecisionRevoked)
	wantCalls(t, rt, 3)
}

func TestCachedVerifierKeyExpiryBoundsTTL(t *testing.T) {
	e := newEnv(t)
	clk := newClock()
	exp := clk.Now().Add(time.Hour).UTC().Truncate(time.Second)
	k := e.key(keyward.KeyCreate{AccountID: e.acct.ID, UserID: e.user.ID, Role: keyward.RoleUser, ExpiresAt: &exp})
	c, rt := e.verifier(e.root)
	v := client.NewCachedVerifier(c, client.CacheConfig{TTL: 24 * time.Hour, Now: clk.Now})
	r := keyward.VerifyRequest{Key: k.Secret}

	verifyCode(t, v, r, keyward.DecisionValid)
	clk.advance(exp.Sub(clk.Now()) - time.Second)
	verifyCode(t, v, r, keyward.DecisionValid)
	wantCalls(t, rt, 1)
	// At the key's expiry the entry is gone, whatever the TTL: keyward is
	// asked again (its own clock has not moved, so it still says VALID).
	clk.advance(time.Second)
	verifyCode(t, v, r, keyward.DecisionValid)
	wantCalls(t, rt, 2)
}

func TestCachedVerifierNegative(t *testing.T) {
	e := newEnv(t)
	good := e.userKey()
	c, rt := e.verifier(e.root)
	v := client.NewCachedVerifier(c, client.CacheConfig{MaxNegative: 2, Now: newClock().Now})

	unknown := e.userKey()
	if err := e.svc.Keys.DeleteKey(e.rootCtx(), unknown.ID); err != nil {
		t.Fatal(err)
	}
	bad := []string{unknown.Secret, "kw_user_not-a-key", "garbage"}
	verifyCode(t, v, keyward.VerifyRequest{Key: bad[0]}, keyward.DecisionNotFound)
	verifyCode(t, v, keyward.VerifyRequest{Key: bad[0]}, keyward.DecisionNotFound)
	wantCalls(t, rt, 1)
	verifyCode(t, v, keyward.VerifyRequest{Key: good.Secret}, keyward.DecisionValid)
	wantCalls(t, rt, 2)

	// The negative cache is bounded, and a flood of bad keys does not
	// evict the valid one.
	for _, k := range bad[1:] {
		verifyCode(t, v, keyward.VerifyRequest{Key: k}, keyward.DecisionMalformed)
	}
	wantCalls(t, rt, 4)
	if pos, neg := client.CacheLen(v); pos != 1 || neg != 2 {
		t.Errorf("cache holds %d valid, %d refusals; want 1, 2", pos, neg)
	}
	verifyCode(t, v, keyward.VerifyRequest{Key: good.Secret}, keyward.DecisionValid)
	wantCalls(t, rt, 4)

	// A negative TTL turns refusals off.
	off := client.NewCachedVerifier(c, client.CacheConfig{NegativeTTL: -1})
	verifyCode(t, off, keyward.VerifyRequest{Key: bad[0]}, keyward.DecisionNotFound)
	verifyCode(t, off, keyward.VerifyRequest{Key: bad[0]}, keyward.DecisionNotFound)
	wantCalls(t, rt, 6)
}

func TestCachedVerifierBounded(t *testing.T) {
	e := newEnv(t)
	c, _ := e.verifier(e.root)
	v := client.NewCachedVerifier(c, client.CacheConfig{MaxEntries: 2, Now: newClock().Now})
	for range 3 {
		verifyCode(t, v, keyward.VerifyRequest{Key: e.userKey().Secret}, keyward.DecisionValid)
	}
	if pos, _ := client.CacheLen(v); pos != 2 {
		t.Errorf("cache holds %d valid results, want at most 2", pos)
	}
}

// TestCachedVerifierCollapse: concurrent requests for one uncached key make
// one remote call, and every one of them gets the answer.
func TestCachedVerifierCollapse(t *testing.T) {
	e := newEnv(t)
	k := e.userKey("notes:read")
	c, rt := e.verifier(e.root)
	rt.gate = make(chan struct{})
	v := client.NewCachedVerifier(c, client.CacheConfig{Now: newClock().Now})

	const n = 32
	var joined sync.WaitGroup
	joined.Add(n)
	client.SetOnWait(v, joined.Done)

	results := make(chan *keyward.VerifyResult, n)
	errs := make(chan error, n)
	for i := range n {
		go func() {
			res, err := v.VerifyKey(context.Background(), keyward.VerifyRequest{
				Key: k.Secret, Permissions: []string{"notes:read"}, Agent: string(rune('a' + i%26)),
			})
			results <- res
			errs <- err
		}()
	}
	joined.Wait() // every request waits on the one call, held at the gate
	close(rt.gate)
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("VerifyKey: %v", err)
		}
		if res := <-results; !res.Valid || res.KeyID != k.ID {
			t.Errorf("result = %+v", res)
		}
	}
	wantCalls(t, rt, 1)
}

// TestCachedVerifierWaiterGivesUp: a request whose context ends stops
// waiting; the call goes on for the others and its answer is cached.
func TestCachedVerifierWaiterGivesUp(t *testing.T) {
	e := newEnv(t)
	k := e.userKey()
	c, rt := e.verifier(e.root)
	rt.gate = make(chan struct{})
	v := client.NewCachedVerifier(c, client.CacheConfig{Now: newClock().Now})
	var joined sync.WaitGroup
	joined.Add(2)
	client.SetOnWait(v, joined.Done)

	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() {
		_, err := v.VerifyKey(ctx, keyward.VerifyRequest{Key: k.Secret})
		gaveUp <- err
	}()
	stayed := make(chan error, 1)
	go func() {
		_, err := v.VerifyKey(context.Background(), keyward.VerifyRequest{Key: k.Secret})
		stayed <- err
	}()
	joined.Wait()
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) || keyward.ErrorCode(err) != keyward.EUNAVAILABLE {
		t.Errorf("canceled waiter: err = %v (code %s)", err, keyward.ErrorCode(err))
	}
	close(rt.gate)
	if err := <-stayed; err != nil {
		t.Errorf("other waiter: %v", err)
	}
	verifyCode(t, v, keyward.VerifyRequest{Key: k.Secret}, keyward.DecisionValid)
	wantCalls(t, rt, 1)
}

// TestCachedVerifierRemoteDown: while keyward cannot be reached every
// request is an error and asks again; nothing is cached until it answers.
func TestCachedVerifierRemoteDown(t *testing.T) {
	e := newEnv(t)
	k := e.userKey()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // down: nothing listens there

	rt := &countingTransport{next: http.DefaultTransport}
	c := client.New("http://"+addr, e.root)
	c.HTTPClient = &http.Client{Transport: rt}
	v := client.NewCachedVerifier(c, client.CacheConfig{Now: newClock().Now})
	for range 2 {
		res, err := v.VerifyKey(t.Context(), keyward.VerifyRequest{Key: k.Secret})
		if keyward.ErrorCode(err) != keyward.EUNAVAILABLE || res != nil {
			t.Fatalf("VerifyKey while down = %+v, %v; want an unavailable error", res, err)
		}
	}
	wantCalls(t, rt, 2)
	if pos, neg := client.CacheLen(v); pos+neg != 0 {
		t.Errorf("cache holds %d entries after errors", pos+neg)
	}

	// Up again, on the same address: answered, then cached.
	l, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	srv := &http.Server{Handler: e.handler}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	verifyCode(t, v, keyward.VerifyRequest{Key: k.Secret}, keyward.DecisionValid)
	verifyCode(t, v, keyward.VerifyRequest{Key: k.Secret}, keyward.DecisionValid)
	wantCalls(t, rt, 3)
}

// TestCachedVerifierRefusedVerifierKey: a verifier key that may not verify
// is an error (the service answers 503), not a refusal of the user's key,
// and it is not cached.
func TestCachedVerifierRefusedVerifierKey(t *testing.T) {
	e := newEnv(t)
	k := e.userKey()
	noVerify := e.userKey("notes:read")
	c, rt := e.verifier(keyward.Secret(noVerify.Secret))
	v := client.NewCachedVerifier(c, client.CacheConfig{Now: newClock().Now})
	for range 2 {
		_, err := v.VerifyKey(t.Context(), keyward.VerifyRequest{Key: k.Secret})
		if keyward.ErrorCode(err) != keyward.EFORBIDDEN {
			t.Fatalf("err = %v, want forbidden", err)
		}
	}
	wantCalls(t, rt, 2)
}

// TestCachedVerifierMetered: a key with rate limits or credits is never
// answered from the cache, so every request is counted by keyward, also
// when requests for it arrive together; other keys are still cached.
func TestCachedVerifierMetered(t *testing.T) {
	e := newEnv(t)
	limited := e.key(keyward.KeyCreate{AccountID: e.acct.ID, UserID: e.user.ID, Role: keyward.RoleUser,
		RateLimits: []keyward.RateLimit{{Name: "min", Limit: 3, Window: keyward.Duration(time.Minute)}}})
	metered := e.key(keyward.KeyCreate{AccountID: e.acct.ID, UserID: e.user.ID, Role: keyward.RoleUser,
		Credits: &keyward.Credits{Remaining: 2}})
	plain := e.userKey()
	c, rt := e.verifier(e.root)
	v := client.NewCachedVerifier(c, client.CacheConfig{Now: newClock().Now})

	for i, want := range []keyward.Decision{keyward.DecisionValid, keyward.DecisionValid, keyward.DecisionValid, keyward.DecisionRateLimited, keyward.DecisionRateLimited} {
		res := verifyCode(t, v, keyward.VerifyRequest{Key: limited.Secret}, want)
		if len(res.RateLimits) != 1 || res.RateLimits[0].Remaining != max(0, 2-int64(i)) {
			t.Errorf("call %d: limits %+v", i, res.RateLimits)
		}
	}
	wantCalls(t, rt, 5)
	for i, want := range []keyward.Decision{keyward.DecisionValid, keyward.DecisionValid, keyward.DecisionUsageExceeded} {
		res := verifyCode(t, v, keyward.VerifyRequest{Key: metered.Secret}, want)
		if res.CreditsRemaining == nil || *res.CreditsRemaining != max(0, 1-int64(i)) {
			t.Errorf("call %d: credits remaining %v", i, res.CreditsRemaining)
		}
	}
	wantCalls(t, rt, 8)
	verifyCode(t, v, keyward.VerifyRequest{Key: plain.Secret}, keyward.DecisionValid)
	verifyCode(t, v, keyward.VerifyRequest{Key: plain.Secret}, keyward.DecisionValid)
	wantCalls(t, rt, 9)

	// Named limits and the cost are part of the question: a call naming
	// a limit the key lacks counts against none and is cached, one
	// naming "min" is not.
	verifyCode(t, v, keyward.VerifyRequest{Key: limited.Secret, Limits: []string{"other"}}, keyward.DecisionValid)
	verifyCode(t, v, keyward.VerifyRequest{Key: limited.Secret, Limits: []string{"other"}}, keyward.DecisionValid)
	wantCalls(t, rt, 10)
	verifyCode(t, v, keyward.VerifyRequest{Key: limited.Secret, Limits: []string{"min"}}, keyward.DecisionRateLimited)
	wantCalls(t, rt, 11)
}

// TestCachedVerifierMeteredTogether: requests for a metered key that
// arrive together, before the verifier knows the key is metered, share
// the first call and then each make their own: all are counted.
func TestCachedVerifierMeteredTogether(t *testing.T) {
	e := newEnv(t)
	k := e.key(keyward.KeyCreate{AccountID: e.acct.ID, UserID: e.user.ID, Role: keyward.RoleUser,
		RateLimits: []keyward.RateLimit{{Name: "min", Limit: 3, Window: keyward.Duration(time.Minute)}}})
	c, rt := e.verifier(e.root)
	rt.gate = make(chan struct{})
	v := client.NewCachedVerifier(c, client.CacheConfig{Now: newClock().Now})

	const n = 8
	var joined sync.WaitGroup
	joined.Add(n)
	client.SetOnWait(v, joined.Done)
	codes := make(chan keyward.Decision, n)
	for range n {
		go func() {
			res, err := v.VerifyKey(context.Background(), keyward.VerifyRequest{Key: k.Secret})
			if err != nil {
				t.Errorf("VerifyKey: %v", err)
				codes <- ""
				return
			}
			codes <- res.Code
		}()
	}
	joined.Wait()
	close(rt.gate)
	count := map[keyward.Decision]int{}
	for range n {
		count[<-codes]++
	}
	if count[keyward.DecisionValid] != 3 || count[keyward.DecisionRateLimited] != n-3 {
		t.Errorf("codes %v, want 3 VALID and %d RATE_LIMITED", count, n-3)
	}
	wantCalls(t, rt, n)
}
