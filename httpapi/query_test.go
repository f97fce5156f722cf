package httpapi_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

// TestVerifyQuery: POST /v1/keys/verify takes a permission query and a
// required role next to permissions and answers what is missing; a query
// that does not parse is a 400 invalid_query problem naming the position,
// whatever the key; a held wildcard covers the permissions asked for.
func TestVerifyQuery(t *testing.T) {
	e := newEnv(t)
	a := e.mustAccount("acme")
	u := e.mustUser(a.ID, "alice")
	k := e.mustKey(keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Role: keyward.RoleUser, Permissions: []string{"memories:*", "search:run"}})

	for _, c := range []struct {
		name, body  string
		code        keyward.Decision
		missing     []string
		missingRole keyward.Role
	}{
		{"query held", `{"key":"` + k.Secret + `","query":"memories:read AND (search:run OR admin:*)"}`, keyward.DecisionValid, nil, ""},
		{"wildcard covers the list", `{"key":"` + k.Secret + `","permissions":["memories:notes.write"]}`, keyward.DecisionValid, nil, ""},
		{"query and list missing", `{"key":"` + k.Secret + `","permissions":["billing:read"],"query":"memories:read AND (admin:* OR search:*)"}`,
			keyward.DecisionInsufficientPermissions, []string{"billing:read", "admin:*", "search:*"}, ""},
		{"role", `{"key":"` + k.Secret + `","query":"memories:read","require_role":"account_admin"}`, keyward.DecisionInsufficientPermissions, nil, keyward.RoleAccountAdmin},
		{"role held", `{"key":"` + k.Secret + `","require_role":"user"}`, keyward.DecisionValid, nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(http.MethodPost, "/v1/keys/verify", e.root, c.body)
			if r.status != http.StatusOK {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			var res keyward.VerifyResult
			r.decode(t, &res)
			if res.Code != c.code || !reflect.DeepEqual(res.MissingPermissions, c.missing) || res.MissingRole != c.missingRole {
				t.Errorf("result %s missing %q %q, want %s %q %q", res.Code, res.MissingPermissions, res.MissingRole, c.code, c.missing, c.missingRole)
			}
		})
	}

	for _, c := range []struct {
		body, code string
		position   int
		detail     string
	}{
		{`{"key":"kw_user_unknown","query":"memories:read AND (search:run"}`, keyward.EQUERY, 30, "expected ')'"},
		{`{"key":"` + k.Secret + `","query":"memories:read OR OR"}`, keyward.EQUERY, 18, "got OR"},
		{`{"key":"` + k.Secret + `","query":"mem*"}`, keyward.EQUERY, 1, "within a segment"},
		{`{"key":"` + k.Secret + `","require_role":"Owner!"}`, keyward.EINVALID, 0, "require_role"},
	} {
		r := e.do(http.MethodPost, "/v1/keys/verify", e.root, c.body)
		if r.status != http.StatusBadRequest {
			t.Fatalf("%s: status %d, want 400: %s", c.body, r.status, r.body)
		}
		p := r.problem(t)
		if p.Code != c.code || p.Position != c.position || !strings.Contains(p.Detail, c.detail) {
			t.Errorf("%s: problem %+v, want code %s at position %d saying %q", c.body, p, c.code, c.position, c.detail)
		}
	}
}
