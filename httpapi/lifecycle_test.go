package httpapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

// TestRotationPolicies sets, reads and removes rotation policies of an
// account and of a key through the API, as root and as the account's
// admin, and checks the scoping and the validation.
func TestRotationPolicies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := e.mustAccount("a"), e.mustAccount("b")
	adminA := keyward.Secret(e.mustKey(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin}).Secret)
	adminB := keyward.Secret(e.mustKey(keyward.KeyCreate{AccountID: b.ID, Role: keyward.RoleAccountAdmin}).Secret)
	usr := e.mustUser(a.ID, "alice")
	userKey := e.mustKey(keyward.KeyCreate{AccountID: a.ID, UserID: usr.ID, Role: keyward.RoleUser})
	user := keyward.Secret(userKey.Secret)

	paths := map[string]string{
		"account": "/v1/accounts/" + a.ID + "/rotation-policy",
		"key":     "/v1/keys/" + userKey.ID + "/rotation-policy",
	}
	for _, scope := range []string{"account", "key"} {
		path := paths[scope]
		for _, caller := range []struct {
			name string
			key  keyward.Secret
		}{{"root", e.root}, {"account admin", adminA}} {
			t.Run(scope+" as "+caller.name, func(t *testing.T) {
				if r := e.do("GET", path, caller.key, ""); r.status != http.StatusNotFound || r.problem(t).Code != keyward.ENOTFOUND {
					t.Fatalf("GET before set: %d %s, want 404", r.status, r.body)
				}
				r := e.do("PUT", path, caller.key, `{"max_age":"2160h","expire_after":"336h"}`)
				if r.status != http.StatusOK {
					t.Fatalf("PUT: %d %s", r.status, r.body)
				}
				var p keyward.RotationPolicy
				r.decode(t, &p)
				if time.Duration(p.MaxAge) != 90*24*time.Hour || time.Duration(p.ExpireAfter) != 14*24*time.Hour || p.UpdatedAt.IsZero() || p.UpdatedBy == "" {
					t.Errorf("set policy = %+v", p)
				}
				if scope == "account" && (p.AccountID != a.ID || p.KeyID != "") || scope == "key" && (p.KeyID != userKey.ID || p.AccountID != "") {
					t.Errorf("policy belongs to account %q key %q, want the %s", p.AccountID, p.KeyID, scope)
				}
				// Replacing it drops a notice period left out.
				if r := e.do("PUT", path, caller.key, `{"max_age":"720h"}`); r.status != http.StatusOK {
					t.Fatalf("PUT again: %d %s", r.status, r.body)
				}
				r = e.do("GET", path, caller.key, "")
				if r.status != http.StatusOK {
					t.Fatalf("GET: %d %s", r.status, r.body)
				}
				var got keyward.RotationPolicy
				r.decode(t, &got)
				if time.Duration(got.MaxAge) != 720*time.Hour || got.ExpireAfter != 0 {
					t.Errorf("read policy = %+v, want max_age 720h and no expire_after", got)
				}
				if r := e.do("DELETE", path, caller.key, ""); r.status != http.StatusNoContent || len(r.body) != 0 {
					t.Fatalf("DELETE: %d %s", r.status, r.body)
				}
				if r := e.do("GET", path, caller.key, ""); r.status != http.StatusNotFound {
					t.Errorf("GET after delete: %d, want 404", r.status)
				}
				if r := e.do("DELETE", path, caller.key, ""); r.status != http.StatusNotFound || r.problem(t).Code != keyward.ENOTFOUND {
					t.Errorf("DELETE again: %d %s, want 404", r.status, r.body)
				}
			})
		}
	}

	t.Run("scoping", func(t *testing.T) {
		for _, path := range paths {
			for _, c := range []struct {
				name   string
				key    keyward.Secret
				status int
				code   string
			}{
				{"a user", user, 403, keyward.EFORBIDDEN},
				{"another account's admin", adminB, 404, keyward.ENOTFOUND},
			} {
				for _, m := range []struct{ method, body string }{{"PUT", `{"max_age":"24h"}`}, {"GET", ""}, {"DELETE", ""}} {
					r := e.do(m.method, path, c.key, m.body)
					if r.status != c.status || r.problem(t).Code != c.code {
						t.Errorf("%s %s as %s: %d %s, want %d %s", m.method, path, c.name, r.status, r.body, c.status, c.code)
					}
				}
			}
		}
		for _, path := range []string{"/v1/accounts/acc_nope/rotation-policy", "/v1/keys/key_nope/rotation-policy"} {
			if r := e.do("PUT", path, e.root, `{"max_age":"24h"}`); r.status != http.StatusNotFound {
				t.Errorf("PUT %s: %d %s, want 404", path, r.status, r.body)
			}
		}
	})

	t.Run("invalid", func(t *testing.T) {
		for _, body := range []string{
			`{"max_age":"-24h"}`,
			`{"max_age":"0s"}`,
			`{"max_age":"30m"}`,
			`{"max_age":"100000h"}`,
			`{"max_age":"90d"}`,
			`{"max_age":90}`,
			`{}`,
			`{"max_age":"24h","expire_after":"-1h"}`,
			`{"max_age":"24h","expire_after":"9000h"}`,
			`{"max_age":"24h","grace":"1h"}`,
			`not json`,
		} {
			for _, path := range paths {
				r := e.do("PUT", path, e.root, body)
				if r.status != http.StatusBadRequest || r.problem(t).Code != keyward.EINVALID {
					t.Errorf("PUT %s %s: %d %s, want 400 INVALID", path, body, r.status, r.body)
				}
			}
		}
		if r := e.do("GET", paths["account"], e.root, ""); r.status != http.StatusNotFound {
			t.Errorf("a refused PUT stored a policy: GET %d %s", r.status, r.body)
		}
	})
}
