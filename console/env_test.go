package console_test

import (
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/admin"
	"github.com/keyward/keyward/console"
	"github.com/keyward/keyward/credits"
	"github.com/keyward/keyward/httpapi"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/verify"
)

// env is a console and the API over one SQLite store, served by an
// httptest server: /console/ by the console, the rest by the API.
type env struct {
	t       testing.TB
	store   keyward.Store
	svc     admin.Services
	console *console.Console
	ts      *httptest.Server
	logs    *keywardtest.SyncBuffer
	signals *signalSink
	clock   *clock
	root    string
	keyring *keyring.Keyring // seals audit details and webhook secrets

	mu      sync.Mutex
	secrets []string
}

type envOptions struct {
	tls     bool
	trusted []netip.Prefix
}

// clock is the console's injected clock: the time plus what the test
// advanced it by, so sessions expire without waiting and keys changed by
// the services (with the real time) read as they are.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// signalSink records the verification engine's signals: what abuse
// detection counts.
type signalSink struct {
	mu  sync.Mutex
	all []keyward.Signal
}

func (s *signalSink) Signal(sig keyward.Signal) {
	s.mu.Lock()
	s.all = append(s.all, sig)
	s.mu.Unlock()
}

func (s *signalSink) failures() []keyward.Signal {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []keyward.Signal
	for _, sig := range s.all {
		if sig.Kind == keyward.SignalFailure {
			out = append(out, sig)
		}
	}
	return out
}

func newEnv(t testing.TB) *env { return newEnvWith(t, envOptions{}) }

func newEnvWith(t testing.TB, o envOptions) *env {
	t.Helper()
	e := &env{t: t, store: keywardtest.NewSQLiteStore(t), logs: &keywardtest.SyncBuffer{}, signals: &signalSink{}, clock: &clock{}}
	hasher := keywardtest.NewHasher(t)
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ledger := credits.NewStoreLedger(e.store)
	engine, err := verify.New(verify.Config{Store: e.store, Hasher: hasher, Credits: ledger, Signals: e.signals, Logger: log})
	if err != nil {
		t.Fatalf("verify.New: %v", err)
	}
	t.Cleanup(func() { engine.Close(context.Background()) })
	e.keyring = keywardtest.NewKeyring(t)
	e.svc = admin.New(admin.Config{Store: e.store, Hasher: hasher, Verifier: engine, Credits: ledger, Sealer: e.keyring, Logger: log})
	api := httpapi.New(httpapi.Config{
		Services: httpapi.Services{Tenancy: e.svc.Tenancy, Roles: e.svc.Roles, Keys: e.svc.Keys, Credentials: e.svc.Credentials, Webhooks: e.svc.Webhooks, Audit: e.svc.Audit, Abuse: e.svc.Abuse, Portal: e.svc.Portal},
		Engine:   engine, Store: e.store, Logger: log, Version: "test", TrustedProxies: o.trusted,
	})
	e.console = console.New(console.Config{
		Tenancy: e.svc.Tenancy, Keys: e.svc.Keys, Roles: e.svc.Roles, Abuse: e.svc.Abuse, Hooks: e.svc.Webhooks, Branding: e.svc.Portal, Audit: e.svc.Audit, Engine: engine,
		TrustedProxies: o.trusted, IdleTimeout: 10 * time.Minute, MaxAge: time.Hour, Now: e.clock.Now, Logger: log,
	})
	mux := http.NewServeMux()
	mux.Handle(console.Path+"/", e.console)
	mux.Handle(console.PortalPath+"/", console.NewPortal(console.PortalConfig{Sessions: e.svc.Portal, Denied: e.svc.Audit, TrustedProxies: o.trusted, Now: e.clock.Now, Logger: log}))
	mux.Handle("/", api)
	if o.tls {
		e.ts = httptest.NewTLSServer(mux)
	} else {
		e.ts = httptest.NewServer(mux)
	}
	t.Cleanup(e.ts.Close)
	t.Cleanup(e.checkLogs)
	secret, _, err := e.svc.Keys.Bootstrap(t.Context())
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	e.root = secret.Reveal()
	e.remember(e.root)
	return e
}

