package middleware_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/middleware"
)

// TestRateLimits: in process and through a remote keyward (the cached
// client, which must not answer a key with limits from its cache), a key's
// requests carry the RateLimit fields, and beyond its limit are refused
// with 429 and Retry-After.
func TestRateLimits(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		v    keyward.KeyVerifier
	}{
		{"in process", e.engine},
		{"remote", e.remote(e.root)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := e.key(keyward.KeyCreate{AccountID: e.acct.ID, UserID: e.user.ID, Role: keyward.RoleUser,
				RateLimits: []keyward.RateLimit{{Name: "min", Limit: 2, Window: keyward.Duration(time.Minute)}}})
			ts := e.protect(tc.v, whoami())
			for i, want := range []string{`"min";r=1;t=`, `"min";r=0;t=`} {
				r := get(t, ts, "/x", "X-API-Key", k.Secret)
				r.seen(t)
				if r.header.Get("RateLimit-Policy") != `"min";q=2;w=60` || !strings.HasPrefix(r.header.Get("RateLimit"), want) {
					t.Errorf("request %d: headers %v, want RateLimit %s...", i, r.header, want)
				}
			}
			r := get(t, ts, "/x", "X-API-Key", k.Secret)
			r.problem(t, http.StatusTooManyRequests, keyward.ERATELIMITED)
			if r.header.Get("Retry-After") == "" || r.header.Get("RateLimit-Policy") != `"min";q=2;w=60` {
				t.Errorf("429 headers %v", r.header)
			}
			// A key without limits: no fields.
			plain := e.userKey()
			if r := get(t, ts, "/x", "X-API-Key", plain.Secret); r.header.Get("RateLimit") != "" || r.header.Get("RateLimit-Policy") != "" {
				t.Errorf("a key without limits got %v", r.header)
			}
		})
	}
}

// TestUsageExceeded: credits spent answer 429 with the limits' state and
// no Retry-After (when credits refill is not known), and the ErrorWriter
// sees the limits.
func TestUsageExceeded(t *testing.T) {
	status := keyward.RateLimitStatus{Name: "min", Limit: 10, Window: keyward.Duration(time.Minute), Allowed: true, Remaining: 9, ResetMS: 6000}
	res := &keyward.VerifyResult{Code: keyward.DecisionUsageExceeded, KeyID: "key_1", RateLimits: []keyward.RateLimitStatus{status}, CreditsRemaining: new(int64)}
	var denial *middleware.Denial
	write := func(w http.ResponseWriter, r *http.Request, d *middleware.Denial) {
		denial = d
		middleware.WriteProblem(w, r, d)
	}
	h := middleware.New(brokenVerifier{res}, middleware.WithLogger(slog.New(slog.DiscardHandler)), middleware.WithErrorWriter(write))(whoami())
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("X-API-Key", "kw_user_x")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "" ||
		w.Header().Get("RateLimit") != `"min";r=9;t=6` || w.Header().Get("RateLimit-Policy") != `"min";q=10;w=60` {
		t.Errorf("USAGE_EXCEEDED: %d %v", w.Code, w.Header())
	}
	if denial == nil || len(denial.RateLimits) != 1 || denial.RateLimits[0] != status {
		t.Errorf("denial = %+v", denial)
	}
}

// TestLimitLevel: a refusal by a user's shared limit names the level in
// the Denial and in the problem's limit_level, in process and through a
// remote keyward; a refusal of another kind names none.
func TestLimitLevel(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		v    keyward.KeyVerifier
	}{
		{"in process", e.engine},
		{"remote", e.remote(e.root)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := e.svc.Tenancy.CreateUser(e.rootCtx(), e.acct.ID, keyward.UserCreate{Name: "shared-" + strings.ReplaceAll(tc.name, " ", "-")})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.svc.Keys.SetMeter(e.rootCtx(), e.acct.ID, u.ID, keyward.MeterSet{RateLimits: []keyward.RateLimit{{Name: "min", Limit: 1, Window: keyward.Duration(time.Minute)}}}); err != nil {
				t.Fatal(err)
			}
			k1 := e.key(keyward.KeyCreate{AccountID: e.acct.ID, UserID: u.ID, Role: keyward.RoleUser})
			k2 := e.key(keyward.KeyCreate{AccountID: e.acct.ID, UserID: u.ID, Role: keyward.RoleUser})
			var denial *middleware.Denial
			write := func(w http.ResponseWriter, r *http.Request, d *middleware.Denial) {
				denial = d
				middleware.WriteProblem(w, r, d)
			}
			ts := e.protect(tc.v, whoami(), middleware.WithErrorWriter(write))
			get(t, ts, "/x", "X-API-Key", k1.Secret).seen(t)
			r := get(t, ts, "/x", "X-API-Key", k2.Secret)
			r.problem(t, http.StatusTooManyRequests, keyward.ERATELIMITED)
			var p keyward.Problem
			if err := json.Unmarshal(r.body, &p); err != nil || p.LimitLevel != keyward.LevelUser || denial == nil || denial.LimitLevel != keyward.LevelUser {
				t.Errorf("the second key of a user limited to 1: %s, denial %+v; want limit_level user", r.body, denial)
			}
			denial = nil
			r = get(t, ts, "/x", "X-API-Key", "kw_user_nothing")
			r.problem(t, http.StatusUnauthorized, keyward.EUNAUTHORIZED)
			if strings.Contains(string(r.body), "limit_level") || denial == nil || denial.LimitLevel != "" {
				t.Errorf("a 401 names a level: %s", r.body)
			}
		})
	}
}
