package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

// TestUserIdentity updates a user and looks it up by external id through
// the API, and sees verify answer with the user's external id and its meta
// and secret metadata under the key's own; the secret is never read back,
// logged or audited in clear.
func TestUserIdentity(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const userDSN = "postgres://alice:user-pw-4d2e@db.internal/alice"
	e.remember(userDSN)
	root := e.root
	a := e.mustAccount("acme")
	other := e.mustAccount("globex")

	r := e.do("POST", "/v1/accounts/"+a.ID+"/users", root, `{"name":"alice","external_id":"auth0|alice","meta":{"plan":"pro"}}`)
	if r.status != http.StatusCreated {
		t.Fatalf("create user: %d %s", r.status, r.body)
	}
	var u keyward.User
	r.decode(t, &u)
	bob := e.mustUser(a.ID, "bob")
	if r := e.do("PATCH", "/v1/accounts/"+a.ID+"/users/"+bob.ID, root, `{"external_id":"auth0|bob"}`); r.status != http.StatusOK {
		t.Fatalf("PATCH bob: %d %s", r.status, r.body)
	}

	// The user's secret: set by PATCH, said to exist, never returned.
	r = e.do("PATCH", "/v1/accounts/"+a.ID+"/users/"+u.ID, root, `{"secret_meta":{"dsn":"`+userDSN+`"},"meta":{"plan":"pro","region":"eu"}}`)
	if r.status != http.StatusOK || bytes.Contains(r.body, []byte("user-pw")) || !bytes.Contains(r.body, []byte(`"has_secret_meta":true`)) {
		t.Fatalf("PATCH secret_meta: %d %s", r.status, r.body)
	}
	lookup := "/v1/accounts/" + a.ID + "/users/lookup?external_id=" + url.QueryEscape("auth0|alice")
	for _, path := range []string{"/v1/accounts/" + a.ID + "/users/" + u.ID, "/v1/accounts/" + a.ID + "/users", lookup} {
		r := e.do("GET", path, root, "")
		if r.status != http.StatusOK || bytes.Contains(r.body, []byte("user-pw")) || !bytes.Contains(r.body, []byte(`"has_secret_meta":true`)) {
			t.Fatalf("GET %s: %d %s", path, r.status, r.body)
		}
	}
	var found keyward.User
	e.do("GET", lookup, root, "").decode(t, &found)
	if found.ID != u.ID {
		t.Fatalf("lookup found %+v, want %s", found, u.ID)
	}

	// Verify: the identity names the external id; meta and secret meta
	// are the user's with the key's own laid over them.
	k := e.mustKey(keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Meta: json.RawMessage(`{"plan":"free"}`), SecretMeta: json.RawMessage(`{"schema":"ci"}`)})
	res, err := e.client(root).VerifyKey(t.Context(), keyward.VerifyRequest{Key: k.Secret})
	if err != nil || !res.Valid || res.Identity.ExternalID != "auth0|alice" {
		t.Fatalf("verify = %+v, %v", res, err)
	}
	if got := compact(t, res.Meta); got != `{"plan":"free","region":"eu"}` {
		t.Errorf("meta = %s", got)
	}
	if got := compact(t, res.SecretMeta); got != `{"dsn":"`+userDSN+`","schema":"ci"}` {
		t.Errorf("secret_meta = %s", got)
	}
	// The key sees its own identity too.
	who, err := e.client(keyward.Secret(k.Secret)).WhoAmI(t.Context())
	if err != nil || who.ExternalID != "auth0|alice" {
		t.Fatalf("whoami = %+v, %v", who, err)
	}

	// Through the Go client.
	cl := e.client(root)
	if got, err := cl.UserByExternalID(t.Context(), a.ID, "auth0|bob"); err != nil || got.ID != bob.ID {
		t.Fatalf("client lookup = %+v, %v", got, err)
	}
	name := "Alice L."
	if got, err := cl.UpdateUser(t.Context(), a.ID, u.ID, keyward.UserUpdate{Name: &name}); err != nil || got.Name != name || got.ExternalID != "auth0|alice" {
		t.Fatalf("client update = %+v, %v", got, err)
	}

	// A taken external id: 409, nothing changed.
	r = e.do("PATCH", "/v1/accounts/"+a.ID+"/users/"+u.ID, root, `{"name":"Mallory","external_id":"auth0|bob"}`)
	if r.status != http.StatusConflict || r.problem(t).Code != keyward.ECONFLICT {
		t.Fatalf("PATCH to a taken external id: %d %s", r.status, r.body)
	}
	if got, err := cl.User(t.Context(), a.ID, u.ID); err != nil || got.Name != name || got.ExternalID != "auth0|alice" {
		t.Fatalf("after a refused update: %+v, %v", got, err)
	}

	// Bad input and unknown users.
	for _, c := range []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/v1/accounts/" + a.ID + "/users/lookup", "", http.StatusBadRequest},
		{"GET", "/v1/accounts/" + a.ID + "/users/lookup?external_id=x&user_id=y", "", http.StatusBadRequest},
		{"GET", "/v1/accounts/" + a.ID + "/users/lookup?external_id=auth0%7Cnobody", "", http.StatusNotFound},
		{"GET", "/v1/accounts/" + other.ID + "/users/lookup?external_id=" + url.QueryEscape("auth0|alice"), "", http.StatusNotFound},
		{"PATCH", "/v1/accounts/" + a.ID + "/users/" + u.ID, `{"name":""}`, http.StatusBadRequest},
		{"PATCH", "/v1/accounts/" + a.ID + "/users/" + u.ID, `{"meta":[1]}`, http.StatusBadRequest},
		{"PATCH", "/v1/accounts/" + a.ID + "/users/" + u.ID, `{"secret_meta":"dsn"}`, http.StatusBadRequest},
		{"PATCH", "/v1/accounts/" + a.ID + "/users/" + u.ID, `{"secret_meta":{"a":1},"clear_secret_meta":true}`, http.StatusBadRequest},
		{"PATCH", "/v1/accounts/" + a.ID + "/users/" + u.ID, `{"nickname":"x"}`, http.StatusBadRequest},
		{"PATCH", "/v1/accounts/" + a.ID + "/users/usr_missing", `{"name":"x"}`, http.StatusNotFound},
		{"PATCH", "/v1/accounts/" + other.ID + "/users/" + u.ID, `{"name":"x"}`, http.StatusNotFound},
	} {
		if r := e.do(c.method, c.path, root, c.body); r.status != c.status {
			t.Errorf("%s %s %s: %d %s, want %d", c.method, c.path, c.body, r.status, r.body, c.status)
		}
	}

	// Who may: the account's admin (not meta); not another account's
	// admin; not a user key, even on its own user.
	adminA := e.mustKey(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin})
	adminB := e.mustKey(keyward.KeyCreate{AccountID: other.ID, Role: keyward.RoleAccountAdmin})
	userPath := "/v1/accounts/" + a.ID + "/users/" + u.ID
	for _, c := range []struct {
		who    string
		key    string
		body   string
		status int
	}{
		{"the account's admin", adminA.Secret, `{"secret_meta":{"dsn":"` + userDSN + `"}}`, http.StatusOK},
		{"the account's admin, meta", adminA.Secret, `{"meta":{"plan":"enterprise"}}`, http.StatusForbidden},
		{"another account's admin", adminB.Secret, `{"name":"x"}`, http.StatusNotFound},
		{"the user's own key", k.Secret, `{"secret_meta":{"dsn":"postgres://mine"}}`, http.StatusForbidden},
		{"the user's own key, a rename", k.Secret, `{"name":"me"}`, http.StatusForbidden},
	} {
		if r := e.do("PATCH", userPath, keyward.Secret(c.key), c.body); r.status != c.status {
			t.Errorf("PATCH as %s: %d %s, want %d", c.who, r.status, r.body, c.status)
		}
	}
	if r := e.do("GET", lookup, keyward.Secret(k.Secret), ""); r.status != http.StatusForbidden {
		t.Errorf("lookup by a user key: %d %s", r.status, r.body)
	}
	if r := e.do("GET", lookup, keyward.Secret(adminB.Secret), ""); r.status != http.StatusNotFound {
		t.Errorf("lookup by another account's admin: %d %s", r.status, r.body)
	}

	// Audited without the secret.
	audit, err := cl.AuditEntries(t.Context(), keyward.AuditFilter{Action: "user.update", TargetID: u.ID}, keyward.Page{})
	if err != nil || len(audit.Items) == 0 {
		t.Fatalf("audit of user.update = %+v, %v", audit, err)
	}
	set := 0
	for _, en := range audit.Items {
		if bytes.Contains(en.Details, []byte("user-pw")) {
			t.Errorf("audit entry %d holds the secret: %s", en.Seq, en.Details)
		}
		if strings.Contains(string(en.Details), `"secret_meta":"set"`) {
			set++
		}
	}
	if set != 2 { // root's PATCH and the account admin's
		t.Errorf("%d user.update entries say secret_meta was set, want 2", set)
	}
}
