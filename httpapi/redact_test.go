package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// TestRawKeysNeverEchoed puts a raw key, and one with a typo, wherever a
// client can put an id (every route's path ids, query filters, body
// fields, unknown routes, forward-auth's path, a leak report's URL): no
// answer and no log line, at debug level included, holds it (the env
// scans the logs for every remembered secret when the test ends). Ids are
// still echoed as before.
func TestRawKeysNeverEchoed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.mustAccount("acme")
	raw := e.mustKey(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin}).Secret
	typo := raw[:len(raw)-1] + map[bool]string{true: "B", false: "A"}[strings.HasSuffix(raw, "A")]
	e.remember(typo)

	check := func(t *testing.T, method, path, body string) *response {
		t.Helper()
		r := e.do(method, path, e.root, body)
		for _, k := range []string{raw, typo} {
			if strings.Contains(string(r.body), k) || strings.Contains(r.header.Get("Location"), k) {
				t.Errorf("%s %s answered %d echoing the key: %s", method, path, r.status, r.body)
			}
		}
		return r
	}
	for _, k := range []string{raw, typo} {
		for _, route := range e.srv.Routes() {
			method, pattern, ok := strings.Cut(route, " ")
			if !ok || !strings.Contains(pattern, "{") || strings.Contains(pattern, "...}") {
				continue
			}
			path := strings.NewReplacer("{id}", k, "{uid}", k).Replace(pattern)
			body := ""
			if method == "POST" || method == "PUT" || method == "PATCH" {
				body = "{}"
			}
			r := check(t, method, path, body)
			if p := r.problem(t); r.status != http.StatusNotFound || !strings.Contains(p.Detail, "holds an API key") {
				t.Errorf("%s: %d %+v, want 404 saying the path holds a key", route, r.status, p)
			}
		}
		// With a valid first id, the second is checked too.
		check(t, "GET", "/v1/accounts/"+a.ID+"/users/"+k, "")
		for _, c := range []struct{ method, path, body string }{
			{"GET", "/v1/keys?account_id=" + k, ""},
			{"GET", "/v1/keys?" + k + "=1", ""},
			{"GET", "/v1/audit?actor_key_id=" + k + "&after=" + k, ""},
			{"GET", "/v1/usage?key_id=" + k, ""},
			{"POST", "/v1/keys", `{"account_id":"` + k + `","role":"account_admin"}`},
			{"POST", "/v1/accounts/" + a.ID + "/users", `{"name":"` + k + `"}`}, // refused: never stored
			{"POST", "/v1/webhooks", `{"url":"https://hooks.example.com/` + k + `","account_id":"` + k + `"}`},
			{"GET", "/v1/" + k, ""},
			{"PUT", "/v1/keys/" + k, ""},
			{"GET", "/v1/forward-auth/" + k, ""},
		} {
			check(t, c.method, c.path, c.body)
		}
	}
	r := check(t, "POST", "/v1/accounts/"+a.ID+"/users", `{"name":"alice `+raw+`"}`)
	if p := r.problem(t); r.status != http.StatusBadRequest || p.Code != keyward.EINVALID {
		t.Errorf("a user named with a key: %d %+v, want 400 INVALID", r.status, p)
	}
	// Where a leak was found is kept and logged without the key it quotes.
	victim := e.mustKey(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin})
	check(t, "POST", "/v1/leaks", `{"tokens":[{"token":"`+victim.Secret+`","source":"paste `+victim.Secret+`","url":"https://paste.example.com/?q=`+victim.Secret+`"}]}`)
	var l keyward.AuditList
	check(t, "GET", "/v1/audit?action=key.leaked", "").decode(t, &l)
	if len(l.Items) != 1 || !strings.Contains(string(l.Items[0].Details), apikey.RedactedKey) {
		t.Errorf("key.leaked entries: %+v, want one whose source and URL have the key redacted", l.Items)
	}

	// An id is echoed as before.
	r = check(t, "GET", "/v1/keys/key_0000000000nothere0000", "")
	if p := r.problem(t); r.status != http.StatusNotFound || !strings.Contains(p.Detail, "key_0000000000nothere0000") || p.Instance != "/v1/keys/key_0000000000nothere0000" {
		t.Errorf("unknown key id: %d %+v, want 404 naming the id", r.status, p)
	}
}
