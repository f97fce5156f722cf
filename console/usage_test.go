package console_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

func TestUsagePage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	accA, accB := e.account("alpha"), e.account("beta")
	keyA := e.key(keyward.KeyCreate{AccountID: accA.ID, Role: keyward.RoleAccountAdmin})
	adminB := e.key(keyward.KeyCreate{AccountID: accB.ID, Role: keyward.RoleAccountAdmin})
	keyB := e.key(keyward.KeyCreate{AccountID: accB.ID, Role: keyward.RoleAccountAdmin})
	userB := e.user(accB.ID, "bob")
	userKey := e.key(keyward.KeyCreate{AccountID: accB.ID, UserID: userB.ID, Role: keyward.RoleUser})
	now := time.Now().UTC().Truncate(time.Minute)
	if err := e.store.AddUsage(t.Context(), []keyward.UsageRow{
		{Start: now.Add(-2 * time.Hour), KeyID: keyB.ID, AccountID: accB.ID, Code: keyward.DecisionValid, Count: 700},
		{Start: now.Add(-time.Hour), KeyID: keyB.ID, AccountID: accB.ID, Code: keyward.DecisionRateLimited, Count: 31},
		{Start: now.Add(-time.Hour), KeyID: keyA.ID, AccountID: accA.ID, Code: keyward.DecisionValid, Count: 9123},
	}); err != nil {
		t.Fatal(err)
	}
	// Hour and day rows are rolled up from minute rows by a job; here at once.
	if err := e.store.RollUpUsage(t.Context(), now.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	root := e.browser()
	root.signIn(e.root)
	p := root.get("/console/usage?key=" + keyB.ID)
	if p.status != 200 || !strings.Contains(p.body, "<svg") || !strings.Contains(p.body, `class="valid"`) || !strings.Contains(p.body, ">700<") || !strings.Contains(p.body, ">31<") || strings.Contains(p.body, "9123") {
		t.Fatalf("usage of a key: %d %s", p.status, p.body[strings.Index(p.body, "<main"):])
	}
	if p := root.get("/console/usage?period=1h&key=" + keyB.ID); strings.Contains(p.body, ">700<") || !strings.Contains(p.body, ">31<") || !strings.Contains(p.body, "per minute") {
		t.Error("the last hour, per minute, shows a count of two hours ago or misses one of an hour ago")
	}
	if p := root.get("/console/usage?period=30d"); !strings.Contains(p.body, ">9823<") || !strings.Contains(p.body, "per day") {
		t.Errorf("30 days of everything misses a count, or is not per day: %s", p.body[strings.Index(p.body, "<figcaption"):])
	}
	if p := root.get("/console/usage?period=1y"); p.status != http.StatusBadRequest {
		t.Errorf("unknown period: %d, want 400", p.status)
	}
	admin := e.browser()
	admin.signIn(adminB.Secret)
	if p := admin.get("/console/usage"); p.status != 200 || strings.Contains(p.body, "9123") || !strings.Contains(p.body, ">700<") {
		t.Errorf("admin's usage: %d, shows another account's: %v", p.status, strings.Contains(p.body, "9123"))
	}
	for _, path := range []string{"/console/usage?key=" + keyA.ID, "/console/usage?account=" + accA.ID} {
		// As on the API: refused, or nothing of the other account.
		if p := admin.get(path); p.status >= 500 || strings.Contains(p.body, "9123") {
			t.Errorf("admin GET %s: %d, shows the other account's numbers: %v", path, p.status, strings.Contains(p.body, "9123"))
		}
	}
	user := e.browser()
	user.signIn(userKey.Secret)
	if p := user.get("/console/usage"); p.status != http.StatusForbidden {
		t.Errorf("user key reads usage: %d, want 403", p.status)
	}
}
