package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/admin"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/httpapi"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/verify"
)

func TestVerify(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	a := e.mustAccount("acme")
	b := e.mustAccount("other")
	u := e.mustUser(a.ID, "alice")
	valid := e.mustKey(keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Role: keyward.RoleUser,
		Permissions: []string{"memories:read"}, Meta: []byte(`{"tenant":"acme"}`)})
	gone := e.mustKey(keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Role: keyward.RoleUser})
	if _, err := e.svc.Keys.RevokeKey(e.rootCtx(), gone.ID); err != nil {
		t.Fatal(err)
	}
	off := e.mustKey(keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Role: keyward.RoleUser})
	if _, err := e.svc.Keys.UpdateKey(e.rootCtx(), off.ID, keyward.KeyUpdate{Disabled: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	expired := keywardtest.NewKey(t, e.store, e.hasher, keyward.Key{Role: keyward.RoleUser, AccountID: a.ID, UserID: u.ID,
		ExpiresAt: ptr(keywardtest.Now().Add(-time.Hour))})
	e.remember(expired.Secret)
	unknown, err := apikey.Generate(apikey.PrefixUser)
	if err != nil {
		t.Fatal(err)
	}
	verifier := e.mustKey(keyward.KeyCreate{AccountID: b.ID, Role: keyward.RoleAccountAdmin, Permissions: []string{"keys:verify"}})
	admin := e.mustKey(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin})

	root := e.client(e.root)
	for _, c := range []struct {
		name  string
		req   keyward.VerifyRequest
		code  keyward.Decision
		valid bool
	}{
		{"valid", keyward.VerifyRequest{Key: valid.Secret}, keyward.DecisionValid, true},
		{"valid with permissions", keyward.VerifyRequest{Key: valid.Secret, Permissions: []string{"memories:read"}}, keyward.DecisionValid, true},
		{"insufficient permissions", keyward.VerifyRequest{Key: valid.Secret, Permissions: []string{"memories:write"}}, keyward.DecisionInsufficientPermissions, false},
		{"not found", keyward.VerifyRequest{Key: unknown.Reveal()}, keyward.DecisionNotFound, false},
		{"revoked", keyward.VerifyRequest{Key: gone.Secret}, keyward.DecisionRevoked, false},
		{"disabled", keyward.VerifyRequest{Key: off.Secret}, keyward.DecisionDisabled, false},
		{"expired", keyward.VerifyRequest{Key: expired.Secret}, keyward.DecisionExpired, false},
		{"malformed", keyward.VerifyRequest{Key: "not a key"}, keyward.DecisionMalformed, false},
		{"empty", keyward.VerifyRequest{Key: ""}, keyward.DecisionMalformed, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := root.VerifyKey(ctx, c.req)
			if err != nil {
				t.Fatalf("VerifyKey: %v", err)
			}
			if res.Code != c.code || res.Valid != c.valid {
				t.Fatalf("result = %+v, want %s", res, c.code)
			}
			if c.valid {
				if res.KeyID != valid.ID || res.Identity == nil || res.Identity.AccountID != a.ID || res.Identity.UserID != u.ID ||
					res.Identity.Role != keyward.RoleUser || string(res.Meta) != `{"tenant":"acme"}` || len(res.Permissions) != 1 {
					t.Errorf("valid result = %+v identity %+v", res, res.Identity)
				}
			} else if res.Identity != nil || res.Meta != nil {
				t.Errorf("a refused key discloses its identity or meta: %+v", res)
			}
		})
	}

	t.Run("always 200, never the secret", func(t *testing.T) {
		r := e.do("POST", "/v1/keys/verify", e.root, `{"key":"`+gone.Secret+`"}`)
		if r.status != http.StatusOK || !strings.Contains(string(r.body), `"valid":false`) || !strings.Contains(string(r.body), `"code":"REVOKED"`) {
			t.Errorf("%d %s", r.status, r.body)
		}
		if strings.Contains(string(r.body), gone.Secret) {
			t.Error("the response echoes the key")
		}
	})

	t.Run("agent from the header or the body", func(t *testing.T) {
		c := e.client(e.root)
		c.Agent = "gateway"
		res, err := c.VerifyKey(ctx, keyward.VerifyRequest{Key: valid.Secret})
		if err != nil || res.Identity == nil || res.Identity.Agent != "gateway" {
			t.Errorf("header agent: %+v, %v", res, err)
		}
		res, err = c.VerifyKey(ctx, keyward.VerifyRequest{Key: valid.Secret, Agent: "cursor"})
		if err != nil || res.Identity == nil || res.Identity.Agent != "cursor" {
			t.Errorf("body agent: %+v, %v", res, err)
		}
	})

	t.Run("caller without keys:verify", func(t *testing.T) {
		for _, k := range []string{admin.Secret, valid.Secret} {
			r := e.do("POST", "/v1/keys/verify", keyward.Secret(k), `{"key":"`+valid.Secret+`"}`)
			if r.status != http.StatusForbidden || r.problem(t).Code != keyward.EFORBIDDEN {
				t.Errorf("%d %s", r.status, r.body)
			}
		}
	})

	t.Run("caller without a valid key", func(t *testing.T) {
		r := e.do("POST", "/v1/keys/verify", keyward.Secret(gone.Secret), `{"key":"`+valid.Secret+`"}`)
		wantUnauthorized(t, r, "invalid API key")
		r = e.do("POST", "/v1/keys/verify", "", `{"key":"`+valid.Secret+`"}`)
		wantUnauthorized(t, r, "Authorization: Bearer <key>")
	})

	t.Run("caller with keys:verify", func(t *testing.T) {
		vc := e.client(keyward.Secret(verifier.Secret))
		// A key of the verifier's own account verifies.
		own := e.mustKey(keyward.KeyCreate{AccountID: b.ID, Role: keyward.RoleAccountAdmin})
		res, err := vc.VerifyKey(ctx, keyward.VerifyRequest{Key: own.Secret})
		if err != nil || res.Code != keyward.DecisionValid {
			t.Errorf("own account: %+v, %v", res, err)
		}
		// Another account's key is not revealed.
		res, err = vc.VerifyKey(ctx, keyward.VerifyRequest{Key: valid.Secret})
		if err != nil || res.Code != keyward.DecisionNotFound || res.KeyID != "" {
			t.Errorf("other account: %+v, %v", res, err)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		r := e.send(request{method: "GET", path: "/metrics"})
		body := string(r.body)
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, body)
		}
		for _, want := range []string{
			`keyward_verifications_total{`,
			`keyward_http_requests_total{code="200",route="POST /v1/keys/verify"}`,
			`keyward_http_request_duration_seconds_bucket{route="GET /v1/whoami"`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
		if strings.Contains(body, "/v1/keys/key_") {
			t.Error("metrics are labelled with raw paths")
		}
	})
}

