package gateway_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/credits"
	"github.com/keyward/keyward/gateway"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/verify"
)

// meteredEngine returns an engine on the env's store with the store's
// credit ledger and a clock that stands still, so the limits' numbers are
// exact.
func (e *env) meteredEngine() *verify.Engine {
	e.t.Helper()
	now := keywardtest.Now()
	engine, err := verify.New(verify.Config{
		Store: e.store, Hasher: e.hasher, Logger: e.logger(),
		Credits: credits.NewStoreLedger(e.store),
		Now:     func() time.Time { return now },
	})
	if err != nil {
		e.t.Fatalf("verify.New: %v", err)
	}
	e.t.Cleanup(func() { engine.Close(context.Background()) })
	return engine
}

// limitedKey creates a user key with limits and credits.
func (e *env) limitedKey(limits []keyward.RateLimit, c *keyward.Credits) *keyward.CreatedKey {
	e.t.Helper()
	acc := keywardtest.NewAccount(e.t, e.store, "acct-"+apikey.NewID("n"))
	u := keywardtest.NewUser(e.t, e.store, acc.ID, "alice")
	k := keywardtest.NewKey(e.t, e.store, e.hasher, keyward.Key{
		Role: keyward.RoleUser, AccountID: acc.ID, UserID: u.ID, RateLimits: limits, Credits: c,
	})
	e.secrets = append(e.secrets, k.Secret)
	return k
}

var (
	perMinute = keyward.RateLimit{Name: "min", Limit: 4, Window: keyward.Duration(time.Minute)}
	perDay    = keyward.RateLimit{Name: "day", Limit: 100, Window: keyward.Duration(24 * time.Hour)}
)

// rateLimitCase is one request of the limit tests and the headers it must
// answer with ("" for absent).
type rateLimitCase struct {
	name        string
	path        string
	key         string
	status      int
	policy      string
	state       string
	retryAfter  string
	problemCode string
}

func checkRateLimitReply(t *testing.T, tc rateLimitCase, r *reply) {
	t.Helper()
	if r.status != tc.status {
		t.Fatalf("%s: status %d, want %d: %s", tc.name, r.status, tc.status, r.body)
	}
	if tc.problemCode != "" {
		if code, _ := r.problem(t); code != tc.problemCode {
			t.Errorf("%s: problem code %q, want %q", tc.name, code, tc.problemCode)
		}
	}
	for name, want := range map[string]string{"RateLimit-Policy": tc.policy, "RateLimit": tc.state, "Retry-After": tc.retryAfter} {
		if got := strings.Join(r.header.Values(name), ", "); got != want {
			t.Errorf("%s: %s = %q, want %q", tc.name, name, got, want)
		}
	}
}

// rateLimitCases run in order on a fresh key with perMinute and perDay, a
// key with one credit and a key with neither, through routes "/" (all
// limits, cost 1) and "/metered" (only "min", cost 2).
func rateLimitCases() []rateLimitCase {
	const both = `"min";q=4;w=60, "day";q=100;w=86400`
	return []rateLimitCase{
		{"all limits, cost 1", "/x", "limited", http.StatusOK, both, `"min";r=3;t=15, "day";r=99;t=864`, "", ""},
		{"named limit, cost 2", "/metered/x", "limited", http.StatusOK, `"min";q=4;w=60`, `"min";r=1;t=45`, "", ""},
		{"over the limit", "/metered/x", "limited", http.StatusTooManyRequests, `"min";q=4;w=60`, `"min";r=1;t=45`, "15", keyward.ERATELIMITED},
		{"one unit left", "/x", "limited", http.StatusOK, both, `"min";r=0;t=60, "day";r=98;t=1728`, "", ""},
		{"no limits: no headers", "/metered/x", "plain", http.StatusOK, "", "", "", ""},
		{"credits", "/x", "credits", http.StatusOK, "", "", "", ""},
		{"credits spent: 429 without Retry-After", "/x", "credits", http.StatusTooManyRequests, "", "", "", keyward.ERATELIMITED},
	}
}

