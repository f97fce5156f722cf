package console_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/webhook"
)

var regexpRetry = regexp.MustCompile(`action="(/console/webhooks/[^"]+/deliveries/[^"]+/retry)"`)

// TestWebhookSendAgain: a failed delivery of the log is sent again from
// the console; the webhook sender delivers it at its next run, and the
// audit log names who asked. A pending delivery, or another account's,
// cannot be sent again.
func TestWebhookSendAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acc, other := e.account("alpha"), e.account("beta")
	adminA := e.key(keyward.KeyCreate{AccountID: acc.ID, Role: keyward.RoleAccountAdmin})
	adminB := e.key(keyward.KeyCreate{AccountID: other.ID, Role: keyward.RoleAccountAdmin})
	var fail atomic.Bool
	var got atomic.Int32
	fail.Store(true)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		if fail.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(receiver.Close)
	// The events so far go nowhere: the endpoint gets only the next one.
	if _, err := e.store.DispatchEvents(t.Context(), time.Now().Add(time.Second), 100); err != nil {
		t.Fatal(err)
	}
	hook, err := e.svc.Webhooks.CreateWebhookEndpoint(e.rootCtx(), keyward.NewWebhookEndpoint{AccountID: acc.ID, URL: "https://93.184.215.14/hook"})
	if err != nil {
		t.Fatal(err)
	}
	e.remember(hook.Secret)
	// The receiver is on this machine, which the services' SSRF guard
	// refuses; the sender below is allowed loopback.
	if _, err := e.store.UpdateWebhookEndpoint(t.Context(), keyward.Change{}, hook.Endpoint.ID, func(ep *keyward.WebhookEndpoint) error {
		ep.URL = receiver.URL + "/hook"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sender, err := webhook.New(webhook.Config{Store: e.store, Opener: e.keyring, Guard: webhook.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
		Settings: webhook.Settings{MaxAttempts: 1}, Now: func() time.Time { return time.Now().Add(time.Second) }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	e.key(keyward.KeyCreate{AccountID: acc.ID, Role: keyward.RoleAccountAdmin, Name: "event-maker"})
	if _, err := sender.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	page := "/console/webhooks/" + hook.Endpoint.ID
	admin := e.browser()
	admin.signIn(adminA.Secret)
	p := admin.get(page)
	m := regexpRetry.FindStringSubmatch(p.body)
	if got.Load() != 1 || !strings.Contains(p.body, ">failed<") || m == nil {
		t.Fatalf("after a failed attempt: %d requests, page %.2000s", got.Load(), p.body[strings.Index(p.body, "<h2>Deliveries"):])
	}
	retry := m[1]

	// Another account's admin: not found, nothing changed.
	intruder := e.browser()
	intruder.signIn(adminB.Secret)
	intruder.get("/console/keys")
	if p := intruder.post(retry, nil); p.status != http.StatusNotFound {
		t.Fatalf("another account's admin: %d", p.status)
	}
	fail.Store(false)
	admin.get(page)
	if p := admin.post(retry, nil); p.status != http.StatusSeeOther {
		t.Fatalf("send again: %d %.300s", p.status, p.body)
	}
	if p := admin.get(page); !strings.Contains(p.body, ">pending<") || regexpRetry.MatchString(p.body) {
		t.Fatal("the delivery is not pending again, or still offers to send it again")
	}
	if p := admin.post(retry, nil); p.status != http.StatusConflict {
		t.Fatalf("send a pending delivery again: %d", p.status)
	}
	if _, err := sender.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if p := admin.get(page); got.Load() != 2 || !strings.Contains(p.body, ">delivered<") {
		t.Fatalf("after sending again: %d requests, delivered %v", got.Load(), strings.Contains(p.body, ">delivered<"))
	}
	l, err := e.svc.Audit.AuditEntries(e.rootCtx(), keyward.AuditFilter{Action: "webhook.retry_delivery"}, keyward.Page{})
	if err != nil || len(l.Items) != 1 || l.Items[0].Actor.KeyID != adminA.ID || l.Items[0].TargetID != hook.Endpoint.ID {
		t.Fatalf("audit: %+v, %v", l, err)
	}
}
