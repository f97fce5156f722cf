package httpapi_test

import (
	"bytes"
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
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/credits"
	"github.com/keyward/keyward/gateway"
	"github.com/keyward/keyward/httpapi"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/ratelimit"
	"github.com/keyward/keyward/verify"
	"github.com/keyward/keyward/webhook"
	"github.com/prometheus/client_golang/prometheus"
)

// env is a whole keyward behind a real HTTP server: a SQLite store, the
// verification engine, the admin service and the API, with a root key.
// Every exchange goes through a recording transport; when the test ends,
// each recorded response is validated against the OpenAPI document and the
// captured logs are scanned for every secret the test saw.
type env struct {
	t       *testing.T
	store   keyward.Store
	hasher  *apikey.Hasher
	ring    *keyring.Keyring
	engine  *verify.Engine
	svc     admin.Services
	reg     *prometheus.Registry
	srv     *httpapi.Server
	ts      *httptest.Server
	rec     *recorder
	logs    *keywardtest.SyncBuffer
	log     *slog.Logger
	root    keyward.Secret
	rootKey *keyward.Key
	// providers are the fake credential providers of admin.Config.Providers
	// (unless envOptions.providers replaced them).
	providers *fakeProviders

	mu      sync.Mutex
	secrets []string
}

type envOptions struct {
	store keyward.Store // nil: keywardtest.NewSQLiteStore
	// providers opens credential providers; nil: e.providers, fakes.
	providers admin.ProviderFactory
	// webhookGuard checks the URLs of webhook endpoints (admin.Config).
	webhookGuard webhook.Guard
	// limiter replaces the engine's local limiter; ledger, given the
	// store, replaces the store ledger.
	limiter ratelimit.Limiter
	ledger  func(keyward.Store) keyward.CreditLedger
	// portalURL is the base of portal links (httpapi.Config.PortalURL).
	portalURL string
}

func newEnv(t *testing.T) *env { return newEnvWith(t, envOptions{}) }

func newEnvWith(t *testing.T, o envOptions) *env {
	t.Helper()
	e := &env{t: t, store: o.store, hasher: keywardtest.NewHasher(t), ring: keywardtest.NewKeyring(t), logs: &keywardtest.SyncBuffer{}, providers: newFakeProviders()}
	if o.providers == nil {
		o.providers = e.providers.open
	}
	if e.store == nil {
		e.store = keywardtest.NewSQLiteStore(t)
	}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.log = log
	var ledger keyward.CreditLedger = credits.NewStoreLedger(e.store)
	if o.ledger != nil {
		ledger = o.ledger(e.store)
	}
	engine, err := verify.New(verify.Config{Store: e.store, Hasher: e.hasher, Credits: ledger, Limiter: o.limiter, Logger: log})
	if err != nil {
		t.Fatalf("verify.New: %v", err)
	}
	e.engine = engine
	t.Cleanup(func() { engine.Close(context.Background()) })
	e.reg = prometheus.NewRegistry()
	e.reg.MustRegister(engine)
	e.svc = admin.New(admin.Config{Store: e.store, Hasher: e.hasher, Verifier: engine, Credits: ledger, Sealer: e.ring, Providers: o.providers, WebhookGuard: o.webhookGuard, Logger: log})
	fa, err := gateway.NewForwardAuth(gateway.Config{
		Verifier: engine,
		Routes:   []gateway.Route{{PathPrefix: "/admin", Permissions: []string{"admin"}, Exempt: []string{"/admin/docs"}}},
		Logger:   log,
	})
	if err != nil {
		t.Fatalf("gateway.NewForwardAuth: %v", err)
	}
	e.srv = httpapi.New(httpapi.Config{
		Services:    httpapi.Services{Tenancy: e.svc.Tenancy, Roles: e.svc.Roles, Keys: e.svc.Keys, Credentials: e.svc.Credentials, Webhooks: e.svc.Webhooks, Audit: e.svc.Audit, Abuse: e.svc.Abuse, Portal: e.svc.Portal},
		Engine:      engine,
		Store:       e.store,
		Gatherer:    e.reg,
		Registerer:  e.reg,
		ForwardAuth: fa,
		PortalURL:   o.portalURL,
		Logger:      log,
		Version:     "test",
	})
	e.ts = httptest.NewServer(e.srv)
	t.Cleanup(e.ts.Close)
	e.rec = &recorder{next: http.DefaultTransport}
	t.Cleanup(func() {
		if !t.Failed() {
			validateExchanges(t, e.srv.Routes(), e.rec.exchanges())
		}
		e.checkLogs()
	})

	secret, k, err := e.svc.Keys.Bootstrap(t.Context())
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	e.root, e.rootKey = secret, k
	e.remember(secret.Reveal())
	return e
}