// remember notes a secret the logs must never hold.
func (e *env) remember(secret string) {
	e.mu.Lock()
	e.secrets = append(e.secrets, secret)
	e.mu.Unlock()
}

// checkLogs fails the test if a remembered secret reached the logs.
func (e *env) checkLogs() {
	e.mu.Lock()
	defer e.mu.Unlock()
	logs := e.logs.String()
	for _, s := range e.secrets {
		if strings.Contains(logs, s) {
			e.t.Errorf("a secret (%.12s...) appears in the logs", s)
		}
	}
}

func (e *env) rootCtx() context.Context {
	return keyward.NewContextWithIdentity(e.t.Context(), &keyward.Identity{Role: keyward.RoleRoot})
}

func (e *env) account(name string) *keyward.Account {
	e.t.Helper()
	a, err := e.svc.Tenancy.CreateAccount(e.rootCtx(), keyward.AccountCreate{Name: name})
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

func (e *env) user(accountID, name string) *keyward.User {
	e.t.Helper()
	u, err := e.svc.Tenancy.CreateUser(e.rootCtx(), accountID, keyward.UserCreate{Name: name})
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

func (e *env) key(in keyward.KeyCreate) *keyward.CreatedKey {
	e.t.Helper()
	k, err := e.svc.Keys.CreateKey(e.rootCtx(), in)
	if err != nil {
		e.t.Fatal(err)
	}
	e.remember(k.Secret)
	return k
}

// browser is one cookie jar that does not follow redirects.
type browser struct {
	e      *env
	client *http.Client
	csrf   string // the last CSRF token seen on a page
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Transport: e.ts.Client().Transport, Jar: jar}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{e: e, client: c}
}

type page struct {
	status int
	header http.Header
	body   string
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) do(req *http.Request) page {
	b.e.t.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if m := csrfRE.FindStringSubmatch(string(body)); m != nil {
		b.csrf = m[1]
	}
	return page{resp.StatusCode, resp.Header, string(body)}
}

func (b *browser) get(path string) page {
	b.e.t.Helper()
	req, _ := http.NewRequest("GET", b.e.ts.URL+path, nil)
	return b.do(req)
}

// post submits form to path with the last CSRF token seen unless form
// sets "csrf" itself.
func (b *browser) post(path string, form url.Values) page {
	b.e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf)
	}
	req, _ := http.NewRequest("POST", b.e.ts.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// signIn signs in with key and fails the test unless it succeeds.
func (b *browser) signIn(key string) {
	b.e.t.Helper()
	b.get("/console/sign-in")
	p := b.post("/console/sign-in", url.Values{"key": {key}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/console/keys" {
		b.e.t.Fatalf("sign-in: status %d, location %q, body %.300s", p.status, p.header.Get("Location"), p.body)
	}
	b.e.remember(b.cookie(console.SessionCookie).Value) // a bearer credential too
	b.get("/console/keys")                              // picks up the session's CSRF token
}

func (b *browser) cookie(name string) *http.Cookie {
	u, _ := url.Parse(b.e.ts.URL + "/console/")
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

var secretRE = regexp.MustCompile(`id="secret" value="([^"]+)"`)

// secretOf returns the key shown on a created-key page.
func secretOf(t *testing.T, p page) string {
	t.Helper()
	m := secretRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no secret on the page (status %d): %.500s", p.status, p.body)
	}
	return html.UnescapeString(m[1])
}

// setCookie returns the Set-Cookie header of p for name.
func setCookie(p page, name string) *http.Cookie {
	for _, c := range (&http.Response{Header: p.header}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func mustRE(s string) *regexp.Regexp { return regexp.MustCompile(s) }
