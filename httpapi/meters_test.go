package httpapi_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/credits/redisledger"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/ratelimit"
	"github.com/keyward/keyward/ratelimit/redislimit"
	"github.com/keyward/keyward/verify"
)

// sharedKeys creates n user keys of user u in account a, each with credits
// own of its own (none if 0).
func (e *env) sharedKeys(a *keyward.Account, u *keyward.User, n int, own int64) []*keyward.CreatedKey {
	e.t.Helper()
	keys := make([]*keyward.CreatedKey, n)
	for i := range keys {
		c := keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Role: keyward.RoleUser}
		if own > 0 {
			c.Credits = &keyward.Credits{Remaining: own}
		}
		keys[i] = e.mustKey(c)
	}
	return keys
}

// verifyAPI verifies secret through POST /v1/keys/verify as root.
func (e *env) verifyAPI(secret string) keyward.VerifyResult {
	e.t.Helper()
	r := e.do("POST", "/v1/keys/verify", e.root, fmt.Sprintf(`{"key":%q}`, secret))
	if r.status != http.StatusOK {
		e.t.Fatalf("verify: status %d, body %s", r.status, r.body)
	}
	var out keyward.VerifyResult
	r.decode(e.t, &out)
	return out
}

// ownCreditsSpent returns how many credits keys have spent of own each,
// read through GET /v1/keys/{id}/credits.
func (e *env) ownCreditsSpent(keys []*keyward.CreatedKey, own int64) int64 {
	e.t.Helper()
	var spent int64
	for _, k := range keys {
		r := e.do("GET", "/v1/keys/"+k.ID+"/credits", e.root, "")
		var c keyward.Credits
		r.decode(e.t, &c)
		spent += own - c.Remaining
	}
	return spent
}

// wantRefused fails unless r is the refusal code at level.
func wantRefused(t *testing.T, r keyward.VerifyResult, code keyward.Decision, level keyward.LimitLevel) {
	t.Helper()
	if r.Valid || r.Code != code || r.LimitLevel != level {
		t.Fatalf("verify = %v %s at level %q, want %s at level %q", r.Valid, r.Code, r.LimitLevel, code, level)
	}
}