// remember notes a secret the logs must never contain.
func (e *env) remember(secret string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.secrets = append(e.secrets, secret)
}

func (e *env) checkLogs() {
	e.mu.Lock()
	defer e.mu.Unlock()
	logs := e.logs.String()
	for _, s := range append(e.secrets, keywardtest.Pepper.Reveal()) {
		if strings.Contains(logs, s) {
			e.t.Errorf("a secret (%s...) appears in the logs", s[:12])
		}
	}
}

// httpClient returns a client whose exchanges are recorded.
func (e *env) httpClient() *http.Client { return &http.Client{Transport: e.rec} }

// client returns an API client authenticating with key.
func (e *env) client(key keyward.Secret) *client.Client {
	c := client.New(e.ts.URL, key)
	c.HTTPClient = e.httpClient()
	return c
}

// as returns a context acting as the key k, for setting up fixtures
// through the admin service in process.
func (e *env) as(k *keyward.Key) context.Context {
	return keyward.NewContextWithIdentity(e.t.Context(), keyward.IdentityOf(k, ""))
}

// rootCtx acts as the root key.
func (e *env) rootCtx() context.Context { return e.as(e.rootKey) }

// mustKey creates a key through the admin service acting as the root key.
func (e *env) mustKey(c keyward.KeyCreate) *keyward.CreatedKey {
	e.t.Helper()
	k, err := e.svc.Keys.CreateKey(e.rootCtx(), c)
	if err != nil {
		e.t.Fatalf("create %s key: %v", c.Role, err)
	}
	e.remember(k.Secret)
	return k
}

func (e *env) mustAccount(name string) *keyward.Account {
	e.t.Helper()
	a, err := e.svc.Tenancy.CreateAccount(e.rootCtx(), keyward.AccountCreate{Name: name})
	if err != nil {
		e.t.Fatalf("create account %q: %v", name, err)
	}
	return a
}

func (e *env) mustUser(accountID, name string) *keyward.User {
	e.t.Helper()
	u, err := e.svc.Tenancy.CreateUser(e.rootCtx(), accountID, keyward.UserCreate{Name: name})
	if err != nil {
		e.t.Fatalf("create user %q: %v", name, err)
	}
	return u
}

// response is a raw HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// problem decodes the body as a problem, checking its media type.
func (r *response) problem(t *testing.T) *keyward.Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != httpapi.ProblemContentType {
		t.Fatalf("Content-Type = %q, want %q (status %d, body %s)", ct, httpapi.ProblemContentType, r.status, r.body)
	}
	var p keyward.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("decode problem %s: %v", r.body, err)
	}
	return &p
}

// decode decodes the body into v.
func (r *response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// request is a raw request: headers are set as given, so tests can send
// no key, two keys, or anything else.
type request struct {
	method, path string
	header       map[string]string
	body         string
}

func bearer(key string) map[string]string {
	if key == "" {
		return nil
	}
	return map[string]string{"Authorization": "Bearer " + key}
}

func (e *env) send(r request) *response {
	e.t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(e.t.Context(), r.method, e.ts.URL+r.path, body)
	if err != nil {
		e.t.Fatalf("new request: %v", err)
	}
	if r.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	resp, err := e.httpClient().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("read body: %v", err)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: b}
}

// do sends method path with key as a Bearer credential and body as JSON.
func (e *env) do(method, path string, key keyward.Secret, body string) *response {
	e.t.Helper()
	return e.send(request{method: method, path: path, header: bearer(key.Reveal()), body: body})
}

// exchange is one recorded request and response.
type exchange struct {
	method, path string
	reqBody      []byte
	status       int
	contentType  string
	body         []byte
}

// recorder is an http.RoundTripper that records every exchange.
type recorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	log  []exchange
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	resp, err := r.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	r.mu.Lock()
	r.log = append(r.log, exchange{
		method: req.Method, path: req.URL.EscapedPath(), reqBody: reqBody,
		status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), body: b,
	})
	r.mu.Unlock()
	return resp, nil
}

func (r *recorder) exchanges() []exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]exchange(nil), r.log...)
}