func TestGatewayRateLimits(t *testing.T) {
	e := newEnv(t)
	keys := map[string]string{
		"limited": e.limitedKey([]keyward.RateLimit{perMinute, perDay}, nil).Secret,
		"credits": e.limitedKey(nil, &keyward.Credits{Remaining: 1, RefilledAt: keywardtest.Now()}).Secret,
		"plain":   e.limitedKey(nil, nil).Secret,
	}
	gw := e.gateway(gateway.Config{Verifier: e.meteredEngine(), Routes: []gateway.Route{
		e.route("/"),
		{PathPrefix: "/metered", Upstream: e.up.url, Limits: []string{"min", "unknown"}, Cost: 2},
	}})
	for _, tc := range rateLimitCases() {
		n := len(e.up.requests())
		r := do(t, call{url: gw.URL + tc.path, header: bearer(keys[tc.key])})
		checkRateLimitReply(t, tc, r)
		if reached := len(e.up.requests()) > n; reached != (tc.status == http.StatusOK) {
			t.Errorf("%s: upstream reached %v, status %d", tc.name, reached, tc.status)
		}
	}
}

func TestForwardAuthRateLimits(t *testing.T) {
	e := newEnv(t)
	keys := map[string]string{
		"limited": e.limitedKey([]keyward.RateLimit{perMinute, perDay}, nil).Secret,
		"credits": e.limitedKey(nil, &keyward.Credits{Remaining: 1, RefilledAt: keywardtest.Now()}).Secret,
		"plain":   e.limitedKey(nil, nil).Secret,
	}
	fa := e.forwardAuth(gateway.Config{Verifier: e.meteredEngine(), Routes: []gateway.Route{
		{PathPrefix: "/"},
		{PathPrefix: "/metered", Limits: []string{"min"}, Cost: 2},
	}})
	for _, tc := range rateLimitCases() {
		// A client's attempt to name its own cost or limits changes
		// nothing: they come from the route alone.
		h := with(bearer(keys[tc.key]), "X-Forwarded-Uri", tc.path+"?cost=0&limits=none", "X-Keyward-Cost", "0")
		r := do(t, call{url: fa.URL + "/v1/forward-auth?cost=0", header: h})
		checkRateLimitReply(t, tc, r)
	}
}

func TestRouteLimitErrors(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name  string
		route gateway.Route
		field string
	}{
		{"bad limit name", gateway.Route{Limits: []string{"per minute"}}, "routes[0].limits"},
		{"empty limit name", gateway.Route{Limits: []string{""}}, "routes[0].limits"},
		{"limit named twice", gateway.Route{Limits: []string{"a", "b", "a"}}, "routes[0].limits"},
		{"negative cost", gateway.Route{Cost: -1}, "routes[0].cost"},
		{"cost over the max", gateway.Route{Cost: keyward.MaxVerificationCost + 1}, "routes[0].cost"},
	} {
		tc.route.PathPrefix, tc.route.Upstream = "/", e.up.url
		for _, needUpstream := range []bool{true, false} {
			err := gateway.Validate(gateway.Config{Verifier: e.engine, Routes: []gateway.Route{tc.route}}, needUpstream)
			var ce *gateway.ConfigError
			if !errors.As(err, &ce) || len(ce.Errors) != 1 || ce.Errors[0].Field != tc.field {
				t.Errorf("%s: %v, want one error naming %s", tc.name, err, tc.field)
			}
		}
	}
	ok := gateway.Route{PathPrefix: "/", Upstream: e.up.url, Limits: []string{"per-minute", "day.v2"}, Cost: keyward.MaxVerificationCost}
	if err := gateway.Validate(gateway.Config{Verifier: e.engine, Routes: []gateway.Route{ok}}, true); err != nil {
		t.Errorf("valid limits and cost: %v", err)
	}
}