// Three keys of one user with a user limit of 5 per minute: the sixth
// request across the keys is refused at the user's level and spends none
// of the keys' own credits; an account's limit binds the keys of all its
// users likewise.
func TestSharedLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.mustAccount("acme")
	ann, bob := e.mustUser(a.ID, "ann"), e.mustUser(a.ID, "bob")
	keys := e.sharedKeys(a, ann, 3, 100)
	userPath := "/v1/accounts/" + a.ID + "/users/" + ann.ID + "/limits"
	fivePerMinute := `{"rate_limits":[{"name":"per-minute","limit":5,"window":"1m"}]}`

	// Only root sets them; bad bodies are problems.
	if r := e.do("PUT", userPath, keyward.Secret(keys[0].Secret), fivePerMinute); r.status != http.StatusForbidden {
		t.Fatalf("a user setting its own limits: %d, want 403", r.status)
	}
	for body, code := range map[string]string{
		`{}`: keyward.EINVALID,
		`{"rate_limits":[{"name":"x","limit":0,"window":"1m"}]}`: keyward.EINVALID,
		`{"credits":{"remaining":-1}}`:                           keyward.EINVALID,
		`{"rate_limit":[]}`:                                      keyward.EINVALID,
	} {
		if r := e.do("PUT", userPath, e.root, body); r.status != http.StatusBadRequest || r.problem(t).Code != code {
			t.Fatalf("PUT %s: %d %s, want 400 %s", body, r.status, r.body, code)
		}
	}
	if r := e.do("PUT", "/v1/accounts/"+a.ID+"/users/usr_nothere/limits", e.root, fivePerMinute); r.status != http.StatusNotFound {
		t.Fatalf("PUT for an unknown user: %d, want 404", r.status)
	}
	if r := e.do("GET", userPath, e.root, ""); r.status != http.StatusNotFound {
		t.Fatalf("GET before any set: %d, want 404", r.status)
	}

	// The keys are cached before the limit is set: it applies at once.
	if r := e.verifyAPI(keys[0].Secret); !r.Valid || r.LimitLevel != "" {
		t.Fatalf("before the user limit: %+v", r)
	}
	if r := e.do("PUT", userPath, e.root, fivePerMinute); r.status != http.StatusOK {
		t.Fatalf("PUT user limits: %d %s", r.status, r.body)
	}
	for i := range 5 {
		r := e.verifyAPI(keys[i%3].Secret)
		if !r.Valid {
			t.Fatalf("request %d across the user's keys: %s at %q", i+1, r.Code, r.LimitLevel)
		}
		if len(r.RateLimits) != 1 || r.RateLimits[0].Level != keyward.LevelUser || r.RateLimits[0].Remaining != int64(4-i) {
			t.Fatalf("request %d: rate limits %+v, want the user's with %d left", i+1, r.RateLimits, 4-i)
		}
	}
	for _, k := range keys {
		r := e.verifyAPI(k.Secret)
		wantRefused(t, r, keyward.DecisionRateLimited, keyward.LevelUser)
		if r.CreditsRemaining != nil {
			t.Fatalf("a rate-limited request reached the credits: %d", *r.CreditsRemaining)
		}
	}
	// One request before the limit and five within it: the refused ones
	// spent nothing of the keys' own credits.
	if spent := e.ownCreditsSpent(keys, 100); spent != 6 {
		t.Fatalf("the keys spent %d of their own credits, want 6", spent)
	}
	// Bob, in the same account, is not bound by Ann's limit.
	bobKey := e.sharedKeys(a, bob, 1, 0)[0]
	if r := e.verifyAPI(bobKey.Secret); !r.Valid {
		t.Fatalf("another user's key: %s", r.Code)
	}

	// The Go client reads them, names the level, and the user reads its own.
	m, err := e.client(keyward.Secret(keys[0].Secret)).Meter(t.Context(), a.ID, ann.ID)
	if err != nil || m.Level != keyward.LevelUser || len(m.RateLimits) != 1 || m.RateLimits[0].Limit != 5 {
		t.Fatalf("the user reading its limits: %+v, %v", m, err)
	}
	if res, err := e.client(e.root).VerifyKey(t.Context(), keyward.VerifyRequest{Key: keys[1].Secret}); err != nil || res.LimitLevel != keyward.LevelUser {
		t.Fatalf("client VerifyKey = %+v, %v; want refused at the user level", res, err)
	}

	// Removed: the keys verify again.
	if r := e.do("DELETE", userPath, e.root, ""); r.status != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", r.status, r.body)
	}
	if r := e.do("DELETE", userPath, e.root, ""); r.status != http.StatusNotFound {
		t.Fatalf("DELETE again: %d, want 404", r.status)
	}
	if r := e.verifyAPI(keys[2].Secret); !r.Valid {
		t.Fatalf("after removing the user's limit: %s", r.Code)
	}

	// An account's limit of 4 binds Ann's and Bob's keys together.
	if err := e.client(e.root).DeleteMeter(t.Context(), a.ID, ""); keyward.ErrorCode(err) != keyward.ENOTFOUND {
		t.Fatalf("removing absent account limits: %v, want ENOTFOUND", err)
	}
	set, err := e.client(e.root).SetMeter(t.Context(), a.ID, "", keyward.MeterSet{RateLimits: []keyward.RateLimit{{Name: "per-minute", Limit: 4, Window: keyward.Duration(time.Minute)}}})
	if err != nil || set.Level != keyward.LevelAccount || set.ID != a.ID {
		t.Fatalf("SetMeter of the account = %+v, %v", set, err)
	}
	before := e.ownCreditsSpent(keys, 100)
	for i, k := range []*keyward.CreatedKey{keys[0], bobKey, keys[1], bobKey} {
		if r := e.verifyAPI(k.Secret); !r.Valid {
			t.Fatalf("request %d within the account's limit: %s at %q", i+1, r.Code, r.LimitLevel)
		}
	}
	wantRefused(t, e.verifyAPI(keys[2].Secret), keyward.DecisionRateLimited, keyward.LevelAccount)
	wantRefused(t, e.verifyAPI(bobKey.Secret), keyward.DecisionRateLimited, keyward.LevelAccount)
	if spent := e.ownCreditsSpent(keys, 100) - before; spent != 2 {
		t.Fatalf("Ann's keys spent %d of their own credits under the account's limit, want 2", spent)
	}
	if r := e.do("GET", "/v1/accounts/"+a.ID+"/limits", keyward.Secret(keys[0].Secret), ""); r.status != http.StatusForbidden {
		t.Fatalf("a user reading its account's limits: %d, want 403", r.status)
	}
}

