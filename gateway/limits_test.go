package gateway_test

import (
	"context"
	"encoding/json"
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

// TestSharedLimitLevel: a request refused by the limit a user's keys share
// gets the gateway's and forward-auth's 429 naming the level (user), and
// does not reach the upstream; the other keys of the user are refused
// alike, and a key of another user is not.
func TestSharedLimitLevel(t *testing.T) {
	e := newEnv(t)
	acc := keywardtest.NewAccount(t, e.store, "shared")
	alice := keywardtest.NewUser(t, e.store, acc.ID, "alice")
	bob := keywardtest.NewUser(t, e.store, acc.ID, "bob")
	shared := keyward.RateLimit{Name: "user", Limit: 2, Window: keyward.Duration(time.Minute)}
	if err := e.store.SetMeter(t.Context(), keyward.Change{}, &keyward.Meter{ID: alice.ID, Level: keyward.LevelUser, AccountID: acc.ID,
		RateLimits: []keyward.RateLimit{shared}, UpdatedAt: keywardtest.Now()}); err != nil {
		t.Fatal(err)
	}
	key := func(u *keyward.User) string {
		k := keywardtest.NewKey(t, e.store, e.hasher, keyward.Key{Role: keyward.RoleUser, AccountID: acc.ID, UserID: u.ID})
		e.secrets = append(e.secrets, k.Secret)
		return k.Secret
	}
	alice1, alice2, bob1 := key(alice), key(alice), key(bob)
	engine := e.meteredEngine()
	gw := e.gateway(gateway.Config{Verifier: engine, Routes: []gateway.Route{e.route("/")}})
	fa := e.forwardAuth(gateway.Config{Verifier: engine, Routes: []gateway.Route{{PathPrefix: "/"}}})
	level := func(r *reply) string {
		var p struct {
			LimitLevel string `json:"limit_level"`
		}
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatalf("body %s: %v", r.body, err)
		}
		return p.LimitLevel
	}
	for i, k := range []string{alice1, alice2} { // the user's 2 requests, over two keys
		if r := do(t, call{url: gw.URL + "/x", header: bearer(k)}); r.status != http.StatusOK {
			t.Fatalf("request %d of alice: status %d: %s", i+1, r.status, r.body)
		}
	}
	n := len(e.up.requests())
	for _, k := range []string{alice1, alice2} {
		r := do(t, call{url: gw.URL + "/x", header: bearer(k)})
		if code, _ := r.problem(t); r.status != http.StatusTooManyRequests || code != keyward.ERATELIMITED || level(r) != "user" {
			t.Errorf("gateway, alice over the shared limit: %d %s", r.status, r.body)
		}
		r = do(t, call{url: fa.URL + "/v1/forward-auth", header: with(bearer(k), "X-Forwarded-Uri", "/x")})
		if r.status != http.StatusTooManyRequests || level(r) != "user" {
			t.Errorf("forward-auth, alice over the shared limit: %d %s", r.status, r.body)
		}
	}
	if len(e.up.requests()) != n {
		t.Error("a refused request reached the upstream")
	}
	if r := do(t, call{url: gw.URL + "/x", header: bearer(bob1)}); r.status != http.StatusOK {
		t.Errorf("bob, whose keys share no limit with alice's: %d %s", r.status, r.body)
	}
}
