package n8n

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/provider"
)

// fake is an n8n that answers the requests the provider sends the way n8n
// 2.8 does (statuses and bodies as observed), with knobs for the quirks
// other versions have.
type fake struct {
	t *testing.T

	mu sync.Mutex
	// itemsShape makes GET /rest/api-keys answer {"data": {"items": [...]}}
	// instead of {"data": [...]}.
	itemsShape bool
	// raceLabel is a label that GET /rest/api-keys does not show until a
	// POST of it fails, as if created by someone else meanwhile.
	raceLabel string
	// loginStatus, when set, is the status of every login.
	loginStatus int
	// refuseSessions makes n8n refuse every session it issued.
	refuseSessions bool
	logins         int
	session        string // the valid n8n-auth cookie
	keys           []apiKey
	nextID         int
}

const (
	fakeEmail    = "owner@example.test"
	fakePassword = "Secret-1"
	fakeOwnerID  = "owner-id"
)

func newFake(t *testing.T) (*fake, *httptest.Server) {
	f := &fake{t: t}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fake) loginCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logins
}

// expireSession makes n8n forget the current session, as after its
// seven days or a password change.
func (f *fake) expireSession() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.session = ""
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	route := r.Method + " " + r.URL.Path
	switch route {
	case "GET /healthz":
		reply(w, 200, map[string]string{"status": "ok"})
		return
	case "GET /rest/settings":
		reply(w, 200, map[string]any{"data": map[string]any{
			"settingsMode":   "public",
			"userManagement": map[string]any{"authenticationMethod": "email", "showSetupOnFirstLoad": false},
		}})
		return
	case "POST /rest/login":
		f.logins++
		var b struct {
			Email    string `json:"emailOrLdapLoginId"`
			Password string `json:"password"`
		}
		_ = json.NewDecoder(r.Body).Decode(&b)
		switch {
		case f.loginStatus == http.StatusTooManyRequests:
			reply(w, 429, map[string]any{"message": "Too many requests"})
		case b.Email != fakeEmail || b.Password != fakePassword:
			reply(w, 401, map[string]any{"code": 401, "message": "Wrong username or password. Do you have caps lock on?"})
		default:
			f.session = fmt.Sprintf("session-%d", f.logins)
			http.SetCookie(w, &http.Cookie{Name: cookieName, Value: f.session, Path: "/", HttpOnly: true, MaxAge: 604800})
			reply(w, 200, map[string]any{"data": map[string]any{"id": fakeOwnerID, "email": fakeEmail, "role": "global:owner"}})
		}
		return
	case "GET /api/v1/workflows":
		key := r.Header.Get("X-N8N-API-KEY")
		for _, k := range f.keys {
			if k.RawAPIKey == key {
				reply(w, 200, map[string]any{"data": []any{}, "nextCursor": nil})
				return
			}
		}
		reply(w, 401, map[string]string{"message": "unauthorized"})
		return
	}

	if c, err := r.Cookie(cookieName); err != nil || f.session == "" || c.Value != f.session || f.refuseSessions {
		reply(w, 401, map[string]string{"status": "error", "message": "Unauthorized"})
		return
	}
	switch {
	case route == "GET /rest/api-keys":
		listed := make([]apiKey, 0, len(f.keys))
		for _, k := range f.keys {
			if k.Label == f.raceLabel {
				continue
			}
			k.RawAPIKey = ""
			listed = append(listed, k)
		}
		if f.itemsShape {
			reply(w, 200, map[string]any{"data": map[string]any{"items": listed, "count": len(listed)}})
		} else {
			reply(w, 200, map[string]any{"data": listed})
		}
	case route == "GET /rest/api-keys/scopes":
		reply(w, 200, map[string]any{"data": []string{"workflow:read", "workflow:list", "workflow:create"}})
	case route == "POST /rest/api-keys":
		var b struct {
			Label     string   `json:"label"`
			Scopes    []string `json:"scopes"`
			ExpiresAt *float64 `json:"expiresAt"`
		}
		_ = json.NewDecoder(r.Body).Decode(&b)
		for _, k := range f.keys {
			if k.Label == b.Label {
				f.raceLabel = "" // the other creation shows now
				reply(w, 500, map[string]any{"code": 0, "message": "There is already an entry with this name"})
				return
			}
		}
		if len(b.Scopes) == 0 {
			reply(w, 400, map[string]any{"code": "too_small", "message": "Array must contain at least 1 element(s)", "path": []string{"scopes"}})
			return
		}
		f.nextID++
		raw := fmt.Sprintf("raw-key-%d-abcd", f.nextID)
		k := apiKey{ID: fmt.Sprintf("id%d", f.nextID), Label: b.Label, APIKey: "******abcd", RawAPIKey: raw, Scopes: b.Scopes, ExpiresAt: b.ExpiresAt, CreatedAt: "2026-11-23T15:18:32.165Z"}
		f.keys = append(f.keys, k)
		reply(w, 200, map[string]any{"data": k})
	case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/rest/api-keys/"):
		id := strings.TrimPrefix(r.URL.Path, "/rest/api-keys/")
		for i, k := range f.keys {
			if k.ID == id {
				f.keys = append(f.keys[:i], f.keys[i+1:]...)
				break
			}
		}
		// n8n answers 200 whether or not it had the key.
		reply(w, 200, map[string]any{"data": map[string]bool{"success": true}})
	default:
		f.t.Errorf("fake n8n: unexpected %s", route)
		reply(w, 404, map[string]string{"message": "not found"})
	}
}

