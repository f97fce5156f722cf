package console_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

func TestAuditPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	accA, accB := e.account("alpha"), e.account("beta")
	keyA := e.key(keyward.KeyCreate{AccountID: accA.ID, Role: keyward.RoleAccountAdmin, Name: "alpha-admin"})
	adminB := e.key(keyward.KeyCreate{AccountID: accB.ID, Role: keyward.RoleAccountAdmin})
	userB := e.user(accB.ID, "bob")
	keyB := e.key(keyward.KeyCreate{AccountID: accB.ID, UserID: userB.ID, Role: keyward.RoleUser})

	root := e.browser()
	root.signIn(e.root)
	if p := root.post("/console/keys/"+keyA.ID+"/revoke", nil); p.status != http.StatusSeeOther {
		t.Fatalf("revoke: %d", p.status)
	}
	p := root.get("/console/audit?action=key.revoke")
	if p.status != 200 || !strings.Contains(p.body, keyA.ID) || strings.Count(p.body, "<tr><td") != 1 || !strings.Contains(p.body, "from 127.0.0.1") {
		t.Fatalf("audit filtered by key.revoke: %d, %d rows", p.status, strings.Count(p.body, "<tr><td"))
	}
	if p := root.get("/console/audit"); !strings.Contains(p.body, `href="/console/audit/verify"`) || !strings.Contains(p.body, "account.create") {
		t.Error("root's audit page lacks the chain check or the entries")
	}
	if p := root.get("/console/audit/verify"); p.status != 200 || !strings.Contains(p.body, "The chain is intact") {
		t.Errorf("chain check: %d %.300s", p.status, p.body)
	}

	// Pages: 50 entries, then the rest.
	for i := range 55 {
		if _, err := e.svc.Tenancy.CreateUser(e.rootCtx(), accB.ID, keyward.UserCreate{Name: "u" + string(rune('a'+i%26)) + strings.Repeat("x", i)}); err != nil {
			t.Fatal(err)
		}
	}
	first := root.get("/console/audit?action=user.create")
	m := mustRE(`<a href="(/console/audit\?[^"]+)" rel="next">`).FindStringSubmatch(first.body)
	if strings.Count(first.body, "<tr><td") != 50 || m == nil {
		t.Fatalf("first audit page: %d rows, next link %v", strings.Count(first.body, "<tr><td"), m != nil)
	}
	if second := root.get(strings.ReplaceAll(m[1], "&amp;", "&")); strings.Count(second.body, "<tr><td") != 6 {
		t.Errorf("second audit page: %d rows, want 6 (56 users)", strings.Count(second.body, "<tr><td"))
	}

	// An account admin reads its account's entries only, and may not check the chain.
	admin := e.browser()
	admin.signIn(adminB.Secret)
	p = admin.get("/console/audit")
	if p.status != 200 || strings.Contains(p.body, keyA.ID) || strings.Contains(p.body, accA.ID) || !strings.Contains(p.body, accB.ID) {
		t.Errorf("account admin's audit page: %d, shows account alpha: %v", p.status, strings.Contains(p.body, accA.ID))
	}
	if strings.Contains(p.body, "/console/audit/verify") {
		t.Error("account admin is offered the chain check")
	}
	if p := admin.get("/console/audit/verify"); p.status != http.StatusForbidden {
		t.Errorf("account admin checks the chain: %d, want 403", p.status)
	}
	if p := admin.get("/console/audit?account=" + accA.ID); p.status != http.StatusNotFound && (p.status != 200 || strings.Contains(p.body, accA.ID+"</td>")) {
		t.Errorf("account admin filtering by another account: %d", p.status)
	}
	// A user key reads none, and is not offered the page.
	user := e.browser()
	user.signIn(keyB.Secret)
	if p := user.get("/console/keys"); strings.Contains(p.body, "/console/audit") {
		t.Error("a user key's navigation links to the audit log")
	}
	if p := user.get("/console/audit"); p.status != http.StatusForbidden {
		t.Errorf("user key reads the audit log: %d, want 403", p.status)
	}
}
