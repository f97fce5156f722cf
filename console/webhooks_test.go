package console_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

var webhookIDRE = regexp.MustCompile(`href="/console/webhooks/(whe_[^"]+)"`)

func TestWebhooksPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	accA, accB := e.account("alpha"), e.account("beta")
	adminB := e.key(keyward.KeyCreate{AccountID: accB.ID, Role: keyward.RoleAccountAdmin})
	userB := e.user(accB.ID, "bob")
	keyB := e.key(keyward.KeyCreate{AccountID: accB.ID, UserID: userB.ID, Role: keyward.RoleUser})
	hookA, err := e.svc.Webhooks.CreateWebhookEndpoint(e.rootCtx(), keyward.NewWebhookEndpoint{AccountID: accA.ID, URL: "https://93.184.215.14/alpha-hook"})
	if err != nil {
		t.Fatal(err)
	}
	e.remember(hookA.Secret)

	admin := e.browser()
	admin.signIn(adminB.Secret)
	admin.get("/console/webhooks")
	p := admin.post("/console/webhooks", url.Values{"url": {"https://93.184.215.15/beta-hook"}, "description": {"beta receiver"}, "events": {"key.created", "key.revoked"}})
	if p.status != http.StatusCreated || p.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("register: %d %.300s", p.status, p.body)
	}
	secret := secretOf(t, p)
	e.remember(secret)
	if !strings.HasPrefix(secret, "whsec_") {
		t.Errorf("secret on the page = %.8q...", secret)
	}
	m := webhookIDRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatal("no link to the endpoint")
	}
	id := m[1]
	hook, err := e.svc.Webhooks.WebhookEndpoint(e.rootCtx(), id)
	if err != nil || hook.AccountID != accB.ID || strings.Join(hook.Events, " ") != "key.created key.revoked" {
		t.Fatalf("registered endpoint: %+v, %v", hook, err)
	}
	if p := admin.post("/console/webhooks", url.Values{"url": {"http://127.0.0.1:9/internal"}}); p.status != http.StatusBadRequest && p.status != http.StatusForbidden {
		t.Errorf("an internal URL: %d, want the SSRF guard's refusal", p.status)
	}
	list := admin.get("/console/webhooks")
	if !strings.Contains(list.body, "beta-hook") || strings.Contains(list.body, "alpha-hook") {
		t.Error("the admin's endpoints list shows another account's, or misses its own")
	}

	// A key event reaches the delivery log.
	e.key(keyward.KeyCreate{AccountID: accB.ID, Role: keyward.RoleAccountAdmin, Name: "event-maker"})
	if _, err := e.store.DispatchEvents(t.Context(), time.Now().Add(time.Second), 100); err != nil {
		t.Fatal(err)
	}
	hp := admin.get("/console/webhooks/" + id)
	if hp.status != 200 || !strings.Contains(hp.body, "key.created") || !strings.Contains(hp.body, "pending") || strings.Contains(hp.body, secret) {
		t.Errorf("endpoint page: %d, delivery shown %v, secret shown %v", hp.status, strings.Contains(hp.body, "key.created"), strings.Contains(hp.body, secret))
	}
	if p := admin.post("/console/webhooks/"+id+"/disable", nil); p.status != http.StatusSeeOther {
		t.Fatalf("disable: %d", p.status)
	}
	if h, _ := e.svc.Webhooks.WebhookEndpoint(e.rootCtx(), id); !h.Disabled {
		t.Error("not disabled")
	}
	p = admin.post("/console/webhooks/"+id+"/rotate-secret", nil)
	if p.status != http.StatusOK {
		t.Fatalf("rotate secret: %d", p.status)
	}
	if s2 := secretOf(t, p); s2 == secret || !strings.HasPrefix(s2, "whsec_") {
		t.Error("rotation did not show a new secret")
	} else {
		e.remember(s2)
	}

	// Another account's endpoint does not exist for this admin.
	for _, p := range []page{admin.get("/console/webhooks/" + hookA.Endpoint.ID), admin.post("/console/webhooks/"+hookA.Endpoint.ID+"/delete", nil), admin.post("/console/webhooks/"+hookA.Endpoint.ID+"/rotate-secret", nil)} {
		if p.status != http.StatusNotFound || strings.Contains(p.body, "alpha-hook") {
			t.Errorf("admin on another account's endpoint: %d, want 404 without a trace", p.status)
		}
	}
	if p := admin.post("/console/webhooks/"+id+"/delete", nil); p.status != http.StatusSeeOther {
		t.Fatalf("delete: %d", p.status)
	}
	if _, err := e.svc.Webhooks.WebhookEndpoint(e.rootCtx(), id); keyward.ErrorCode(err) != keyward.ENOTFOUND {
		t.Errorf("after delete: %v", err)
	}
	if _, err := e.svc.Webhooks.WebhookEndpoint(e.rootCtx(), hookA.Endpoint.ID); err != nil {
		t.Errorf("another account's endpoint is gone: %v", err)
	}

	root := e.browser()
	root.signIn(e.root)
	if p := root.get("/console/webhooks"); !strings.Contains(p.body, "alpha-hook") {
		t.Error("root's list misses an account's endpoint")
	}
	user := e.browser()
	user.signIn(keyB.Secret)
	if p := user.get("/console/webhooks"); p.status != http.StatusForbidden {
		t.Errorf("user key lists webhooks: %d, want 403", p.status)
	}
	if strings.Contains(user.get("/console/keys").body, "/console/webhooks") {
		t.Error("a user key's navigation links to webhooks")
	}
}
