package unkeyv2

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/admin"
	"github.com/keyward/keyward/credits"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/ratelimit"
	"github.com/keyward/keyward/verify"
)

// clock is the time of the engine and the services, moved by the tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a real keyward (SQLite store, engine, admin services) serving
// the Unkey v2 API.
type env struct {
	t      *testing.T
	url    string
	svc    admin.Services
	engine *verify.Engine
	root   string // the root key
	rootC  context.Context
	clock  *clock
	store  interface{ Close() error }
	logs   *keywardtest.SyncBuffer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	store := keywardtest.NewSQLiteStore(t)
	hasher := keywardtest.NewHasher(t)
	logs := &keywardtest.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	clk := &clock{t: time.Now()}
	ledger := credits.NewStoreLedger(store)
	engine, err := verify.New(verify.Config{Store: store, Hasher: hasher, Credits: ledger, Logger: log, Now: clk.now})
	if err != nil {
		t.Fatalf("verify.New: %v", err)
	}
	t.Cleanup(func() { engine.Close(context.Background()) })
	svc := admin.New(admin.Config{Store: store, Hasher: hasher, Verifier: engine, Credits: ledger, Sealer: keywardtest.NewKeyring(t), Logger: log, Now: clk.now})
	srv := New(Config{Tenancy: svc.Tenancy, Keys: svc.Keys, Roles: svc.Roles, Engine: engine, Denied: svc.Audit, Logger: log,
		Limiter: ratelimit.NewLocal(ratelimit.LocalOptions{}), Now: clk.now})
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	secret, k, err := svc.Keys.Bootstrap(t.Context())
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	e := &env{t: t, url: ts.URL, svc: svc, engine: engine, root: secret.Reveal(), clock: clk, store: store, logs: logs}
	e.rootC = keyward.NewContextWithIdentity(context.Background(), keyward.IdentityOf(k, ""))
	t.Cleanup(func() {
		if strings.Contains(logs.String(), e.root) {
			t.Errorf("the root key was logged")
		}
	})
	return e
}

// answer is a decoded response.
type answer struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// call posts body (a string is sent as is) to /v2/<operation> with key.
func (e *env) call(key, operation string, body any) answer {
	e.t.Helper()
	var b []byte
	switch v := body.(type) {
	case string:
		b = []byte(v)
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			e.t.Fatal(err)
		}
	}
	req, err := http.NewRequest(http.MethodPost, e.url+"/v2/"+operation, bytes.NewReader(b))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	return e.do(req)
}

func (e *env) do(req *http.Request) answer {
	e.t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	a := answer{status: res.StatusCode, header: res.Header, raw: raw}
	if err := json.Unmarshal(raw, &a.body); err != nil {
		e.t.Fatalf("%s %s: body is not a JSON object: %s", req.Method, req.URL.Path, raw)
	}
	return a
}

// ok calls an operation that must succeed and returns its data.
func (e *env) ok(key, operation string, body any) any {
	e.t.Helper()
	a := e.call(key, operation, body)
	if a.status != http.StatusOK {
		e.t.Fatalf("%s: status %d: %s", operation, a.status, a.raw)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		e.t.Fatalf("%s: Content-Type %q", operation, ct)
	}
	m, _ := a.body["meta"].(map[string]any)
	if id, _ := m["requestId"].(string); !strings.HasPrefix(id, "req_") {
		e.t.Fatalf("%s: meta.requestId missing: %s", operation, a.raw)
	}
	return a.body["data"]
}

// obj calls an operation that must succeed with an object.
func (e *env) obj(key, operation string, body any) map[string]any {
	e.t.Helper()
	d, ok := e.ok(key, operation, body).(map[string]any)
	if !ok {
		e.t.Fatalf("%s: data is not an object", operation)
	}
	return d
}

// refused calls an operation that must fail with status, checks the error
// shape and returns the error object.
func (e *env) refused(key, operation string, body any, status int) map[string]any {
	e.t.Helper()
	a := e.call(key, operation, body)
	return e.checkError(a, operation, status)
}

