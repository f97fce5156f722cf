package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/keyward/keyward"
)

// The API records who acted from where: the key, the client address, the
// User-Agent and the X-Request-Id; refused admin actions are recorded too.
func TestAuditOverHTTP(t *testing.T) {
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
