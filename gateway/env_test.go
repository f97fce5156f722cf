package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/admin"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/gateway"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/verify"
)

// env is a real keyward in process (SQLite store, verification engine,
// admin service with a root key) and an upstream that records what it got.
type env struct {
	t       *testing.T
	store   keyward.Store
	hasher  *apikey.Hasher
	engine  *verify.Engine
	svc     admin.Services
	rootKey *keyward.Key
	up      *upstream
	logs    *keywardtest.SyncBuffer
	secrets []string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, store: keywardtest.NewSQLiteStore(t), hasher: keywardtest.NewHasher(t), logs: &keywardtest.SyncBuffer{}}
	engine, err := verify.New(verify.Config{Store: e.store, Hasher: e.hasher, Logger: e.logger()})
	if err != nil {
		t.Fatalf("verify.New: %v", err)
	}
	t.Cleanup(func() { engine.Close(context.Background()) })
	e.engine = engine
	e.svc = admin.New(admin.Config{Store: e.store, Hasher: e.hasher, Verifier: engine, Logger: e.logger()})
	secret, k, err := e.svc.Keys.Bootstrap(t.Context())
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	e.rootKey = k
	e.secrets = append(e.secrets, secret.Reveal())
	e.up = newUpstream(t)
	t.Cleanup(func() {
		logs := e.logs.String()
		for _, s := range e.secrets {
			if strings.Contains(logs, s) {
				t.Errorf("a key (%.12s...) appears in the logs", s)
			}
		}
	})
	return e
}

func (e *env) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (e *env) rootCtx() context.Context {
	return keyward.NewContextWithIdentity(e.t.Context(), keyward.IdentityOf(e.rootKey, ""))
}

// userKey creates an account, a user in it and a user key with perms.
func (e *env) userKey(perms ...string) *keyward.CreatedKey {
	e.t.Helper()
	ctx := e.rootCtx()
	acc, err := e.svc.Tenancy.CreateAccount(ctx, keyward.AccountCreate{Name: "acct-" + apikey.NewID("n")})
	if err != nil {
		e.t.Fatalf("create account: %v", err)
	}
	u, err := e.svc.Tenancy.CreateUser(ctx, acc.ID, keyward.UserCreate{Name: "alice"})
	if err != nil {
		e.t.Fatalf("create user: %v", err)
	}
	k, err := e.svc.Keys.CreateKey(ctx, keyward.KeyCreate{AccountID: acc.ID, UserID: u.ID, Role: keyward.RoleUser, Name: "test", Permissions: perms})
	if err != nil {
		e.t.Fatalf("create key: %v", err)
	}
	e.secrets = append(e.secrets, k.Secret)
	return k
}

// gateway starts a gateway over cfg (Verifier defaults to the engine,
// Logger to the env's) behind an httptest server.
func (e *env) gateway(cfg gateway.Config) *httptest.Server {
	e.t.Helper()
	if cfg.Verifier == nil {
		cfg.Verifier = e.engine
	}
	if cfg.Logger == nil {
		cfg.Logger = e.logger()
	}
	g, err := gateway.New(cfg)
	if err != nil {
		e.t.Fatalf("gateway.New: %v", err)
	}
	ts := httptest.NewServer(g)
	e.t.Cleanup(func() { ts.Close(); g.Close() })
	return ts
}

// route is a route to the env's upstream.
func (e *env) route(prefix string, perms ...string) gateway.Route {
	return gateway.Route{PathPrefix: prefix, Upstream: e.up.url, Permissions: perms}
}

// upstream is an HTTP service that records every request it gets and
// answers with 200 "ok from PATH". /stream and /ws behave as their tests
// need.
type upstream struct {
	url *url.URL
	ts  *httptest.Server

	mu   sync.Mutex
	reqs []*seen

	// stream: the upstream sends "first", flushes, waits for release, then
	// sends "second".
	release chan struct{}
}

// seen is a request the upstream got.
type seen struct {
	method, path, host string
	uri                string // as sent: escaped path and query
	header             http.Header
	body               []byte
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{release: make(chan struct{})}
	u.ts = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.ts.Close)
	u.url, _ = url.Parse(u.ts.URL)
	return u
}

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	u.reqs = append(u.reqs, &seen{method: r.Method, path: r.URL.Path, uri: r.RequestURI, host: r.Host, header: r.Header.Clone(), body: body})
	u.mu.Unlock()
	switch r.URL.Path {
	case "/stream":
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "first\n")
		http.NewResponseController(w).Flush()
		select {
		case <-u.release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "second\n")
	case "/ws":
		serveEcho(w, r)
	default:
		io.WriteString(w, "ok from "+r.URL.Path)
	}
}

// requests returns what the upstream got so far.
func (u *upstream) requests() []*seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]*seen(nil), u.reqs...)
}

// last returns the only request the upstream got since n requests.
func (u *upstream) last(t *testing.T, n int) *seen {
	t.Helper()
	rs := u.requests()
	if len(rs) != n+1 {
		t.Fatalf("upstream got %d requests, want %d", len(rs), n+1)
	}
	return rs[n]
}

// call sends a request and returns the response with its body read.
type call struct {
	method, url string
	header      http.Header
	body        string
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

// problem decodes a problem+json body.
func (r *reply) problem(t *testing.T) (code, detail string) {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json; body %s", ct, r.body)
	}
	var p struct {
		Code, Detail string
		Status       int
	}
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem body %s: %v", r.body, err)
	}
	if p.Status != r.status {
		t.Errorf("problem status %d, response status %d", p.Status, r.status)
	}
	return p.Code, p.Detail
}

func do(t *testing.T, c call) *reply {
	t.Helper()
	if c.method == "" {
		c.method = "GET"
	}
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequestWithContext(t.Context(), c.method, c.url, body)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	for k, vs := range c.header {
		req.Header[k] = vs // as given: non-canonical names too
	}
	if h := req.Header["Host"]; len(h) == 1 {
		req.Host = h[0]
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", c.method, c.url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return &reply{status: resp.StatusCode, header: resp.Header, body: b}
}

func bearer(key string) http.Header {
	return http.Header{"Authorization": {"Bearer " + key}}
}

// with returns h plus the pairs k, v, ... (names kept as written).
func with(h http.Header, kv ...string) http.Header {
	h = h.Clone()
	if h == nil {
		h = http.Header{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		h[kv[i]] = append(h[kv[i]], kv[i+1])
	}
	return h
}

// forged are identity headers a malicious client sends, in the spellings
// lenient upstreams read as the real ones.
var forged = []string{
	"X-Keyward-Key-Id", "key_forged",
	"x-keyward-account", "acc_forged",
	"X_Keyward_User", "usr_forged",
	"X-KEYWARD-ROLE", "root",
	"X-Keyward-Permissions", "everything",
	"X-Keyward.User", "usr_dot_forged",
}

// checkNoForged fails if any forged value reached the upstream.
func checkNoForged(t *testing.T, s *seen) {
	t.Helper()
	for name, vs := range s.header {
		for _, v := range vs {
			for i := 1; i < len(forged); i += 2 {
				if v == forged[i] || strings.Contains(v, "forged") {
					t.Errorf("forged header %s: %s reached the upstream", name, v)
				}
			}
		}
	}
}
