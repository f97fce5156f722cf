package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

func TestPortalSessionAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.mustAccount("shop")
	if _, err := e.svc.Tenancy.CreateUser(e.rootCtx(), a.ID, keyward.UserCreate{Name: "alice", ExternalID: "cust-1"}); err != nil {
		t.Fatal(err)
	}
	adm := e.mustKey(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin, Permissions: []string{"notes:read", "notes:write"}})
	key := keyward.Secret(adm.Secret)

	r := e.do("POST", "/v1/portal/sessions", key, `{"external_id":"cust-1","permissions":["notes:read"],"environments":["test"],"return_url":"https://shop.example/account"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var l keyward.PortalLink
	r.decode(t, &l)
	if !strings.HasPrefix(l.URL, e.ts.URL+"/portal/link/kwp_") || l.AccountID != a.ID || l.CreatedBy != adm.ID || l.StartedAt != nil {
		t.Fatalf("link = %+v", l)
	}
	// Behind a trusted proxy the link is on the address the caller used;
	// from anyone else the forwarding headers are ignored.
	r = e.send(request{method: "POST", path: "/v1/portal/sessions", header: map[string]string{"Authorization": "Bearer " + adm.Secret, "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"},
		body: `{"external_id":"cust-1","return_url":"https://shop.example/"}`})
	r.decode(t, &l)
	if strings.Contains(l.URL, "evil.example") || !strings.HasPrefix(l.URL, "http://") {
		t.Fatalf("an untrusted peer's X-Forwarded-Host made the link %s", l.URL)
	}

	for _, c := range []struct {
		name, body, code string
		status           int
	}{
		{"unknown external_id", `{"external_id":"nobody","return_url":"https://shop.example/"}`, keyward.ENOTFOUND, 404},
		{"no external_id", `{"return_url":"https://shop.example/"}`, keyward.EINVALID, 400},
		{"a permission the caller lacks", `{"external_id":"cust-1","permissions":["notes:*"],"return_url":"https://shop.example/"}`, keyward.EFORBIDDEN, 403},
		{"every permission", `{"external_id":"cust-1","permissions":["*"],"return_url":"https://shop.example/"}`, keyward.EFORBIDDEN, 403},
		{"a relative return URL", `{"external_id":"cust-1","return_url":"/account"}`, keyward.EINVALID, 400},
		{"a scheme-relative return URL", `{"external_id":"cust-1","return_url":"//evil.example/"}`, keyward.EINVALID, 400},
		{"a javascript: return URL", `{"external_id":"cust-1","return_url":"javascript:alert(1)"}`, keyward.EINVALID, 400},
		{"a return URL with user info", `{"external_id":"cust-1","return_url":"https://shop.example@evil.example/"}`, keyward.EINVALID, 400},
		{"no return URL", `{"external_id":"cust-1"}`, keyward.EINVALID, 400},
		{"a bad environment", `{"external_id":"cust-1","environments":["Live"],"return_url":"https://shop.example/"}`, keyward.EINVALID, 400},
		{"a link ttl too long", `{"external_id":"cust-1","link_ttl":"2h","return_url":"https://shop.example/"}`, keyward.EINVALID, 400},
		{"a bad duration", `{"external_id":"cust-1","session_ttl":"soon","return_url":"https://shop.example/"}`, keyward.EINVALID, 400},
		{"an unknown field", `{"external_id":"cust-1","return_url":"https://shop.example/","role":"root"}`, keyward.EINVALID, 400},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.do("POST", "/v1/portal/sessions", key, c.body)
			if p := r.problem(t); r.status != c.status || p.Code != c.code {
				t.Fatalf("%d %s, want %d %s", r.status, r.body, c.status, c.code)
			}
		})
	}
}

// TestPortalLinkOnPublicURL: with a public URL configured, links are made
// on it, whatever address the caller used.
func TestPortalLinkOnPublicURL(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, envOptions{portalURL: "https://keys.example.com"})
	a := e.mustAccount("shop")
	if _, err := e.svc.Tenancy.CreateUser(e.rootCtx(), a.ID, keyward.UserCreate{Name: "alice", ExternalID: "cust-1"}); err != nil {
		t.Fatal(err)
	}
	r := e.do("POST", "/v1/portal/sessions", e.root, `{"account_id":"`+a.ID+`","external_id":"cust-1","return_url":"https://shop.example/"}`)
	var l keyward.PortalLink
	r.decode(t, &l)
	if r.status != http.StatusCreated || !strings.HasPrefix(l.URL, "https://keys.example.com/portal/link/kwp_") {
		t.Fatalf("link: %d %s", r.status, l.URL)
	}
}

func TestPortalBrandingAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.mustAccount("shop")
	adm := keyward.Secret(e.mustKey(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin}).Secret)
	path := "/v1/accounts/" + a.ID + "/portal-branding"
	r := e.do("PUT", path, adm, `{"title":"Shop API","accent_color":"#1f6feb","background_color":"#fafafa","text_color":"#111111"}`)
	if r.status != http.StatusOK {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	var b keyward.PortalBranding
	e.do("GET", path, adm, "").decode(t, &b)
	if b.Title != "Shop API" || b.AccentColor != "#1f6feb" || b.AccountID != a.ID {
		t.Fatalf("branding = %+v", b)
	}
	for _, body := range []string{`{"accent_color":"red"}`, `{"text_color":"#fff"}`, `{"background_color":"#000000;}*{display:none"}`, `{"title":"a\u0000b"}`} {
		r := e.do("PUT", path, adm, body)
		if p := r.problem(t); r.status != 400 || p.Code != keyward.EINVALID {
			t.Fatalf("%s: %d %s", body, r.status, r.body)
		}
	}
}

func TestRetryWebhookDeliveryAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := e.mustAccount("alpha"), e.mustAccount("beta")
	adm := keyward.Secret(e.mustKey(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin}).Secret)
	other := keyward.Secret(e.mustKey(keyward.KeyCreate{AccountID: b.ID, Role: keyward.RoleAccountAdmin}).Secret)
	if _, err := e.store.DispatchEvents(t.Context(), time.Now().Add(time.Second), 100); err != nil { // the events so far go nowhere
		t.Fatal(err)
	}
	hook, err := e.svc.Webhooks.CreateWebhookEndpoint(e.rootCtx(), keyward.NewWebhookEndpoint{AccountID: a.ID, URL: "https://93.184.215.14/hook"})
	if err != nil {
		t.Fatal(err)
	}
	e.remember(hook.Secret)
	e.mustKey(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin, Name: "event-maker"})
	now := time.Now().Add(time.Second)
	if _, err := e.store.DispatchEvents(t.Context(), now, 100); err != nil {
		t.Fatal(err)
	}
	ds, err := e.store.ClaimDeliveries(t.Context(), now, time.Minute, 100)
	if err != nil || len(ds) != 1 {
		t.Fatalf("claim: %d, %v", len(ds), err)
	}
	path := "/v1/webhooks/" + hook.Endpoint.ID + "/deliveries/" + ds[0].EventID + "/retry"
	wantProblem := func(r *response, status int, code string) {
		t.Helper()
		if p := r.problem(t); r.status != status || p.Code != code {
			t.Fatalf("%d %s, want %d %s", r.status, r.body, status, code)
		}
	}
	wantProblem(e.do("POST", path, adm, ""), 409, keyward.ECONFLICT) // pending
	if err := e.store.FinishDelivery(t.Context(), keyward.DeliveryOutcome{EventID: ds[0].EventID, EndpointID: hook.Endpoint.ID, LeaseUntil: ds[0].LeaseUntil,
		Time: now, Status: 500, Error: "boom", State: keyward.DeliveryFailed, NextAttemptAt: now}); err != nil {
		t.Fatal(err)
	}
	wantProblem(e.do("POST", path, other, ""), 404, keyward.ENOTFOUND)
	wantProblem(e.do("POST", "/v1/webhooks/"+hook.Endpoint.ID+"/deliveries/msg_nosuch/retry", adm, ""), 404, keyward.ENOTFOUND)
	r := e.do("POST", path, adm, "")
	var d keyward.WebhookDelivery
	r.decode(t, &d)
	if r.status != 200 || d.State != keyward.DeliveryPending || d.Attempts != 1 || d.EventID != ds[0].EventID {
		t.Fatalf("retry: %d %+v", r.status, d)
	}
}