func TestOperations(t *testing.T) {
	t.Parallel()
	store := keywardtest.NewSQLiteStore(t)
	e := newEnvWith(t, envOptions{store: store})

	r := e.send(request{method: "GET", path: "/healthz"})
	if r.status != 200 || !strings.Contains(string(r.body), `"status":"ok"`) {
		t.Errorf("healthz: %d %s", r.status, r.body)
	}
	r = e.send(request{method: "GET", path: "/readyz"})
	if r.status != 200 || !strings.Contains(string(r.body), `"status":"ready"`) {
		t.Errorf("readyz: %d %s", r.status, r.body)
	}
	r = e.send(request{method: "GET", path: "/docs"})
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(r.body), "/v1/keys/verify") || !strings.Contains(string(r.body), "openapi.json") {
		t.Errorf("docs: %d %.300s", r.status, r.body)
	}

	// Warm the cache with the root key, then take the store down.
	if _, err := e.client(e.root).WhoAmI(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	r = e.send(request{method: "GET", path: "/readyz"})
	if r.status != http.StatusServiceUnavailable || r.problem(t).Code != keyward.EUNAVAILABLE {
		t.Errorf("readyz with the store closed: %d %s", r.status, r.body)
	}
	r = e.send(request{method: "GET", path: "/healthz"})
	if r.status != 200 {
		t.Errorf("healthz with the store closed: %d", r.status)
	}
	// A key the cache has never seen cannot be checked: 503, not 401.
	unknown, _ := apikey.Generate(apikey.PrefixUser)
	r = e.do("GET", "/v1/whoami", unknown, "")
	if r.status != http.StatusServiceUnavailable || r.problem(t).Code != keyward.EUNAVAILABLE {
		t.Errorf("authentication with the store closed: %d %s", r.status, r.body)
	}
	// The client maps it back.
	if _, err := e.client(unknown).WhoAmI(t.Context()); keyward.ErrorCode(err) != keyward.EUNAVAILABLE {
		t.Errorf("client: %v, want unavailable", err)
	}
	// Verifying that key (the caller's own key is cached) is a result like
	// any other: 200 with code UNAVAILABLE, never valid.
	r = e.do("POST", "/v1/keys/verify", e.root, `{"key":"`+unknown.Reveal()+`"}`)
	if r.status != 200 || !strings.Contains(string(r.body), `"valid":false`) || !strings.Contains(string(r.body), `"code":"UNAVAILABLE"`) {
		t.Errorf("verify of an uncached key with the store closed: %d %s", r.status, r.body)
	}
}

