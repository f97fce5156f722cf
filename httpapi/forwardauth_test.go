package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

// TestForwardAuthMounted checks that Config.ForwardAuth answers
// /v1/forward-auth for any method and below it (Envoy), and that its
// answers match openapi.json (checked when the env ends).
func TestForwardAuthMounted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acc := e.mustAccount("acme")
	admin := e.mustKey(keyward.KeyCreate{AccountID: acc.ID, Role: keyward.RoleAccountAdmin, Permissions: []string{"admin"}})
	plain := e.mustKey(keyward.KeyCreate{AccountID: acc.ID, Role: keyward.RoleAccountAdmin})
	e.remember(admin.Secret)
	e.remember(plain.Secret)
	uri := func(u string) map[string]string { return map[string]string{"X-Forwarded-Uri": u} }
	with := func(h map[string]string, key string) map[string]string {
		h["Authorization"] = "Bearer " + key
		return h
	}
	for _, tc := range []struct {
		name   string
		req    request
		status int
		keyID  string
	}{
		{"GET valid", request{method: "GET", path: "/v1/forward-auth", header: with(uri("/x"), plain.Secret)}, 200, plain.ID},
		{"PROPFIND valid", request{method: "PROPFIND", path: "/v1/forward-auth", header: with(uri("/x"), plain.Secret)}, 200, plain.ID},
		{"permission needed", request{method: "POST", path: "/v1/forward-auth", header: with(uri("/admin/x"), plain.Secret)}, 403, ""},
		{"permission held", request{method: "POST", path: "/v1/forward-auth", header: with(uri("/admin/x"), admin.Secret)}, 200, admin.ID},
		{"exempt", request{method: "GET", path: "/v1/forward-auth", header: uri("/admin/docs")}, 200, ""},
		{"no key", request{method: "GET", path: "/v1/forward-auth", header: uri("/x")}, 401, ""},
		{"bad key", request{method: "GET", path: "/v1/forward-auth", header: with(uri("/x"), "kw_user_nope")}, 401, ""},
		{"envoy path", request{method: "DELETE", path: "/v1/forward-auth/admin/x", header: bearer(plain.Secret)}, 403, ""},
		{"envoy path allowed", request{method: "PUT", path: "/v1/forward-auth/admin/x", header: bearer(admin.Secret)}, 200, admin.ID},
		{"no original uri", request{method: "GET", path: "/v1/forward-auth", header: bearer(admin.Secret)}, 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.send(tc.req)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if got := r.header.Get("X-Keyward-Key-Id"); got != tc.keyID {
				t.Errorf("X-Keyward-Key-Id = %q, want %q", got, tc.keyID)
			}
			if r.status == http.StatusUnauthorized && r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

// TestForwardAuthRateLimits: the mounted handler answers for a key's rate
// limits with the RateLimit fields, and 429 with Retry-After beyond them.
func TestForwardAuthRateLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acc := e.mustAccount("acme")
	k := e.mustKey(keyward.KeyCreate{AccountID: acc.ID, Role: keyward.RoleAccountAdmin,
		RateLimits: []keyward.RateLimit{{Name: "min", Limit: 1, Window: keyward.Duration(time.Minute)}}})
	e.remember(k.Secret)
	req := request{method: "GET", path: "/v1/forward-auth", header: map[string]string{"X-Forwarded-Uri": "/x", "Authorization": "Bearer " + k.Secret}}
	r := e.send(req)
	if r.status != http.StatusOK || r.header.Get("RateLimit-Policy") != `"min";q=1;w=60` || !strings.HasPrefix(r.header.Get("RateLimit"), `"min";r=0;t=`) {
		t.Fatalf("first request: %d %v", r.status, r.header)
	}
	r = e.send(req)
	if r.status != http.StatusTooManyRequests || r.problem(t).Code != keyward.ERATELIMITED ||
		r.header.Get("Retry-After") == "" || r.header.Get("RateLimit-Policy") != `"min";q=1;w=60` {
		t.Fatalf("second request: %d %v %s", r.status, r.header, r.body)
	}
}
