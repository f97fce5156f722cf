package console_test

import (
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/console"
)

// portalWorld is an account whose admin key (holding notes:*) opens
// portals, a customer (external id cust-1) and another user with a key.
type portalWorld struct {
	acc                *keyward.Account
	customer, other    *keyward.User
	adminKey           *keyward.CreatedKey
	otherKey           *keyward.CreatedKey
	portalPermissions  []string
	portalEnvironments []string
}

func (e *env) portalWorld() portalWorld {
	e.t.Helper()
	a := e.account("shop")
	cust, err := e.svc.Tenancy.CreateUser(e.rootCtx(), a.ID, keyward.UserCreate{Name: "alice", ExternalID: "cust-1"})
	if err != nil {
		e.t.Fatal(err)
	}
	other := e.user(a.ID, "bob")
	return portalWorld{
		acc: a, customer: cust, other: other,
		adminKey:           e.key(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin, Permissions: []string{"notes:*"}}),
		otherKey:           e.key(keyward.KeyCreate{AccountID: a.ID, UserID: other.ID, Name: "bobs-key", Environment: "test"}),
		portalPermissions:  []string{"notes:read", "notes:write"},
		portalEnvironments: []string{"test"},
	}
}

// api calls the HTTP API with key and decodes the answer into out.
func (e *env) api(method, path, key, body string, out any) int {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.ts.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

// portalLink asks the API for a portal link of w's customer and returns
// its path.
func (e *env) portalLink(w portalWorld) string {
	e.t.Helper()
	body, _ := json.Marshal(keyward.PortalSessionCreate{ExternalID: "cust-1", Permissions: w.portalPermissions, Environments: w.portalEnvironments, ReturnURL: "https://shop.example/account"})
	var l keyward.PortalLink
	if st := e.api("POST", "/v1/portal/sessions", w.adminKey.Secret, string(body), &l); st != http.StatusCreated {
		e.t.Fatalf("POST /v1/portal/sessions: %d", st)
	}
	u, err := url.Parse(l.URL)
	if err != nil || !strings.HasPrefix(l.URL, e.ts.URL+"/portal/link/kwp_") {
		e.t.Fatalf("link %q", l.URL)
	}
	e.remember(strings.TrimPrefix(u.Path, "/portal/link/"))
	return u.Path
}

func (b *browser) portalCookie() *http.Cookie {
	u, _ := url.Parse(b.e.ts.URL + console.PortalPath + "/")
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == console.PortalCookie {
			return c
		}
	}
	return nil
}

func TestPortalLinkIsSingleUse(t *testing.T) {
	e := newEnv(t)
	w := e.portalWorld()
	link := e.portalLink(w)

	b := e.browser()
	p := b.get(link)
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/portal/keys" {
		t.Fatalf("link: %d %q %.300s", p.status, p.header.Get("Location"), p.body)
	}
	ck := setCookie(p, console.PortalCookie)
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/portal" || ck.Secure || ck.MaxAge <= 0 {
		t.Fatalf("cookie = %+v", ck)
	}
	e.remember(ck.Value)
	if p := b.get("/portal/keys"); p.status != http.StatusOK || !strings.Contains(p.body, "Your API keys") {
		t.Fatalf("keys: %d %.300s", p.status, p.body)
	}
	// The second use, from any browser, is refused and starts nothing.
	for _, again := range []*browser{b, e.browser()} {
		p := again.get(link)
		if p.status != http.StatusNotFound || !strings.Contains(p.body, "cannot be used") || setCookie(p, console.PortalCookie) != nil {
			t.Fatalf("second use: %d %v %.300s", p.status, p.header, p.body)
		}
	}
	// An unknown link, and an expired one, the same.
	if p := e.browser().get("/portal/link/kwp_nosuchtoken"); p.status != http.StatusNotFound {
		t.Fatalf("unknown link: %d", p.status)
	}
	token := "kwp_expired" + apikey.NewID("t")
	past := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	err := e.store.CreatePortalSession(t.Context(), keyward.Change{}, &keyward.PortalSession{ID: apikey.NewID("psn"), AccountID: w.acc.ID, UserID: w.customer.ID, ExternalID: "cust-1",
		ReturnURL: "https://shop.example/", SessionTTL: keyward.Duration(time.Hour), CreatedBy: w.adminKey.ID, CreatedAt: past, LinkExpiresAt: past.Add(time.Minute)}, sha256.Sum256([]byte(token)))
	if err != nil {
		t.Fatal(err)
	}
	if p := e.browser().get("/portal/link/" + token); p.status != http.StatusNotFound || !strings.Contains(p.body, "cannot be used") {
		t.Fatalf("expired link: %d %.300s", p.status, p.body)
	}
	// Without a session, every page says the session ended.
	if p := e.browser().get("/portal/keys"); p.status != http.StatusUnauthorized {
		t.Fatalf("no session: %d", p.status)
	}
}

