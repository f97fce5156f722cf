package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keywardtest"
)

func TestIPRulesPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	accA, accB := e.account("alpha"), e.account("beta")
	adminB := e.key(keyward.KeyCreate{AccountID: accB.ID, Role: keyward.RoleAccountAdmin})
	userB := e.user(accB.ID, "bob")
	keyB := e.key(keyward.KeyCreate{AccountID: accB.ID, UserID: userB.ID, Role: keyward.RoleUser})
	ruleA, err := e.svc.Abuse.CreateIPRule(e.rootCtx(), keyward.IPRuleCreate{AccountID: accA.ID, Action: keyward.IPBlock, CIDR: "198.51.100.0/24", Reason: "alpha-only"})
	if err != nil {
		t.Fatal(err)
	}

	root := e.browser()
	root.signIn(e.root)
	if p := root.post("/console/ip-rules", url.Values{"action": {"block"}, "cidr": {"203.0.113.7"}, "reason": {"scanner"}, "expires_in": {"24h"}}); p.status != http.StatusSeeOther {
		t.Fatalf("root creates a global block: %d %.300s", p.status, p.body)
	}
	p := root.get("/console/ip-rules?scope=global")
	if !strings.Contains(p.body, "203.0.113.7/32") || strings.Contains(p.body, "alpha-only") {
		t.Error("the global list misses the new rule or shows an account's")
	}
	if p := root.get("/console/ip-rules"); !strings.Contains(p.body, "alpha-only") || !strings.Contains(p.body, "203.0.113.7/32") {
		t.Error("root's full list misses a rule")
	}
	if p := root.post("/console/ip-rules", url.Values{"action": {"block"}, "cidr": {"not-a-network"}}); p.status != http.StatusBadRequest {
		t.Errorf("a bad network: %d, want 400", p.status)
	}

	admin := e.browser()
	admin.signIn(adminB.Secret)
	if p := admin.post("/console/ip-rules", url.Values{"action": {"allow"}, "cidr": {"127.0.0.0/8"}, "reason": {"office"}}); p.status != http.StatusSeeOther {
		t.Fatalf("admin creates a rule of its account: %d %.300s", p.status, p.body)
	}
	rules, err := e.svc.Abuse.IPRules(e.rootCtx(), keyward.IPRuleFilter{AccountID: accB.ID}, keyward.Page{})
	if err != nil || len(rules.Items) != 1 || rules.Items[0].Reason != "office" {
		t.Fatalf("rules of beta: %+v, %v", rules, err)
	}
	p = admin.get("/console/ip-rules")
	if p.status != 200 || !strings.Contains(p.body, "office") || strings.Contains(p.body, "alpha-only") || strings.Contains(p.body, "scanner") {
		t.Errorf("admin's rules page: %d, shows others' rules: %v", p.status, strings.Contains(p.body, "alpha-only"))
	}
	if p := admin.get("/console/ip-rules?scope=global"); p.status != http.StatusForbidden {
		t.Errorf("admin lists global rules: %d, want 403", p.status)
	}
	if p := admin.post("/console/ip-rules/"+ruleA.ID+"/delete", nil); p.status != http.StatusNotFound {
		t.Errorf("admin deletes another account's rule: %d, want 404", p.status)
	}
	if p := admin.post("/console/ip-rules/"+rules.Items[0].ID+"/delete", nil); p.status != http.StatusSeeOther {
		t.Errorf("admin deletes its rule: %d", p.status)
	}
	if l, _ := e.svc.Abuse.IPRules(e.rootCtx(), keyward.IPRuleFilter{AccountID: accB.ID}, keyward.Page{}); len(l.Items) != 0 {
		t.Error("the rule was not deleted")
	}
	if l, _ := e.svc.Abuse.IPRules(e.rootCtx(), keyward.IPRuleFilter{AccountID: accA.ID}, keyward.Page{}); len(l.Items) != 1 {
		t.Error("another account's rule was deleted")
	}

	user := e.browser()
	user.signIn(keyB.Secret)
	if p := user.get("/console/ip-rules"); p.status != http.StatusForbidden {
		t.Errorf("user key lists rules: %d, want 403", p.status)
	}
	if p := user.post("/console/ip-rules", url.Values{"action": {"block"}, "cidr": {"192.0.2.1"}}); p.status != http.StatusForbidden {
		t.Errorf("user key creates a rule: %d, want 403", p.status)
	}
}

func TestAnomaliesPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	accA, accB := e.account("alpha"), e.account("beta")
	keyA := e.key(keyward.KeyCreate{AccountID: accA.ID, Role: keyward.RoleAccountAdmin})
	adminB := e.key(keyward.KeyCreate{AccountID: accB.ID, Role: keyward.RoleAccountAdmin})
	keyB := e.key(keyward.KeyCreate{AccountID: accB.ID, Role: keyward.RoleAccountAdmin})
	for _, an := range []*keyward.Anomaly{
		{ID: apikey.NewID("anm"), Type: keyward.AnomalyRevokedKeyUse, Severity: keyward.SeverityHigh, AccountID: accA.ID, KeyID: keyA.ID, IP: "192.0.2.10"},
		{ID: apikey.NewID("anm"), Type: keyward.AnomalyIPSpread, Severity: keyward.SeverityMedium, AccountID: accB.ID, KeyID: keyB.ID, IP: "192.0.2.20"},
	} {
		an.CreatedAt = keywardtest.Now()
		if err := e.svc.Abuse.RecordAnomaly(t.Context(), an); err != nil {
			t.Fatal(err)
		}
	}
	root := e.browser()
	root.signIn(e.root)
	if p := root.get("/console/anomalies"); !strings.Contains(p.body, "192.0.2.10") || !strings.Contains(p.body, "192.0.2.20") {
		t.Error("root's anomalies page misses one")
	}
	if p := root.get("/console/anomalies?type=ip_spread"); strings.Contains(p.body, "192.0.2.10") || !strings.Contains(p.body, "192.0.2.20") {
		t.Error("the type filter does not filter")
	}
	admin := e.browser()
	admin.signIn(adminB.Secret)
	if p := admin.get("/console/anomalies"); p.status != 200 || strings.Contains(p.body, "192.0.2.10") || !strings.Contains(p.body, "192.0.2.20") {
		t.Errorf("admin's anomalies page: %d, shows another account's: %v", p.status, strings.Contains(p.body, "192.0.2.10"))
	}
}