// BenchmarkVerifyHTTP measures POST /v1/keys/verify through the whole
// handler (authentication of the caller, decoding, verification, encoding)
// with both keys cached; BenchmarkBareJSONHandler is the baseline of
// docs/benchmarks.md, targets: a net/http handler that decodes and encodes the
// same JSON.
func BenchmarkVerifyHTTP(b *testing.B) {
	e := newBenchEnv(b)
	body := `{"key":"` + e.userKey + `","permissions":["memories:read"]}`
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("POST", "/v1/keys/verify", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+e.root)
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}

func BenchmarkBareJSONHandler(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in keyward.VerifyRequest
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(keyward.VerifyResult{Valid: true, Code: keyward.DecisionValid, KeyID: "key_x"})
	})
	body := `{"key":"kw_user_3vQb7Hq0N8y4J2kLm9XcA1sT5uVwYz0bC6dE8fG2hJ4kL0mN1pQ","permissions":["memories:read"]}`
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("POST", "/v1/keys/verify", strings.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
	}
}

type benchEnv struct {
	srv           http.Handler
	root, userKey string
}

func newBenchEnv(b *testing.B) *benchEnv {
	store := keywardtest.NewSQLiteStore(b)
	hasher := keywardtest.NewHasher(b)
	engine, err := verify.New(verify.Config{Store: store, Hasher: hasher, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { engine.Close(context.Background()) })
	svc := admin.New(admin.Config{Store: store, Hasher: hasher, Verifier: engine, Logger: slog.New(slog.DiscardHandler)})
	srv := httpapi.New(httpapi.Config{Services: httpapi.Services{Tenancy: svc.Tenancy, Roles: svc.Roles, Keys: svc.Keys, Credentials: svc.Credentials, Webhooks: svc.Webhooks, Audit: svc.Audit, Abuse: svc.Abuse}, Engine: engine, Logger: slog.New(slog.DiscardHandler)})
	root, rootKey, err := svc.Keys.Bootstrap(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	ctx := keyward.NewContextWithIdentity(b.Context(), keyward.IdentityOf(rootKey, ""))
	a, err := svc.Tenancy.CreateAccount(ctx, keyward.AccountCreate{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	u, err := svc.Tenancy.CreateUser(ctx, a.ID, keyward.UserCreate{Name: "u"})
	if err != nil {
		b.Fatal(err)
	}
	k, err := svc.Keys.CreateKey(ctx, keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Role: keyward.RoleUser, Permissions: []string{"memories:read"}})
	if err != nil {
		b.Fatal(err)
	}
	return &benchEnv{srv: srv, root: root.Reveal(), userKey: k.Secret}
}

// TestVerifyLimits: the endpoint takes limits and a cost, answers 200 with
// RATE_LIMITED in the body (never as headers) and the state of each limit,
// and refuses a cost out of range with 400.
func TestVerifyLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.mustAccount("acme")
	u := e.mustUser(a.ID, "alice")
	minute := keyward.RateLimit{Name: "min", Limit: 4, Window: keyward.Duration(time.Minute)}
	day := keyward.RateLimit{Name: "day", Limit: 1000, Window: keyward.Duration(24 * time.Hour)}
	k := e.mustKey(keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Role: keyward.RoleUser, RateLimits: []keyward.RateLimit{minute, day}})
	root := e.client(e.root)

	names := func(res *keyward.VerifyResult) (out []string) {
		for _, s := range res.RateLimits {
			out = append(out, s.Name)
		}
		return out
	}
	// "min" only, cost 3: one unit left.
	res, err := root.VerifyKey(t.Context(), keyward.VerifyRequest{Key: k.Secret, Limits: []string{"min", "other"}, Cost: 3})
	if err != nil || res.Code != keyward.DecisionValid || strings.Join(names(res), ",") != "min" ||
		res.RateLimits[0].Remaining != 1 || !res.RateLimits[0].Allowed || res.RateLimits[0].Limit != 4 {
		t.Fatalf("named limit with cost 3: %+v, %v", res, err)
	}
	// All limits, cost 2: "min" refuses, "day" is not spent.
	r := e.do("POST", "/v1/keys/verify", e.root, `{"key":"`+k.Secret+`","cost":2}`)
	var out keyward.VerifyResult
	r.decode(t, &out)
	if r.status != http.StatusOK || out.Valid || out.Code != keyward.DecisionRateLimited || strings.Join(names(&out), ",") != "min,day" ||
		out.RateLimits[0].Allowed || out.RateLimits[0].RetryAfterMS <= 0 || !out.RateLimits[1].Allowed || out.RateLimits[1].Remaining != 1000 {
		t.Fatalf("over the limit: %d %s", r.status, r.body)
	}
	if r.header.Get("Retry-After") != "" || r.header.Get("RateLimit") != "" {
		t.Errorf("the verify endpoint sets rate limit headers: %v", r.header)
	}
	if out.CreditsRemaining != nil {
		t.Errorf("credits_remaining for a key without credits: %d", *out.CreditsRemaining)
	}
	for _, body := range []string{`{"key":"` + k.Secret + `","cost":-1}`, `{"key":"` + k.Secret + `","cost":1048577}`} {
		r := e.do("POST", "/v1/keys/verify", e.root, body)
		if r.status != http.StatusBadRequest || r.problem(t).Code != keyward.EINVALID {
			t.Errorf("cost out of range: %d %s", r.status, r.body)
		}
	}
}

// TestReadyzStorageFull: while the store reports its storage full (as it
// does on SQLITE_FULL, see the sqlite package's TestStorageFull), /readyz
// stays 200 (keys still verify; a 503 would take every instance sharing the
// store out of its balancer) with the status storage_full, and the metrics
// show it; the API keeps verifying keys; a committed write ends it.
func TestReadyzStorageFull(t *testing.T) {
	t.Parallel()
	store := keywardtest.NewSQLiteStore(t)
	e := newEnvWith(t, envOptions{store: store})
	metric := func(name string) string {
		t.Helper()
		for _, line := range strings.Split(string(e.send(request{method: "GET", path: "/metrics"}).body), "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				return v
			}
		}
		t.Fatalf("/metrics has no %s", name)
		return ""
	}
	if v := metric("keyward_storage_full"); v != "0" {
		t.Fatalf("keyward_storage_full = %s before, want 0", v)
	}

	store.Storage().Refused(errors.New("database or disk is full (13)"))
	if r := e.send(request{method: "GET", path: "/readyz"}); r.status != http.StatusOK || !strings.Contains(string(r.body), `"status":"storage_full"`) {
		t.Errorf("readyz while storage is full: %d %s, want 200 with status storage_full", r.status, r.body)
	}
	if full, episodes := metric("keyward_storage_full"), metric("keyward_storage_full_episodes_total"); full != "1" || episodes != "1" {
		t.Errorf("keyward_storage_full = %s, episodes = %s; want 1, 1", full, episodes)
	}
	if r := e.do("GET", "/v1/whoami", e.root, ""); r.status != http.StatusOK {
		t.Errorf("whoami while storage is full: %d, want 200 (reads work)", r.status)
	}

	e.mustAccount("room again") // a committed write
	if r := e.send(request{method: "GET", path: "/readyz"}); r.status != http.StatusOK || !strings.Contains(string(r.body), `"status":"ready"`) {
		t.Errorf("readyz after a write committed: %d %s, want 200 ready", r.status, r.body)
	}
	if v := metric("keyward_storage_full"); v != "0" {
		t.Errorf("keyward_storage_full = %s after a write committed, want 0", v)
	}
}

