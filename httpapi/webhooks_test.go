package httpapi_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/webhook"
)

// TestWebhookEndpoints manages endpoints through the API as root and as an
// account admin, and checks the scoping, the URL guard and that the secret
// is shown only on creation and rotation.
func TestWebhookEndpoints(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := e.mustAccount("a"), e.mustAccount("b")
	adminA := keyward.Secret(e.mustKey(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin}).Secret)
	usr := e.mustUser(a.ID, "alice")
	user := keyward.Secret(e.mustKey(keyward.KeyCreate{AccountID: a.ID, UserID: usr.ID, Role: keyward.RoleUser}).Secret)

	r := e.do("POST", "/v1/webhooks", adminA, `{"url":"https://hooks.example.com/a","events":["key.revoked","key.leaked"]}`)
	if r.status != http.StatusCreated {
		t.Fatalf("create as account admin: %d %s", r.status, r.body)
	}
	var created keyward.CreatedWebhookEndpoint
	r.decode(t, &created)
	e.remember(created.Secret)
	ep := created.Endpoint
	if !strings.HasPrefix(created.Secret, "whsec_") || ep.AccountID != a.ID || len(ep.Events) != 2 {
		t.Fatalf("created = %+v (secret %.6s...), want an endpoint of %s with its secret", ep, created.Secret, a.ID)
	}
	for _, path := range []string{"/v1/webhooks/" + ep.ID, "/v1/webhooks"} {
		if r := e.do("GET", path, adminA, ""); r.status != http.StatusOK || strings.Contains(string(r.body), created.Secret) {
			t.Fatalf("GET %s: %d, secret shown again: %v", path, r.status, strings.Contains(string(r.body), created.Secret))
		}
	}

	for _, c := range []struct {
		name, key, body string
		status          int
		code            string
	}{
		{"another account", "admin", `{"url":"https://hooks.example.com/b","account_id":"` + b.ID + `"}`, 404, keyward.ENOTFOUND},
		{"a user", "user", `{"url":"https://hooks.example.com/u"}`, 403, keyward.EFORBIDDEN},
		{"loopback", "root", `{"url":"http://127.0.0.1:9000/hook"}`, 400, keyward.EINVALID},
		{"cloud metadata", "root", `{"url":"http://169.254.169.254/latest"}`, 400, keyward.EINVALID},
		{"unknown event", "root", `{"url":"https://hooks.example.com/x","events":["key.exploded"]}`, 400, keyward.EINVALID},
		{"no url", "root", `{}`, 400, keyward.EINVALID},
	} {
		key := map[string]keyward.Secret{"admin": adminA, "user": user, "root": e.root}[c.key]
		r := e.do("POST", "/v1/webhooks", key, c.body)
		if r.status != c.status || r.problem(t).Code != c.code {
			t.Errorf("create (%s): %d %s, want %d %s", c.name, r.status, r.body, c.status, c.code)
		}
	}
	if r := e.do("GET", "/v1/webhooks/"+ep.ID, user, ""); r.status != http.StatusForbidden {
		t.Errorf("user reading an endpoint: %d, want 403", r.status)
	}

	r = e.do("PATCH", "/v1/webhooks/"+ep.ID, adminA, `{"events":[],"disabled":true}`)
	var up keyward.WebhookEndpoint
	r.decode(t, &up)
	if r.status != http.StatusOK || !up.Disabled || len(up.Events) != 0 {
		t.Fatalf("patch: %d %+v", r.status, up)
	}
	r = e.do("POST", "/v1/webhooks/"+ep.ID+"/rotate-secret", adminA, "")
	var rotated keyward.CreatedWebhookEndpoint
	r.decode(t, &rotated)
	e.remember(rotated.Secret)
	if r.status != http.StatusOK || rotated.Secret == created.Secret || !strings.HasPrefix(rotated.Secret, "whsec_") {
		t.Fatalf("rotate-secret: %d, new secret differs: %v", r.status, rotated.Secret != created.Secret)
	}
	if r := e.do("GET", "/v1/webhooks/"+ep.ID+"/deliveries", adminA, ""); r.status != http.StatusOK {
		t.Fatalf("deliveries: %d %s", r.status, r.body)
	}
	if r := e.do("DELETE", "/v1/webhooks/"+ep.ID, adminA, ""); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/v1/webhooks/"+ep.ID, adminA, ""); r.status != http.StatusNotFound {
		t.Fatalf("get after delete: %d", r.status)
	}
}

// hookReceiver is a webhook endpoint that answers with the statuses queued
// in replies, then 204, and records the webhook-id and body of every
// request.
type hookReceiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	replies []int
	ids     []string
	body    []string
}

func newHookReceiver(t *testing.T, replies ...int) *hookReceiver {
	h := &hookReceiver{replies: replies}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		defer h.mu.Unlock()
		b, _ := io.ReadAll(r.Body)
		h.ids, h.body = append(h.ids, r.Header.Get("webhook-id")), append(h.body, string(b))
		code := http.StatusNoContent
		if len(h.replies) > 0 {
			code, h.replies = h.replies[0], h.replies[1:]
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) received() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.ids)
}

func (h *hookReceiver) bodies() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.body)
}

// loopback allows webhook endpoints on this machine, where the test
// receivers are.
var loopback = webhook.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}

