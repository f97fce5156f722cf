package client_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/admin"
	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/credits"
	"github.com/keyward/keyward/httpapi"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/verify"
)

// env is a whole keyward behind a real HTTP server (SQLite store,
// verification engine, admin service, API) with a root key and one account
// with a user. Its logs are checked for every secret when the test ends.
type env struct {
	t       *testing.T
	svc     admin.Services
	handler http.Handler
	ts      *httptest.Server
	root    keyward.Secret
	rootKey *keyward.Key
	acct    *keyward.Account
	user    *keyward.User
	logs    *keywardtest.SyncBuffer

	mu      sync.Mutex
	secrets []string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	store := keywardtest.NewSQLiteStore(t)
	hasher := keywardtest.NewHasher(t)
	e := &env{t: t, logs: &keywardtest.SyncBuffer{}}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ledger := credits.NewStoreLedger(store)
	engine, err := verify.New(verify.Config{Store: store, Hasher: hasher, Credits: ledger, Logger: log})
	if err != nil {
		t.Fatalf("verify.New: %v", err)
	}
	t.Cleanup(func() { engine.Close(context.Background()) })
	e.svc = admin.New(admin.Config{Store: store, Hasher: hasher, Verifier: engine, Credits: ledger, Logger: log})
	e.handler = httpapi.New(httpapi.Config{Services: httpapi.Services{Tenancy: e.svc.Tenancy, Roles: e.svc.Roles, Keys: e.svc.Keys, Credentials: e.svc.Credentials, Webhooks: e.svc.Webhooks, Audit: e.svc.Audit, Abuse: e.svc.Abuse}, Engine: engine, Store: store, Logger: log, Version: "test"})
	e.ts = httptest.NewServer(e.handler)
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
	e.user, err = e.svc.Tenancy.CreateUser(e.rootCtx(), e.acct.ID, keyward.UserCreate{Name: "alice"})
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
	return e.key(keyward.KeyCreate{AccountID: e.acct.ID, UserID: e.user.ID, Role: keyward.RoleUser, Name: "laptop", Permissions: perms})
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

// verifier returns a client of the env authenticating with key whose
// verify calls are counted by the returned transport.
func (e *env) verifier(key keyward.Secret) (*client.Client, *countingTransport) {
	rt := &countingTransport{next: http.DefaultTransport}
	c := client.New(e.ts.URL, key)
	c.HTTPClient = &http.Client{Transport: rt}
	return c, rt
}

// countingTransport counts the verify calls that go through it to the
// real transport. With gate set, each call first waits for gate to close.
type countingTransport struct {
	next  http.RoundTripper
	calls atomic.Int64
	gate  chan struct{}
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == "/v1/keys/verify" {
		c.calls.Add(1)
		if c.gate != nil {
			<-c.gate
		}
	}
	return c.next.RoundTrip(r)
}

func (c *countingTransport) n() int { return int(c.calls.Load()) }
