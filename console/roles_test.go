package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

func TestNamedRolesPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	accA, accB := e.account("alpha"), e.account("beta")
	adminB := e.key(keyward.KeyCreate{AccountID: accB.ID, Role: keyward.RoleAccountAdmin, Permissions: []string{"memories:*"}})
	userB := e.user(accB.ID, "bob")
	keyB := e.key(keyward.KeyCreate{AccountID: accB.ID, UserID: userB.ID, Role: keyward.RoleUser})
	if _, err := e.svc.Roles.CreateRole(e.rootCtx(), accA.ID, keyward.RoleCreate{Name: "secret-alpha-role", Permissions: []string{"billing:read"}}); err != nil {
		t.Fatal(err)
	}

	admin := e.browser()
	admin.signIn(adminB.Secret)
	rolesB := "/console/accounts/" + accB.ID + "/roles"
	if p := admin.get("/console/accounts/" + accB.ID); !strings.Contains(p.body, `href="`+rolesB+`"`) {
		t.Error("the account page does not link to its named roles")
	}
	if p := admin.get(rolesB); p.status != 200 || !strings.Contains(p.body, "No named roles yet") {
		t.Fatalf("roles page: %d", p.status)
	}
	if p := admin.post(rolesB, url.Values{"name": {"reader"}, "permissions": {"memories:read"}}); p.status != http.StatusSeeOther {
		t.Fatalf("create role: %d %.300s", p.status, p.body)
	}
	// No escalation: the admin holds memories:* only.
	if p := admin.post(rolesB, url.Values{"name": {"payer"}, "permissions": {"billing:read"}}); p.status != http.StatusForbidden {
		t.Errorf("create a role beyond the admin's permissions: %d, want 403", p.status)
	}
	if p := admin.post(rolesB+"/reader", url.Values{"permissions": {"memories:read memories:notes:*"}}); p.status != http.StatusSeeOther {
		t.Fatalf("update role: %d %.300s", p.status, p.body)
	}
	r, err := e.svc.Roles.Role(e.rootCtx(), accB.ID, "reader")
	if err != nil || strings.Join(r.Permissions, " ") != "memories:notes:* memories:read" {
		t.Fatalf("role after the update: %+v, %v", r, err)
	}
	if p := admin.get(rolesB); !strings.Contains(p.body, `value="memories:notes:* memories:read"`) {
		t.Error("the roles page does not show the role's permissions in its form")
	}
	l, err := e.svc.Audit.AuditEntries(e.rootCtx(), keyward.AuditFilter{Action: "role.update", ActorKeyID: adminB.ID}, keyward.Page{})
	if err != nil || len(l.Items) != 1 {
		t.Errorf("role.update audited with the signed-in key: %v, %v", l, err)
	}
	// Another account's roles do not exist for this admin.
	rolesA := "/console/accounts/" + accA.ID + "/roles"
	for _, p := range []page{admin.get(rolesA), admin.post(rolesA, url.Values{"name": {"x"}}), admin.post(rolesA+"/secret-alpha-role/delete", nil)} {
		if p.status != http.StatusNotFound || strings.Contains(p.body, "secret-alpha-role") || strings.Contains(p.body, "alpha") {
			t.Errorf("account admin on another account's roles: %d, want 404 without a trace", p.status)
		}
	}
	if _, err := e.svc.Roles.Role(e.rootCtx(), accA.ID, "secret-alpha-role"); err != nil {
		t.Errorf("another account's role was deleted: %v", err)
	}
	if p := admin.post(rolesB+"/reader/delete", nil); p.status != http.StatusSeeOther {
		t.Fatalf("delete role: %d", p.status)
	}
	if _, err := e.svc.Roles.Role(e.rootCtx(), accB.ID, "reader"); keyward.ErrorCode(err) != keyward.ENOTFOUND {
		t.Errorf("role after delete: %v", err)
	}
	// A user key may not manage roles.
	user := e.browser()
	user.signIn(keyB.Secret)
	if p := user.get(rolesB); p.status != http.StatusForbidden && p.status != http.StatusNotFound {
		t.Errorf("user key on the roles page: %d", p.status)
	}
	if p := user.post(rolesB, url.Values{"name": {"sneaky"}, "permissions": {"memories:read"}}); p.status != http.StatusForbidden {
		t.Errorf("user key creates a role: %d, want 403", p.status)
	}
}
