package middleware_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/admin"
	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/credits"
	"github.com/keyward/keyward/httpapi"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/middleware"
	"github.com/keyward/keyward/verify"
)

// env is a whole keyward behind a real HTTP server (SQLite store,
// verification engine, admin service, API) with a root key, an account and
// a user. Logs of keyward and of the protected services are checked for
// every secret when the test ends.
type env struct {
	t       *testing.T
	engine  *verify.Engine
	svc     admin.Services
	ts      *httptest.Server
	root    keyward.Secret
	rootKey *keyward.Key
	acct    *keyward.Account
	user    *keyward.User
	logs    *keywardtest.SyncBuffer
	log     *slog.Logger

	mu      sync.Mutex
	secrets []string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	store := keywardtest.NewSQLiteStore(t)
	hasher := keywardtest.NewHasher(t)
	e := &env{t: t, logs: &keywardtest.SyncBuffer{}}
	e.log = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ledger := credits.NewStoreLedger(store)
	engine, err := verify.New(verify.Config{Store: store, Hasher: hasher, Credits: ledger, Logger: e.log})
	if err != nil {
		t.Fatalf("verify.New: %v", err)
	}
	e.engine = engine
	t.Cleanup(func() { engine.Close(context.Background()) })
	e.svc = admin.New(admin.Config{Store: store, Hasher: hasher, Verifier: engine, Credits: ledger, Logger: e.log})
	e.ts = httptest.NewServer(httpapi.New(httpapi.Config{Services: httpapi.Services{Tenancy: e.svc.Tenancy, Roles: e.svc.Roles, Keys: e.svc.Keys, Credentials: e.svc.Credentials, Webhooks: e.svc.Webhooks, Audit: e.svc.Audit, Abuse: e.svc.Abuse}, Engine: engine, Store: store, Logger: e.log, Version: "test"}))
	t.Cleanup(e.ts.Close)
	t.Cleanup(e.checkLogs)
	e.root, e.rootKey, err = e.svc.Keys.Bootstrap(t.Context())
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	e.remember(e.root.Reveal())
	e.acct, err = e.svc.Tenancy.CreateAccount(e.rootCtx(), keyward.AccountCreate{Name: "acme"})
	if err != nil {
		t.Fatalf("create account: %v", err)
	}
	e.user, err = e.svc.Tenancy.CreateUser(e.rootCtx(), e.acct.ID, keyward.UserCreate{Name: "alice", ExternalID: "idp|alice"})
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
	return e
}

func (e *env) rootCtx() context.Context {
	return keyward.NewContextWithIdentity(e.t.Context(), keyward.IdentityOf(e.rootKey, ""))
}

// userKey creates a key of the env's user holding perms.
func (e *env) userKey(perms ...string) *keyward.CreatedKey {
	e.t.Helper()
	return e.key(keyward.KeyCreate{AccountID: e.acct.ID, UserID: e.user.ID, Role: keyward.RoleUser, Name: "laptop",
		Permissions: perms, Meta: json.RawMessage(`{"plan":"pro"}`)})
}

func (e *env) key(c keyward.KeyCreate) *keyward.CreatedKey {
	e.t.Helper()
	k, err := e.svc.Keys.CreateKey(e.rootCtx(), c)
	if err != nil {
		e.t.Fatalf("create key: %v", err)
	}
	e.remember(k.Secret)
	return k
}

func (e *env) remember(secret string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.secrets = append(e.secrets, secret)
}

func (e *env) checkLogs() {
	e.mu.Lock()
	defer e.mu.Unlock()
	logs := e.logs.String()
	for _, s := range e.secrets {
		if strings.Contains(logs, s) {
			e.t.Errorf("a secret (%s...) appears in the logs", s[:12])
		}
	}
}

// remote returns a cached verifier asking the env's keyward over HTTP
// with key.
func (e *env) remote(key keyward.Secret) *client.CachedVerifier {
	return client.NewCachedVerifier(client.New(e.ts.URL, key), client.CacheConfig{})
}

// protect serves app behind middleware.New(v, opts...) on a real HTTP
// server, logging to the env's logs.
func (e *env) protect(v keyward.KeyVerifier, app http.Handler, opts ...middleware.Option) *httptest.Server {
	e.t.Helper()
	opts = append([]middleware.Option{middleware.WithLogger(e.log)}, opts...)
	ts := httptest.NewServer(middleware.New(v, opts...)(app))
	e.t.Cleanup(ts.Close)
	return ts
}

// whoami is a protected app: it answers every path with the identity in
// the request's context ("null" without one) and the key's meta.
func whoami() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var meta json.RawMessage
		if res := middleware.ResultFrom(r.Context()); res != nil {
			meta = res.Meta
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(seen{Identity: keyward.IdentityFrom(r.Context()), Meta: meta})
	})
}

// seen is what whoami answers.
type seen struct {
	Identity *keyward.Identity `json:"identity"`
	Meta     json.RawMessage   `json:"meta,omitempty"`
}

// response is a raw HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// get sends GET path to ts with the headers given as name, value pairs.
func get(t *testing.T, ts *httptest.Server, path string, header ...string) *response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: b}
}

// identity requires 200 and returns the identity the app saw.
func (r *response) seen(t *testing.T) seen {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", r.status, r.body)
	}
	var s seen
	if err := json.Unmarshal(r.body, &s); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	return s
}

// problem requires a problem+json refusal with status and code, the
// headers of its status, and returns its detail.
func (r *response) problem(t *testing.T, status int, code string) string {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != middleware.ProblemContentType {
		t.Errorf("Content-Type = %q", ct)
	}
	var p struct {
		Type   string `json:"type"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
		Code   string `json:"code"`
	}
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("decode problem %s: %v", r.body, err)
	}
	if p.Status != status || p.Code != code || p.Type != "urn:keyward:error:"+code {
		t.Errorf("problem = %+v, want status %d code %s", p, status, code)
	}
	wantAuth := ""
	if status == http.StatusUnauthorized {
		wantAuth = middleware.WWWAuthenticate
	}
	if got := r.header.Get("WWW-Authenticate"); got != wantAuth {
		t.Errorf("WWW-Authenticate = %q, want %q", got, wantAuth)
	}
	if status == http.StatusServiceUnavailable && r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	return p.Detail
}