func newProvider(t *testing.T, url, password string, timeout time.Duration) *Provider {
	t.Helper()
	p, err := New(provider.Connection{BaseURL: url, Username: fakeEmail, Password: keyward.Secret(password), Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := keyward.ErrorCode(err); got != code {
		t.Fatalf("error %v: code %q, want %q", err, got, code)
	}
}

func TestNewRefusesIncompleteConnections(t *testing.T) {
	for _, c := range []provider.Connection{
		{BaseURL: "n8n.example.com", Username: fakeEmail, Password: "x"},
		{BaseURL: "https://n8n.example.com", Password: "x"},
		{BaseURL: "https://n8n.example.com", Username: fakeEmail},
	} {
		_, err := New(c)
		wantCode(t, err, keyward.EINVALID)
	}
}

func TestDecodeKeysAcceptsBothShapes(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		ok         bool
		ids        []string
	}{
		{"data list", `{"data":[{"id":"a","label":"one","apiKey":"******abcd","expiresAt":1795450712},{"id":"b","label":"two","expiresAt":null}]}`, true, []string{"a", "b"}},
		{"data items", `{"data":{"items":[{"id":"a","label":"one"}],"count":1}}`, true, []string{"a"}},
		{"empty list", `{"data":[]}`, true, nil},
		{"empty items", `{"data":{"items":[]}}`, true, nil},
		{"no data", `{"items":[]}`, false, nil},
		{"data object without items", `{"data":{"id":"a"}}`, false, nil},
		{"not json", `<html>`, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys, ok := decodeKeys([]byte(tc.body))
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			var ids []string
			for _, k := range keys {
				ids = append(ids, k.ID)
			}
			if strings.Join(ids, ",") != strings.Join(tc.ids, ",") {
				t.Fatalf("ids %v, want %v", ids, tc.ids)
			}
		})
	}
}