func TestPortalCustomerKeys(t *testing.T) {
	e := newEnv(t)
	w := e.portalWorld()
	b := e.browser()
	b.get(e.portalLink(w))
	e.remember(b.portalCookie().Value)
	p := b.get("/portal/keys")
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "Referrer-Policy"} {
		if p.header.Get(h) == "" {
			t.Errorf("no %s", h)
		}
	}
	if p.header.Get("Cache-Control") != "no-store" || strings.Contains(p.body, w.otherKey.ID) || strings.Contains(p.body, "bobs-key") {
		t.Fatalf("keys page: %v %.500s", p.header, p.body)
	}

	// CSRF: refused without the token, and with another session's.
	if p := b.post("/portal/keys", url.Values{"csrf": {"forged"}, "name": {"x"}}); p.status != http.StatusForbidden {
		t.Fatalf("forged csrf: %d", p.status)
	}
	// A key within the grant; its secret is shown once and verifies.
	p = b.post("/portal/keys", url.Values{"name": {"ci"}, "environment": {"test"}, "permissions": {"notes:read"}})
	if p.status != http.StatusCreated {
		t.Fatalf("create: %d %.500s", p.status, p.body)
	}
	secret := secretOf(t, p)
	e.remember(secret)
	var v struct {
		Valid    bool   `json:"valid"`
		KeyID    string `json:"key_id"`
		Identity struct {
			UserID string `json:"user_id"`
		} `json:"identity"`
	}
	if st := e.api("POST", "/v1/keys/verify", e.root, `{"key":"`+secret+`"}`, &v); st != 200 || !v.Valid {
		t.Fatalf("verify the new key: %d %+v", st, v)
	}
	if p := b.get("/portal/keys"); strings.Contains(p.body, secret) || !strings.Contains(p.body, ">ci<") {
		t.Fatalf("the list shows the secret again, or not the key: %.800s", p.body)
	}
	// Beyond the grant: refused, nothing created.
	for _, form := range []url.Values{
		{"permissions": {"notes:delete"}, "environment": {"test"}},
		{"environment": {"live"}},
	} {
		if p := b.post("/portal/keys", form); p.status != http.StatusForbidden {
			t.Fatalf("%v: %d %.300s", form, p.status, p.body)
		}
	}
	// A refusal is in the audit log, with the session as the actor.
	denied, err := e.svc.Audit.AuditEntries(e.rootCtx(), keyward.AuditFilter{Action: "auth.denied"}, keyward.Page{})
	if err != nil || len(denied.Items) != 2 || !strings.HasPrefix(denied.Items[0].Actor.KeyID, "psn_") || denied.Items[0].Actor.UserID != w.customer.ID {
		t.Fatalf("auth.denied entries: %+v, %v", denied, err)
	}
	// Another user's key: not found, unchanged.
	if p := b.post("/portal/keys/"+w.otherKey.ID+"/revoke", nil); p.status != http.StatusNotFound {
		t.Fatalf("revoke another user's key: %d", p.status)
	}
	if k, _ := e.svc.Keys.Key(e.rootCtx(), w.otherKey.ID); k.RevokedAt != nil {
		t.Fatal("another user's key was revoked")
	}
	// Branding: the account's title and colours, and nothing but colours.
	if st := e.api("PUT", "/v1/accounts/"+w.acc.ID+"/portal-branding", w.adminKey.Secret, `{"title":"Shop <API>","accent_color":"#1f6feb","text_color":"#222222"}`, nil); st != 200 {
		t.Fatalf("branding: %d", st)
	}
	if p := b.get("/portal/theme.css"); p.status != 200 || p.header.Get("Content-Type") != "text/css; charset=utf-8" || p.body != ":root { --accent: #1f6feb; --fg: #222222; }\n" {
		t.Fatalf("theme: %d %q", p.status, p.body)
	}
	if p := b.get("/portal/keys"); !strings.Contains(p.body, "<title>Keys · Shop &lt;API&gt;</title>") {
		t.Fatalf("title not applied or not escaped: %.400s", p.body)
	}
	if p := b.get("/portal/usage?period=7d"); p.status != 200 || !strings.Contains(p.body, "<svg") {
		t.Fatalf("usage: %d %.300s", p.status, p.body)
	}
	// Sign-out ends the session everywhere and links back to the service.
	cookie := b.portalCookie().Value
	if p := b.post("/portal/sign-out", nil); p.status != 200 || !strings.Contains(p.body, `href="https://shop.example/account"`) {
		t.Fatalf("sign-out: %d %.400s", p.status, p.body)
	}
	thief := e.browser()
	u, _ := url.Parse(e.ts.URL + "/portal/")
	thief.client.Jar.SetCookies(u, []*http.Cookie{{Name: console.PortalCookie, Value: cookie}})
	if p := thief.get("/portal/keys"); p.status != http.StatusUnauthorized {
		t.Fatalf("after sign-out: %d", p.status)
	}
}
