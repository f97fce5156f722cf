package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

// The API records who acted from where: the key, the client address, the
// User-Agent and the X-Request-Id; refused admin actions are recorded too.
func TestAuditOverHTTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.mustAccount("acme")
	admin := e.mustKey(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin})
	h := bearer(e.root.Reveal())
	h["User-Agent"], h["X-Request-Id"] = "ops-script/1.0", "req-42"
	if r := e.send(request{method: "POST", path: "/v1/accounts", header: h, body: `{"name":"beta"}`}); r.status != http.StatusCreated {
		t.Fatalf("create account: %d %s", r.status, r.body)
	}
	if r := e.do("DELETE", "/v1/accounts/"+a.ID, keyward.Secret(admin.Secret), ""); r.status != http.StatusForbidden {
		t.Fatalf("account admin deleting its account: %d, want 403", r.status)
	}

	r := e.do("GET", "/v1/audit?action=account.create", e.root, "")
	var l keyward.AuditList
	if err := json.Unmarshal(r.body, &l); err != nil || r.status != http.StatusOK {
		t.Fatalf("GET /v1/audit: %d %s", r.status, r.body)
	}
	last := l.Items[len(l.Items)-1]
	if last.Actor.KeyID != e.rootKey.ID || last.Actor.UserAgent != "ops-script/1.0" || last.Actor.RequestID != "req-42" || last.Actor.IP != "127.0.0.1" {
		t.Errorf("account.create actor = %+v", last.Actor)
	}
	r = e.do("GET", "/v1/audit?action=auth.denied", e.root, "")
	if err := json.Unmarshal(r.body, &l); err != nil || len(l.Items) != 1 ||
		l.Items[0].TargetID != "DELETE /v1/accounts/{id}" || l.Items[0].Actor.KeyID != admin.ID || l.Items[0].Outcome != keyward.AuditDenied {
		t.Fatalf("denied entries: %s", r.body)
	}
	r = e.do("GET", "/v1/audit/verify", e.root, "")
	var v keyward.AuditVerification
	if err := json.Unmarshal(r.body, &v); err != nil || !v.OK || v.Entries < 4 {
		t.Fatalf("verify: %s", r.body)
	}
	if r := e.do("GET", "/v1/audit?since=yesterday", e.root, ""); r.status != http.StatusBadRequest {
		t.Errorf("bad since: %d, want 400", r.status)
	}

	// A checkpoint of the head, verified against; a malformed one is bad
	// input.
	r = e.do("GET", "/v1/audit/head", e.root, "")
	var head keyward.AuditCheckpoint
	if err := json.Unmarshal(r.body, &head); err != nil || r.status != http.StatusOK || head.Seq < 4 || head.MAC == "" {
		t.Fatalf("head: %d %s", r.status, r.body)
	}
	r = e.do("GET", "/v1/audit/verify?expect="+head.String(), e.root, "")
	if err := json.Unmarshal(r.body, &v); err != nil || !v.OK {
		t.Fatalf("verify against the head: %s", r.body)
	}
	if r := e.do("GET", "/v1/audit/verify?expect=12:zz", e.root, ""); r.status != http.StatusBadRequest || !bytes.Contains(r.body, []byte(`"code":"invalid"`)) {
		t.Errorf("verify with a malformed checkpoint: %d %s, want 400 invalid", r.status, r.body)
	}
}

// TestAuditRedactsActorsOfOtherAccounts: a secret scanner of account B
// reports a key of account A leaked. A's admin sees the key.leaked entry
// and event without the scanner's key, account, user, address, User-Agent
// or request id; root sees them all; A's own actors stay visible to A.
func TestAuditRedactsActorsOfOtherAccounts(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, envOptions{webhookGuard: loopback})
	a, b := e.mustAccount("a"), e.mustAccount("b")
	adminA := keyward.Secret(e.mustKey(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin}).Secret)
	leaked := e.mustKey(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin, Name: "leaked"})
	scanner := e.mustKey(keyward.KeyCreate{AccountID: b.ID, Role: keyward.RoleAccountAdmin, Permissions: []string{keyward.PermissionReportLeak}})
	sender := e.sender(loopback)
	if _, err := sender.RunOnce(t.Context()); err != nil { // the events so far, before any endpoint
		t.Fatal(err)
	}
	rcv := newHookReceiver(t)
	r := e.do("POST", "/v1/webhooks", adminA, `{"url":"`+rcv.srv.URL+`/hook","events":["key.leaked"]}`)
	var created keyward.CreatedWebhookEndpoint
	r.decode(t, &created)
	e.remember(created.Secret)

	h := bearer(scanner.Secret)
	h["User-Agent"], h["X-Request-Id"] = "scanner/2.0", "req-b-7"
	if r := e.send(request{method: "POST", path: "/v1/leaks", header: h, body: `{"tokens":[{"token":"` + leaked.Secret + `","source":"github"}]}`}); r.status != http.StatusOK {
		t.Fatalf("report: %d %s", r.status, r.body)
	}
	entry := func(key keyward.Secret, action string) *keyward.AuditEntry {
		t.Helper()
		var l keyward.AuditList
		e.do("GET", "/v1/audit?action="+action, key, "").decode(t, &l)
		if len(l.Items) != 1 {
			t.Fatalf("%s entries: %+v, want one", action, l.Items)
		}
		return l.Items[0]
	}

	full := keyward.AuditActor{KeyID: scanner.ID, AccountID: b.ID, Role: keyward.RoleAccountAdmin, IP: "127.0.0.1", UserAgent: "scanner/2.0", RequestID: "req-b-7"}
	if got := entry(e.root, "key.leaked"); got.Actor != full || got.TargetID != leaked.ID {
		t.Errorf("root's key.leaked entry: actor %+v, target %s; want actor %+v, target %s", got.Actor, got.TargetID, full, leaked.ID)
	}
	got := entry(adminA, "key.leaked")
	if want := (keyward.AuditActor{Role: keyward.RoleAccountAdmin, Redacted: true}); got.Actor != want || got.TargetID != leaked.ID {
		t.Errorf("A's key.leaked entry: actor %+v, target %s; want actor %+v, target %s", got.Actor, got.TargetID, want, leaked.ID)
	}
	for _, s := range []string{scanner.ID, b.ID, "scanner/2.0", "req-b-7"} {
		if body := e.do("GET", "/v1/audit", adminA, "").body; strings.Contains(string(body), s) {
			t.Errorf("A's audit log shows %q of account B", s)
		}
	}
	// A's own actor is not redacted for A.
	if got := entry(adminA, "webhook.create"); got.Actor.Redacted || got.Actor.KeyID == "" {
		t.Errorf("A's webhook.create entry, A reading: actor %+v, want it whole", got.Actor)
	}

	if _, err := sender.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	bodies := rcv.bodies()
	if len(bodies) != 1 || strings.Contains(bodies[0], scanner.ID) || !strings.Contains(bodies[0], `"redacted":true`) {
		t.Errorf("key.leaked event at A's endpoint: %q, want one, with the actor redacted", bodies)
	}
}