// TestVerifyManualLimits: a manual limit, set and read back as JSON, counts
// only when the call names it (limits or manual_limits); manual_limits adds
// to the key's other limits, and the answer marks the manual limit.
func TestVerifyManualLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.mustAccount("acme")
	u := e.mustUser(a.ID, "alice")
	k := e.mustKey(keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Role: keyward.RoleUser})
	r := e.do("PATCH", "/v1/keys/"+k.ID, e.root, `{"rate_limits":[{"name":"min","limit":5,"window":"1m"},{"name":"tokens","limit":1,"window":"1m","manual":true}]}`)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `{"name":"tokens","limit":1,"window":"1m0s","manual":true}`) ||
		!strings.Contains(string(r.body), `{"name":"min","limit":5,"window":"1m0s"}`) {
		t.Fatalf("PATCH rate_limits: %d %s", r.status, r.body)
	}
	verify := func(extra string) keyward.VerifyResult {
		t.Helper()
		r := e.do("POST", "/v1/keys/verify", e.root, `{"key":"`+k.Secret+`"`+extra+`}`)
		var out keyward.VerifyResult
		r.decode(t, &out)
		return out
	}
	report := func(res keyward.VerifyResult) (out []string) {
		for _, s := range res.RateLimits {
			out = append(out, fmt.Sprintf("%s manual=%v allowed=%v", s.Name, s.Manual, s.Allowed))
		}
		return out
	}
	for i, c := range []struct {
		extra string
		code  keyward.Decision
		want  []string
	}{
		{``, keyward.DecisionValid, []string{"min manual=false allowed=true"}},
		{`,"manual_limits":["tokens"]`, keyward.DecisionValid, []string{"min manual=false allowed=true", "tokens manual=true allowed=true"}},
		{`,"manual_limits":["tokens"]`, keyward.DecisionRateLimited, []string{"min manual=false allowed=true", "tokens manual=true allowed=false"}},
		{`,"limits":["tokens"]`, keyward.DecisionRateLimited, []string{"tokens manual=true allowed=false"}},
		{``, keyward.DecisionValid, []string{"min manual=false allowed=true"}},
	} {
		if res := verify(c.extra); res.Code != c.code || !slices.Equal(report(res), c.want) {
			t.Fatalf("step %d (%s): %s %v, want %s %v", i, c.extra, res.Code, report(res), c.code, c.want)
		}
	}
}