// Shared credits: a user's 3 credits across three keys with credits of
// their own; the fourth request is refused at the user's level, and no
// level is debited for it.
func TestSharedCredits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.mustAccount("acme")
	u := e.mustUser(a.ID, "ann")
	keys := e.sharedKeys(a, u, 3, 10)
	r := e.do("PUT", "/v1/accounts/"+a.ID+"/users/"+u.ID+"/limits", e.root, `{"credits":{"remaining":3}}`)
	if r.status != http.StatusOK {
		t.Fatalf("PUT user credits: %d %s", r.status, r.body)
	}
	if r := e.do("PUT", "/v1/accounts/"+a.ID+"/limits", e.root, `{"credits":{"remaining":100,"refill":{"amount":100,"interval":"24h"}}}`); r.status != http.StatusOK {
		t.Fatalf("PUT account credits: %d %s", r.status, r.body)
	}
	for i := range 3 {
		res := e.verifyAPI(keys[i].Secret)
		if !res.Valid || res.CreditsRemaining == nil || *res.CreditsRemaining != int64(2-i) {
			t.Fatalf("request %d: %+v, want valid with %d left (the user's, the least)", i+1, res, 2-i)
		}
	}
	wantRefused(t, e.verifyAPI(keys[0].Secret), keyward.DecisionUsageExceeded, keyward.LevelUser)
	if spent := e.ownCreditsSpent(keys, 10); spent != 3 {
		t.Fatalf("the keys spent %d of their own credits, want 3", spent)
	}
	var account keyward.Meter
	e.do("GET", "/v1/accounts/"+a.ID+"/limits", e.root, "").decode(t, &account)
	if account.Credits == nil || account.Credits.Remaining != 97 {
		t.Fatalf("the account's credits: %+v, want 97 left", account.Credits)
	}
	// A key's own credits refusing leaves the shared ones alone.
	e.do("PUT", "/v1/accounts/"+a.ID+"/users/"+u.ID+"/limits", e.root, `{"credits":{"remaining":50}}`)
	e.do("PUT", "/v1/keys/"+keys[1].ID+"/credits", e.root, `{"remaining":0}`)
	wantRefused(t, e.verifyAPI(keys[1].Secret), keyward.DecisionUsageExceeded, keyward.LevelKey)
	var user keyward.Meter
	e.do("GET", "/v1/accounts/"+a.ID+"/users/"+u.ID+"/limits", e.root, "").decode(t, &user)
	if user.Credits == nil || user.Credits.Remaining != 50 {
		t.Fatalf("the user's credits after the key refused: %+v, want 50", user.Credits)
	}
}

// Two engines sharing Redis (two instances): a user's limit and an
// account's credits hold across them.
func TestSharedLimitsAcrossInstances(t *testing.T) {
	t.Parallel()
	rc := keywardtest.NewRedisClient(t, "")
	if err := rc.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("Redis at KEYWARD_TEST_REDIS_URL: %v", err)
	}
	prefix := fmt.Sprintf("keyward:test:%x:", rand.Uint64())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if keys, _ := rc.Keys(ctx, prefix+"*").Result(); len(keys) > 0 {
			rc.Del(ctx, keys...)
		}
	})
	limiter := func() ratelimit.Limiter {
		l, err := redislimit.New(rc, prefix+"rl:")
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	ledger := func(s keyward.Store) keyward.CreditLedger {
		l, err := redisledger.New(rc, s, redisledger.Options{Prefix: prefix + "cr:"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	store := keywardtest.NewSQLiteStore(t)
	e := newEnvWith(t, envOptions{store: store, limiter: limiter(), ledger: ledger})
	other, err := verify.New(verify.Config{Store: store, Hasher: e.hasher, Limiter: limiter(), Credits: ledger(store)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close(context.Background()) })
	verifyOther := func(secret string) keyward.VerifyResult {
		t.Helper()
		r, err := other.VerifyKey(t.Context(), keyward.VerifyRequest{Key: secret})
		if err != nil {
			t.Fatal(err)
		}
		return *r
	}

	a := e.mustAccount("acme")
	u := e.mustUser(a.ID, "ann")
	keys := e.sharedKeys(a, u, 3, 0)
	if _, err := e.client(e.root).SetMeter(t.Context(), a.ID, u.ID, keyward.MeterSet{RateLimits: []keyward.RateLimit{{Name: "per-hour", Limit: 10, Window: keyward.Duration(time.Hour)}}}); err != nil {
		t.Fatal(err)
	}
	count := func(n int) (admitted int, refused map[keyward.LimitLevel]int) {
		refused = map[keyward.LimitLevel]int{}
		for i := range n {
			var r keyward.VerifyResult
			if i%2 == 0 {
				r = e.verifyAPI(keys[i%3].Secret)
			} else {
				r = verifyOther(keys[i%3].Secret)
			}
			if r.Valid {
				admitted++
			} else {
				refused[r.LimitLevel]++
			}
		}
		return admitted, refused
	}
	if admitted, refused := count(30); admitted != 10 || refused[keyward.LevelUser] != 20 {
		t.Fatalf("30 requests over two instances, user limit 10: admitted %d, refused %v", admitted, refused)
	}

	// The account's 6 credits, the user's limit removed. The other
	// instance hears of the change as its invalidation bus would tell it.
	if err := e.client(e.root).DeleteMeter(t.Context(), a.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client(e.root).SetMeter(t.Context(), a.ID, "", keyward.MeterSet{Credits: &keyward.Credits{Remaining: 6}}); err != nil {
		t.Fatal(err)
	}
	other.InvalidateAccount(a.ID)
	if admitted, refused := count(20); admitted != 6 || refused[keyward.LevelAccount] != 14 {
		t.Fatalf("20 requests over two instances, account credits 6: admitted %d, refused %v", admitted, refused)
	}
}