func TestListBothShapes(t *testing.T) {
	for _, items := range []bool{false, true} {
		t.Run(fmt.Sprintf("items=%v", items), func(t *testing.T) {
			f, srv := newFake(t)
			f.itemsShape = items
			p := newProvider(t, srv.URL, fakePassword, 0)
			exp := time.Now().Add(time.Hour).Truncate(time.Second)
			if _, err := p.Create(context.Background(), provider.NewToken{Name: "ci", Scopes: []string{"workflow:read"}, ExpiresAt: &exp}); err != nil {
				t.Fatal(err)
			}
			tokens, err := p.List(context.Background(), "")
			if err != nil {
				t.Fatal(err)
			}
			if len(tokens) != 1 {
				t.Fatalf("listed %d tokens, want 1: %+v", len(tokens), tokens)
			}
			tok := tokens[0]
			if tok.Name != "ci" || tok.User != fakeEmail || tok.Hint != "abcd" || tok.ExpiresAt == nil || !tok.ExpiresAt.Equal(exp) || tok.CreatedAt.IsZero() {
				t.Fatalf("listed %+v", tok)
			}
		})
	}
}

func TestSessionIsReused(t *testing.T) {
	f, srv := newFake(t)
	p := newProvider(t, srv.URL, fakePassword, 0)
	ctx := context.Background()
	if err := p.Check(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := p.Create(ctx, provider.NewToken{Name: "a", Scopes: []string{"workflow:read"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.List(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if err := p.Revoke(ctx, "", c.ExternalID); err != nil {
		t.Fatal(err)
	}
	if err := p.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.loginCount(); n != 1 {
		t.Fatalf("%d logins, want 1", n)
	}

	// Concurrent callers without a session share one login.
	f2, srv2 := newFake(t)
	p2 := newProvider(t, srv2.URL, fakePassword, 0)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := p2.List(ctx, ""); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := f2.loginCount(); n != 1 {
		t.Fatalf("%d logins by concurrent callers, want 1", n)
	}
}

func TestSessionRenewedOnceAfter401(t *testing.T) {
	f, srv := newFake(t)
	p := newProvider(t, srv.URL, fakePassword, 0)
	ctx := context.Background()
	if _, err := p.List(ctx, ""); err != nil {
		t.Fatal(err)
	}
	f.expireSession()
	if _, err := p.List(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if n := f.loginCount(); n != 2 {
		t.Fatalf("%d logins, want 2 (one, and one after n8n refused the session)", n)
	}
	if _, err := p.List(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if n := f.loginCount(); n != 2 {
		t.Fatalf("%d logins, want still 2", n)
	}
}

func TestFreshSessionRefusedIsNotRetried(t *testing.T) {
	f, srv := newFake(t)
	f.refuseSessions = true
	p := newProvider(t, srv.URL, fakePassword, 0)
	_, err := p.List(context.Background(), "")
	wantCode(t, err, keyward.EUNAUTHORIZED)
	if n := f.loginCount(); n != 1 {
		t.Fatalf("%d logins, want 1: a session refused right after its login is not worth another", n)
	}
}

func TestLoginRefused(t *testing.T) {
	f, srv := newFake(t)
	p := newProvider(t, srv.URL, "wrong", 0)
	err := p.Check(context.Background())
	wantCode(t, err, keyward.EUNAUTHORIZED)
	if msg := keyward.ErrorMessage(err); !strings.Contains(msg, "refused the login of "+fakeEmail) || strings.Contains(msg, "wrong") {
		t.Fatalf("message %q", msg)
	}
	// A refused login is not retried, and calls within the next minute
	// are answered from memory: each attempt would spend one of the
	// owner's five logins a minute.
	for range 3 {
		_, err = p.List(context.Background(), "")
		wantCode(t, err, keyward.EUNAUTHORIZED)
	}
	if n := f.loginCount(); n != 1 {
		t.Fatalf("%d logins, want 1", n)
	}
}

func TestLoginRateLimited(t *testing.T) {
	f, srv := newFake(t)
	f.loginStatus = http.StatusTooManyRequests
	p := newProvider(t, srv.URL, fakePassword, 0)
	err := p.Check(context.Background())
	wantCode(t, err, keyward.EUPSTREAM)
	if msg := keyward.ErrorMessage(err); !strings.Contains(msg, "5 logins per minute") {
		t.Fatalf("message %q", msg)
	}
}

func TestCreateConflictWhenLabelTaken(t *testing.T) {
	_, srv := newFake(t)
	p := newProvider(t, srv.URL, fakePassword, 0)
	ctx := context.Background()
	if _, err := p.Create(ctx, provider.NewToken{Name: "dup", Scopes: []string{"workflow:read"}}); err != nil {
		t.Fatal(err)
	}
	_, err := p.Create(ctx, provider.NewToken{Name: "dup", Scopes: []string{"workflow:read"}})
	wantCode(t, err, keyward.ECONFLICT)
}

func TestCreateConflictOnRace(t *testing.T) {
	// Someone else creates the label between the provider's list and its
	// POST: n8n answers 500, which must come back as ECONFLICT.
	f, srv := newFake(t)
	p := newProvider(t, srv.URL, fakePassword, 0)
	ctx := context.Background()
	if _, err := p.Create(ctx, provider.NewToken{Name: "raced", Scopes: []string{"workflow:read"}}); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.raceLabel = "raced"
	f.mu.Unlock()
	_, err := p.Create(ctx, provider.NewToken{Name: "raced", Scopes: []string{"workflow:read"}})
	wantCode(t, err, keyward.ECONFLICT)
}

func TestCreateInvalid(t *testing.T) {
	_, srv := newFake(t)
	p := newProvider(t, srv.URL, fakePassword, 0)
	ctx := context.Background()
	_, err := p.Create(ctx, provider.NewToken{Name: "x", Scopes: []string{"workflow:read", "nope:never"}})
	wantCode(t, err, keyward.EINVALID)
	if msg := keyward.ErrorMessage(err); !strings.Contains(msg, "nope:never") || !strings.Contains(msg, "workflow:list") {
		t.Fatalf("message %q: want the refused scope and the valid ones", msg)
	}
	_, err = p.Create(ctx, provider.NewToken{Name: "x"})
	wantCode(t, err, keyward.EINVALID)
}

func TestRevokeUnknown(t *testing.T) {
	_, srv := newFake(t)
	p := newProvider(t, srv.URL, fakePassword, 0)
	wantCode(t, p.Revoke(context.Background(), "", "never-there"), keyward.ENOTFOUND)
}

func TestVerifyFake(t *testing.T) {
	_, srv := newFake(t)
	p := newProvider(t, srv.URL, fakePassword, 0)
	ctx := context.Background()
	_, err := p.Verify(ctx, "not-a-key")
	wantCode(t, err, keyward.EUNAUTHORIZED)
	_, err = p.Verify(ctx, "")
	wantCode(t, err, keyward.EINVALID)
}

func TestNotN8n(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			reply(w, 200, map[string]string{"status": "ok"})
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	p := newProvider(t, srv.URL, fakePassword, 0)
	err := p.Check(context.Background())
	wantCode(t, err, keyward.EUPSTREAM)
	if msg := keyward.ErrorMessage(err); !strings.Contains(msg, "does not look like n8n") {
		t.Fatalf("message %q", msg)
	}
}

func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	l.Close() // nothing listens there now
	p := newProvider(t, url, fakePassword, 0)
	err = p.Check(context.Background())
	wantCode(t, err, keyward.EUPSTREAM)
	if msg := keyward.ErrorMessage(err); !strings.Contains(msg, "cannot reach n8n at "+url) {
		t.Fatalf("message %q", msg)
	}
}

func TestHangingServerTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release) // before srv.Close, which waits for handlers
	p := newProvider(t, srv.URL, fakePassword, 50*time.Millisecond)
	err := p.Check(context.Background())
	wantCode(t, err, keyward.EUPSTREAMTIMEOUT)
	_, err = p.List(context.Background(), "")
	wantCode(t, err, keyward.EUPSTREAMTIMEOUT)
}
