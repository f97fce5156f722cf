package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

// TestWebhookEndpoints manages endpoints through the API as root and as an
// account admin, and checks the scoping, the URL guard and that the secret
// is shown only on creation and rotation.
func TestWebhookEndpoints(t *testing.T) {
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