// sender returns a webhook sender delivering from e's store under guard.
func (e *env) sender(guard webhook.Guard) *webhook.Sender {
	e.t.Helper()
	s, err := webhook.New(webhook.Config{Store: e.store, Opener: e.ring, Guard: guard, Logger: e.log})
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// deliveries reads an endpoint's delivery log through the API with key.
func (e *env) deliveries(key keyward.Secret, endpointID string) []*keyward.WebhookDelivery {
	e.t.Helper()
	r := e.do("GET", "/v1/webhooks/"+endpointID+"/deliveries", key, "")
	var list keyward.WebhookDeliveryList
	r.decode(e.t, &list)
	if r.status != http.StatusOK {
		e.t.Fatalf("deliveries of %s: %d %s", endpointID, r.status, r.body)
	}
	return list.Items
}

// TestGoneDeliveryResumesOnEnable: the delivery that met a 410 Gone waits
// with the endpoint, disabled, and goes out when an admin enables it
// again; other events wait too.
func TestGoneDeliveryResumesOnEnable(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, envOptions{webhookGuard: loopback})
	a := e.mustAccount("a")
	adminA := keyward.Secret(e.mustKey(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin}).Secret)
	sender := e.sender(loopback)
	// The events so far are dispatched before there is an endpoint.
	if _, err := sender.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	rcv := newHookReceiver(t, http.StatusGone)
	r := e.do("POST", "/v1/webhooks", adminA, `{"url":"`+rcv.srv.URL+`/hook","events":["key.created"]}`)
	var created keyward.CreatedWebhookEndpoint
	r.decode(t, &created)
	e.remember(created.Secret)
	ep := created.Endpoint

	e.mustKey(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin, Name: "first"})
	if _, err := sender.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := rcv.received(); len(got) != 1 {
		t.Fatalf("receiver got %d requests, want the first event once", len(got))
	}
	var cur keyward.WebhookEndpoint
	e.do("GET", "/v1/webhooks/"+ep.ID, adminA, "").decode(t, &cur)
	if !cur.Disabled {
		t.Fatalf("endpoint after a 410: %+v, want disabled", cur)
	}
	ds := e.deliveries(adminA, ep.ID)
	if len(ds) != 1 || ds[0].State != keyward.DeliveryPending || ds[0].LastStatus != http.StatusGone {
		t.Fatalf("delivery log after a 410: %+v, want the delivery pending with status 410", ds)
	}
	// Another event waits for the endpoint too; nothing is sent while it
	// is disabled.
	e.mustKey(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin, Name: "second"})
	if n, err := sender.RunOnce(t.Context()); err != nil || n != 0 {
		t.Fatalf("RunOnce while disabled: %d attempts, %v; want none", n, err)
	}

	if r := e.do("PATCH", "/v1/webhooks/"+ep.ID, adminA, `{"disabled":false}`); r.status != http.StatusOK {
		t.Fatalf("enable: %d %s", r.status, r.body)
	}
	if _, err := sender.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := rcv.received()
	if len(got) != 3 || got[0] != ds[0].EventID || !slices.Contains(got[1:], ds[0].EventID) {
		t.Fatalf("receiver got %v, want the event that met the 410 (%s) again, and the second event", got, ds[0].EventID)
	}
	for _, d := range e.deliveries(adminA, ep.ID) {
		if d.State != keyward.DeliveryDelivered {
			t.Errorf("delivery of %s after enabling: %+v, want delivered", d.EventID, d)
		}
	}
}

// TestDeliveryErrorsRedactedForAccountAdmins: an attempt refused before a
// response (here: the address is on an internal network) shows an
// account admin only the kind of failure, while root and the log get the
// detail; the endpoint's own answers are shown to both.
func TestDeliveryErrorsRedactedForAccountAdmins(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, envOptions{webhookGuard: loopback})
	a := e.mustAccount("a")
	adminA := keyward.Secret(e.mustKey(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin}).Secret)
	// The sender allows the receiver's address only: another loopback
	// address, which the admin's guard let through, is refused.
	sender := e.sender(webhook.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	// The events so far are dispatched before there is an endpoint.
	if _, err := sender.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	rcv := newHookReceiver(t, http.StatusServiceUnavailable)
	hook := func(url string) *keyward.WebhookEndpoint {
		r := e.do("POST", "/v1/webhooks", adminA, `{"url":"`+url+`","events":["key.created"]}`)
		var created keyward.CreatedWebhookEndpoint
		r.decode(t, &created)
		e.remember(created.Secret)
		return created.Endpoint
	}
	answered, refused := hook(rcv.srv.URL+"/hook"), hook("http://127.0.0.2:1/hook")
	e.mustKey(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin, Name: "k"})
	if _, err := sender.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}

	rootView, adminView := e.deliveries(e.root, refused.ID), e.deliveries(adminA, refused.ID)
	if len(rootView) != 1 || !strings.Contains(rootView[0].LastError, "127.0.0.2 is on an internal network") {
		t.Fatalf("root's view of the refused delivery: %+v, want the detail", rootView)
	}
	if len(adminView) != 1 || adminView[0].LastError != "the endpoint's address is not allowed (an internal network)" {
		t.Fatalf("account admin's view of the refused delivery: %+v, want only the kind of failure", adminView)
	}
	if logs := e.logs.String(); !strings.Contains(logs, "127.0.0.2 is on an internal network") {
		t.Errorf("the log lacks the detail of the refused delivery:\n%s", logs)
	}
	for _, key := range []keyward.Secret{e.root, adminA} {
		ds := e.deliveries(key, answered.ID)
		if len(ds) != 1 || ds[0].LastStatus != http.StatusServiceUnavailable || ds[0].LastError != "endpoint answered 503 Service Unavailable" {
			t.Errorf("view of the answered delivery: %+v, want the endpoint's answer", ds)
		}
	}
}