func (e *env) checkError(a answer, operation string, status int) map[string]any {
	e.t.Helper()
	if a.status != status {
		e.t.Fatalf("%s: status %d, want %d: %s", operation, a.status, status, a.raw)
	}
	wantCT := "application/json"
	if status == http.StatusTooManyRequests {
		wantCT = keyward.ProblemContentType
	}
	if ct := a.header.Get("Content-Type"); ct != wantCT {
		e.t.Fatalf("%s: Content-Type %q, want %q", operation, ct, wantCT)
	}
	m, _ := a.body["meta"].(map[string]any)
	if id, _ := m["requestId"].(string); id == "" || id != a.header.Get("X-Request-Id") {
		e.t.Fatalf("%s: meta.requestId %q, header %q", operation, id, a.header.Get("X-Request-Id"))
	}
	er, ok := a.body["error"].(map[string]any)
	if !ok {
		e.t.Fatalf("%s: no error object: %s", operation, a.raw)
	}
	for _, f := range []string{"title", "detail", "type"} {
		if s, _ := er[f].(string); s == "" {
			e.t.Fatalf("%s: error.%s missing: %s", operation, f, a.raw)
		}
	}
	if int(er["status"].(float64)) != status {
		e.t.Fatalf("%s: error.status %v", operation, er["status"])
	}
	if _, ok := er["errors"].([]any); !ok {
		e.t.Fatalf("%s: error.errors is not a list: %s", operation, a.raw)
	}
	if _, ok := a.body["data"]; ok {
		e.t.Fatalf("%s: an error carries data: %s", operation, a.raw)
	}
	return er
}

// location returns the location of the first entry of an error's errors.
func location(er map[string]any) string {
	list, _ := er["errors"].([]any)
	if len(list) == 0 {
		return ""
	}
	l, _ := list[0].(map[string]any)
	s, _ := l["location"].(string)
	return s
}

// api creates an API (an account) and returns its id.
func (e *env) api(name string) string {
	e.t.Helper()
	return e.obj(e.root, "apis.createApi", map[string]any{"name": name})["apiId"].(string)
}

// createKey creates a key and returns its id and secret.
func (e *env) createKey(body map[string]any) (string, string) {
	e.t.Helper()
	d := e.obj(e.root, "keys.createKey", body)
	return d["keyId"].(string), d["key"].(string)
}

func (e *env) verify(body map[string]any) map[string]any {
	e.t.Helper()
	return e.obj(e.root, "keys.verifyKey", body)
}

// adminKey creates an account_admin key of account holding permissions.
func (e *env) adminKey(account string, permissions ...string) string {
	e.t.Helper()
	k, err := e.svc.Keys.CreateKey(e.rootC, keyward.KeyCreate{AccountID: account, Role: keyward.RoleAccountAdmin, Permissions: permissions})
	if err != nil {
		e.t.Fatal(err)
	}
	return k.Secret
}

