package httpapi_test

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keywardtest"
)

func TestProblemShape(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.do("GET", "/v1/accounts/acc_doesnotexist", e.root, "")
	if r.status != http.StatusNotFound {
		t.Fatalf("status = %d, want 404", r.status)
	}
	p := r.problem(t)
	if p.Type != "urn:keyward:error:not_found" || p.Title == "" || p.Status != 404 || p.Code != keyward.ENOTFOUND ||
		p.Detail == "" || p.Instance != "/v1/accounts/acc_doesnotexist" {
		t.Errorf("problem = %+v", p)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.mustAccount("acme")
	for _, c := range []struct {
		name             string
		method, path     string
		body             string
		status           int
		code, detailPart string
	}{
		{"unknown field", "POST", "/v1/accounts", `{"name":"x","nmae":"y"}`, 400, keyward.EINVALID, `unknown field "nmae"`},
		{"unknown field in a body-less operation", "POST", "/v1/keys/key_x/revoke", `{"grace":"1h"}`, 400, keyward.EINVALID, `unknown field "grace"`},
		{"not JSON", "POST", "/v1/accounts", `{"name":`, 400, keyward.EINVALID, "truncated"},
		{"syntax error", "POST", "/v1/accounts", `{"name" "x"}`, 400, keyward.EINVALID, "not valid JSON"},
		{"wrong type", "POST", "/v1/accounts", `{"name":42}`, 400, keyward.EINVALID, `"name"`},
		{"not an object", "POST", "/v1/accounts", `["x"]`, 400, keyward.EINVALID, "JSON object"},
		{"two objects", "POST", "/v1/accounts", `{"name":"x"} {"name":"y"}`, 400, keyward.EINVALID, "single JSON object"},
		{"bad duration", "POST", "/v1/keys/key_x/rotate", `{"grace":"soon"}`, 400, keyward.EINVALID, "Go duration"},
		{"bad time", "POST", "/v1/keys", `{"role":"root","expires_at":"tomorrow"}`, 400, keyward.EINVALID, "RFC 3339"},
		{"validation", "POST", "/v1/accounts", `{}`, 400, keyward.EINVALID, "name is required"},
		{"conflict", "POST", "/v1/accounts", `{"name":"acme"}`, 409, keyward.ECONFLICT, ""},
		{"too large", "POST", "/v1/accounts", `{"name":"` + strings.Repeat("a", 1<<20) + `"}`, 413, keyward.ETOOLARGE, "larger than"},
		{"too large after the object", "POST", "/v1/accounts", `{"name":"x"}` + strings.Repeat(" ", 1<<20), 413, keyward.ETOOLARGE, ""},
		{"malformed id", "GET", "/v1/keys/not%20an%20id!", "", 404, keyward.ENOTFOUND, ""},
		{"overlong id", "GET", "/v1/keys/key_" + strings.Repeat("x", 100), "", 404, keyward.ENOTFOUND, ""},
		{"unknown key id", "GET", "/v1/keys/key_0000000000nothere0000", "", 404, keyward.ENOTFOUND, ""},
		{"unknown key id to revoke", "POST", "/v1/keys/key_nothere/revoke", "", 404, keyward.ENOTFOUND, ""},
		{"unknown user id", "GET", "/v1/accounts/" + a.ID + "/users/usr_nothere", "", 404, keyward.ENOTFOUND, ""},
		{"malformed user id", "DELETE", "/v1/accounts/" + a.ID + "/users/%00", "", 404, keyward.ENOTFOUND, ""},
		{"unknown account users", "GET", "/v1/accounts/acc_nothere/users", "", 404, keyward.ENOTFOUND, ""},
		{"unknown query parameter", "GET", "/v1/keys?acount_id=x", "", 400, keyward.EINVALID, `"acount_id"`},
		{"bad limit", "GET", "/v1/accounts?limit=-1", "", 400, keyward.EINVALID, "limit"},
		{"bad role filter", "GET", "/v1/keys?role=god", "", 400, keyward.EINVALID, "role"},
		{"unknown route", "GET", "/v1/nothing", "", 404, keyward.ENOTFOUND, "openapi.json"},
		{"wrong method", "PUT", "/v1/accounts", "", 405, keyward.EINVALID, "GET"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(c.method, c.path, e.root, c.body)
			if r.status != c.status {
				t.Fatalf("status = %d, want %d; body %.300s", r.status, c.status, r.body)
			}
			p := r.problem(t)
			if p.Code != c.code || p.Status != c.status || !strings.Contains(p.Detail, c.detailPart) {
				t.Errorf("problem = %+v, want code %q and detail containing %q", p, c.code, c.detailPart)
			}
			if c.status == 405 && r.header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.mustAccount("acme")
	u := e.mustUser(a.ID, "alice")
	k := e.mustKey(keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Role: keyward.RoleUser})
	other := e.mustKey(keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Role: keyward.RoleUser})
	disabled := e.mustKey(keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Role: keyward.RoleUser})
	if _, err := e.svc.Keys.UpdateKey(e.rootCtx(), disabled.ID, keyward.KeyUpdate{Disabled: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	expired := keywardtest.NewUserKey(t, e.store, e.hasher, a.ID, u.ID)
	e.remember(expired.Secret)
	if _, err := e.store.UpdateKey(t.Context(), keyward.Change{}, expired.ID, func(k *keyward.Key) error {
		past := keywardtest.Now().Add(-time.Minute)
		k.ExpiresAt = &past
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	unknown, err := apikey.Generate(apikey.PrefixUser) // well-formed, never issued
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name   string
		header map[string]string
		status int
		detail string
	}{
		{"no key", nil, 401, `send it as "Authorization: Bearer <key>" or "X-API-Key: <key>"`},
		{"bearer", map[string]string{"Authorization": "Bearer " + k.Secret}, 200, ""},
		{"lower-case scheme", map[string]string{"Authorization": "bearer " + k.Secret}, 200, ""},
		{"X-API-Key", map[string]string{"X-API-Key": k.Secret}, 200, ""},
		{"both headers, same key", map[string]string{"Authorization": "Bearer " + k.Secret, "X-API-Key": k.Secret}, 200, ""},
		{"both headers, different keys", map[string]string{"Authorization": "Bearer " + k.Secret, "X-API-Key": other.Secret}, 401, "different keys"},
		{"basic auth", map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}, 401, "Bearer"},
		{"malformed", map[string]string{"X-API-Key": "hunter2"}, 401, "invalid API key"},
		{"bad checksum", map[string]string{"X-API-Key": keywardtest.BreakChecksum(k.Secret)}, 401, "invalid API key"},
		{"unknown", map[string]string{"X-API-Key": unknown.Reveal()}, 401, "invalid API key"},
		{"disabled", map[string]string{"X-API-Key": disabled.Secret}, 401, "invalid API key"},
		{"expired", map[string]string{"X-API-Key": expired.Secret}, 401, "invalid API key"},
		{"overlong agent", map[string]string{"X-API-Key": k.Secret, "X-Keyward-Agent": strings.Repeat("a", 201)}, 400, "X-Keyward-Agent"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.send(request{method: "GET", path: "/v1/whoami", header: c.header})
			if r.status != c.status {
				t.Fatalf("status = %d, want %d; body %s", r.status, c.status, r.body)
			}
			if c.status == 401 {
				wantUnauthorized(t, r, c.detail)
				if c.detail == "invalid API key" && r.problem(t).Detail != "invalid API key" {
					t.Errorf("detail = %q, want exactly %q", r.problem(t).Detail, "invalid API key")
				}
			} else if c.status != 200 && !strings.Contains(r.problem(t).Detail, c.detail) {
				t.Errorf("detail = %q, want it to contain %q", r.problem(t).Detail, c.detail)
			}
		})
	}

	t.Run("the query string is never a credential", func(t *testing.T) {
		r := e.send(request{method: "GET", path: "/v1/whoami?api_key=" + k.Secret})
		wantUnauthorized(t, r, "Authorization: Bearer <key>")
	})
}

func TestWhoAmIAgent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client(e.root)
	c.Agent = "claude-code/1.0"
	id, err := c.WhoAmI(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if id.Agent != "claude-code/1.0" || id.KeyID != e.rootKey.ID || id.Role != keyward.RoleRoot {
		t.Errorf("whoami = %+v", id)
	}
}

func TestKeyLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client(e.root)
	ctx := t.Context()
	a, err := c.CreateAccount(ctx, keyward.AccountCreate{Name: "acme", KeyPrefix: "acme_live"})
	if err != nil {
		t.Fatal(err)
	}
	u, err := c.CreateUser(ctx, a.ID, keyward.UserCreate{Name: "alice", ExternalID: "ext-1"})
	if err != nil {
		t.Fatal(err)
	}
	exp := keywardtest.Now().Add(24 * time.Hour)

	// Create returns the secret once, as "key".
	r := e.do("POST", "/v1/keys", e.root, fmt.Sprintf(`{"account_id":%q,"user_id":%q,"name":"ci","permissions":["memories:read"],"meta":{"tier":"pro"},"expires_at":%q}`,
		a.ID, u.ID, exp.Format(time.RFC3339Nano)))
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var created keyward.CreatedKey
	r.decode(t, &created)
	e.remember(created.Secret)
	if !strings.HasPrefix(created.Secret, "acme_live_") || created.Role != keyward.RoleUser || created.Start != created.Secret[:len("acme_live_")+4] ||
		string(created.Meta) != `{"tier":"pro"}` || created.ExpiresAt == nil || !created.ExpiresAt.Equal(exp) {
		t.Errorf("created = %+v", created)
	}

	// Get and list never return it.
	for _, path := range []string{"/v1/keys/" + created.ID, "/v1/keys?account_id=" + a.ID} {
		r := e.do("GET", path, e.root, "")
		if r.status != 200 || strings.Contains(string(r.body), created.Secret) || strings.Contains(string(r.body), `"key"`) {
			t.Errorf("GET %s: %d %s", path, r.status, r.body)
		}
	}

	// The key works.
	kc := e.client(keyward.Secret(created.Secret))
	if id, err := kc.WhoAmI(ctx); err != nil || id.KeyID != created.ID || id.UserID != u.ID {
		t.Fatalf("whoami with the new key: %+v, %v", id, err)
	}

	// Update, disable, enable.
	name := "renamed"
	k, err := c.UpdateKey(ctx, created.ID, keyward.KeyUpdate{Name: &name, ClearExpiry: true})
	if err != nil || k.Name != name || k.ExpiresAt != nil {
		t.Fatalf("update: %+v, %v", k, err)
	}
	if k, err := c.DisableKey(ctx, created.ID); err != nil || !k.Disabled {
		t.Fatalf("disable: %+v, %v", k, err)
	}
	if _, err := kc.WhoAmI(ctx); keyward.ErrorCode(err) != keyward.EUNAUTHORIZED {
		t.Fatalf("whoami with a disabled key: %v", err)
	}
	if k, err := c.EnableKey(ctx, created.ID); err != nil || k.Disabled {
		t.Fatalf("enable: %+v, %v", k, err)
	}
	if _, err := kc.WhoAmI(ctx); err != nil {
		t.Fatalf("whoami with a re-enabled key: %v", err)
	}

	// Rotate with grace: both keys work; the new one names the old.
	next, err := c.RotateKey(ctx, created.ID, keyward.KeyRotate{Grace: keyward.Duration(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	e.remember(next.Secret)
	if next.RotatedFrom != created.ID || next.Secret == "" || next.Secret == created.Secret {
		t.Errorf("rotated = %+v", next)
	}
	if _, err := kc.WhoAmI(ctx); err != nil {
		t.Errorf("old key in its grace window: %v", err)
	}
	old, err := c.Key(ctx, created.ID)
	if err != nil || old.GraceUntil == nil {
		t.Errorf("old key after rotation: %+v, %v", old, err)
	}
	// Rotating twice is a conflict.
	if _, err := c.RotateKey(ctx, created.ID, keyward.KeyRotate{}); keyward.ErrorCode(err) != keyward.ECONFLICT {
		t.Errorf("second rotation: %v, want conflict", err)
	}

	// Revoke stops the old key at once, also inside its grace window.
	if k, err := c.RevokeKey(ctx, created.ID); err != nil || k.RevokedAt == nil {
		t.Fatalf("revoke: %+v, %v", k, err)
	}
	if _, err := kc.WhoAmI(ctx); keyward.ErrorCode(err) != keyward.EUNAUTHORIZED {
		t.Errorf("whoami with a revoked key: %v", err)
	}

	// Delete: 204, then 404.
	r = e.do("DELETE", "/v1/keys/"+next.ID, e.root, "")
	if r.status != http.StatusNoContent || len(r.body) != 0 {
		t.Errorf("delete: %d %q", r.status, r.body)
	}
	if _, err := c.Key(ctx, next.ID); keyward.ErrorCode(err) != keyward.ENOTFOUND {
		t.Errorf("get after delete: %v", err)
	}
	if _, err := e.client(keyward.Secret(next.Secret)).WhoAmI(ctx); keyward.ErrorCode(err) != keyward.EUNAUTHORIZED {
		t.Errorf("deleted key still authenticates: %v", err)
	}

	// Accounts and users over the client.
	disabled := true
	if a2, err := c.UpdateAccount(ctx, a.ID, keyward.AccountUpdate{Disabled: &disabled}); err != nil || !a2.Disabled {
		t.Fatalf("disable account: %+v %v", a2, err)
	}
	if got, err := c.User(ctx, a.ID, u.ID); err != nil || got.ExternalID != "ext-1" {
		t.Errorf("user: %+v %v", got, err)
	}
	if err := c.DeleteUser(ctx, a.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteAccount(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	var kerr *keyward.Error
	if _, err := c.Account(ctx, a.ID); !errors.As(err, &kerr) || kerr.Code != keyward.ENOTFOUND {
		t.Errorf("account after delete: %v", err)
	}
}

func TestPagination(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client(e.root)
	var want []string
	for i := range 7 {
		want = append(want, e.mustAccount(fmt.Sprintf("acct %d", i)).ID)
	}
	var got []string
	pages := 0
	for p := (keyward.Page{Limit: 3}); ; {
		l, err := c.Accounts(t.Context(), p)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(l.Items) > 3 {
			t.Fatalf("page of %d items with limit 3", len(l.Items))
		}
		for _, a := range l.Items {
			got = append(got, a.ID)
		}
		if l.Next == "" {
			break
		}
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		p.After = l.Next
	}
	// Lists are ordered by id: ids are time-ordered to the millisecond,
	// random within one.
	slices.Sort(want)
	if !slices.Equal(got, want) || pages != 3 {
		t.Errorf("walked %d pages: %v, want %v", pages, got, want)
	}

	// Keys: the same walk over the raw API, with a filter.
	a := e.mustAccount("keys")
	var wantKeys []string
	for range 5 {
		wantKeys = append(wantKeys, e.mustKey(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin}).ID)
	}
	var gotKeys []string
	for after := ""; ; {
		var l keyward.KeyList
		r := e.do("GET", "/v1/keys?limit=2&role=account_admin&account_id="+a.ID+"&after="+after, e.root, "")
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		r.decode(t, &l)
		for _, k := range l.Items {
			gotKeys = append(gotKeys, k.ID)
		}
		if after = l.Next; after == "" {
			break
		}
	}
	slices.Sort(wantKeys)
	if !slices.Equal(gotKeys, wantKeys) {
		t.Errorf("keys: %v, want %v", gotKeys, wantKeys)
	}

	// An empty page is an empty list, never null.
	r := e.do("GET", "/v1/accounts/"+a.ID+"/users", e.root, "")
	if r.status != 200 || !strings.Contains(string(r.body), `"items":[]`) {
		t.Errorf("empty list: %d %s", r.status, r.body)
	}
}

func ptr[T any](v T) *T { return &v }