func TestEnvelopeErrors(t *testing.T) {
	e := newEnv(t)
	api := e.api("acme")

	t.Run("no key", func(t *testing.T) {
		a := e.call("", "apis.getApi", map[string]any{"apiId": api})
		e.checkError(a, "no key", http.StatusUnauthorized)
		if a.header.Get("WWW-Authenticate") == "" {
			t.Fatal("a 401 without WWW-Authenticate")
		}
	})
	t.Run("unknown key", func(t *testing.T) {
		er := e.refused("kw_root_"+strings.Repeat("A", 49), "apis.getApi", map[string]any{"apiId": api}, http.StatusUnauthorized)
		if er["detail"] != "invalid API key" {
			t.Fatalf("detail %q", er["detail"])
		}
	})
	t.Run("GET", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, e.url+"/v2/apis.getApi", nil)
		req.Header.Set("Authorization", "Bearer "+e.root)
		a := e.do(req)
		e.checkError(a, "GET", http.StatusBadRequest)
		if a.header.Get("Allow") != http.MethodPost {
			t.Fatalf("Allow %q", a.header.Get("Allow"))
		}
	})
	t.Run("unknown operation", func(t *testing.T) {
		for _, op := range []string{"keys.frobnicate", "ratelimit.multiLimit", "", "keys.createKey/x"} {
			er := e.refused(e.root, op, map[string]any{}, http.StatusBadRequest)
			if location(er) != "path" || !strings.Contains(er["detail"].(string), "not served") {
				t.Fatalf("%q: %v", op, er)
			}
		}
	})
	t.Run("a key as the operation is not echoed", func(t *testing.T) {
		raw := e.root
		a := e.call(e.root, raw, map[string]any{})
		e.checkError(a, "key path", http.StatusBadRequest)
		if bytes.Contains(a.raw, []byte(raw)) {
			t.Fatalf("the key was echoed: %s", a.raw)
		}
	})
	t.Run("unknown field", func(t *testing.T) {
		er := e.refused(e.root, "keys.createKey", map[string]any{"apiId": api, "bogus": 1}, http.StatusBadRequest)
		if location(er) != "body.bogus" || !strings.Contains(er["detail"].(string), `"bogus"`) {
			t.Fatalf("%v", er)
		}
		er = e.refused(e.root, "keys.createKey", map[string]any{"apiId": api, "credits": map[string]any{"remaining": 1, "extra": true}}, http.StatusBadRequest)
		if !strings.Contains(er["detail"].(string), `"extra"`) {
			t.Fatalf("%v", er)
		}
	})
	t.Run("wrong type", func(t *testing.T) {
		er := e.refused(e.root, "apis.getApi", map[string]any{"apiId": 5}, http.StatusBadRequest)
		if location(er) != "body.apiId" {
			t.Fatalf("%v", er)
		}
		er = e.refused(e.root, "keys.createKey", map[string]any{"apiId": api, "credits": map[string]any{"remaining": "lots"}}, http.StatusBadRequest)
		if location(er) != "body.credits.remaining" {
			t.Fatalf("%v", er)
		}
	})
	t.Run("missing required", func(t *testing.T) {
		for op, field := range map[string]string{"apis.createApi": "name", "apis.getApi": "apiId", "apis.deleteApi": "apiId", "apis.listKeys": "apiId", "keys.createKey": "apiId", "keys.getKey": "keyId", "keys.deleteKey": "keyId", "keys.updateKey": "keyId", "keys.whoami": "key", "keys.verifyKey": "key",
			"keys.rerollKey": "keyId", "keys.updateCredits": "keyId", "keys.addPermissions": "keyId", "keys.removeRoles": "keyId", "keys.migrateKeys": "migrationId"} {
			er := e.refused(e.root, op, map[string]any{}, http.StatusBadRequest)
			if location(er) != "body."+field {
				t.Fatalf("%s: %v", op, er)
			}
		}
	})
	t.Run("not one object", func(t *testing.T) {
		for _, body := range []string{`[]`, `{"apiId": "x"} {}`, `{"apiId":`, `"x"`} {
			e.refused(e.root, "apis.getApi", body, http.StatusBadRequest)
		}
	})
	t.Run("too large", func(t *testing.T) {
		body := `{"name": "` + strings.Repeat("a", maxBodyBytes) + `"}`
		e.refused(e.root, "apis.createApi", body, http.StatusRequestEntityTooLarge)
	})
	t.Run("not found", func(t *testing.T) {
		e.refused(e.root, "apis.getApi", map[string]any{"apiId": "acc_nope"}, http.StatusNotFound)
		e.refused(e.root, "keys.getKey", map[string]any{"keyId": "key_nope"}, http.StatusNotFound)
	})
	t.Run("forbidden is refused and audited", func(t *testing.T) {
		adm := e.adminKey(api)
		e.refused(adm, "apis.createApi", map[string]any{"name": "other"}, http.StatusForbidden)
		list, err := e.svc.Audit.AuditEntries(e.rootC, keyward.AuditFilter{}, keyward.Page{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		denied := 0
		for _, en := range list.Items {
			if en.Action == "auth.denied" && bytes.Contains(en.Details, []byte("apis.createApi")) {
				denied++
			}
		}
		if denied == 0 {
			t.Fatal("the refusal was not audited")
		}
	})
	t.Run("429 is problem+json", func(t *testing.T) {
		s := New(Config{Tenancy: e.svc.Tenancy, Keys: e.svc.Keys, Engine: &verify.Engine{}})
		w := httptest.NewRecorder()
		s.writeError(w, httptest.NewRequest(http.MethodPost, "/v2/keys.verifyKey", nil), "req_1", keyward.Errorf(keyward.ERATELIMITED, "slow down"))
		a := answer{status: w.Code, header: w.Header(), raw: w.Body.Bytes()}
		json.Unmarshal(a.raw, &a.body)
		a.header.Set("X-Request-Id", "req_1")
		e.checkError(a, "429", http.StatusTooManyRequests)
	})
}

// TestOperationsDocumented keeps docs/unkey.md naming every operation
// served.
func TestOperationsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/unkey.md")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	s := New(Config{Tenancy: e.svc.Tenancy, Keys: e.svc.Keys, Roles: e.svc.Roles, Engine: &verify.Engine{}, Limiter: ratelimit.NewLocal(ratelimit.LocalOptions{})})
	ops := s.Operations()
	if len(ops) != 30 {
		t.Fatalf("%d operations: %v", len(ops), ops)
	}
	for _, op := range ops {
		_, name, _ := strings.Cut(op, ".")
		if !bytes.Contains(doc, []byte("`"+op+"`")) && !bytes.Contains(doc, []byte("`"+name+"`")) {
			t.Errorf("docs/unkey.md does not name %s", op)
		}
	}
}
