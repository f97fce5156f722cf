package console_test

import (
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

// TestUsagePerUser: the usage page of a user counts its keys only, linked
// from the user's page; an admin of another account sees none of it.
func TestUsagePerUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acc, other := e.account("alpha"), e.account("beta")
	ann, bob := e.user(acc.ID, "ann"), e.user(acc.ID, "bob")
	annKey := e.key(keyward.KeyCreate{AccountID: acc.ID, UserID: ann.ID, Role: keyward.RoleUser})
	annKey2 := e.key(keyward.KeyCreate{AccountID: acc.ID, UserID: ann.ID, Role: keyward.RoleUser})
	bobKey := e.key(keyward.KeyCreate{AccountID: acc.ID, UserID: bob.ID, Role: keyward.RoleUser})
	adminOther := e.key(keyward.KeyCreate{AccountID: other.ID, Role: keyward.RoleAccountAdmin})
	now := time.Now().UTC().Truncate(time.Minute)
	if err := e.store.AddUsage(t.Context(), []keyward.UsageRow{
		{Start: now.Add(-time.Hour), KeyID: annKey.ID, AccountID: acc.ID, Code: keyward.DecisionValid, Count: 400},
		{Start: now.Add(-time.Hour), KeyID: annKey2.ID, AccountID: acc.ID, Code: keyward.DecisionValid, Count: 11},
		{Start: now.Add(-time.Hour), KeyID: bobKey.ID, AccountID: acc.ID, Code: keyward.DecisionValid, Count: 9000},
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.RollUpUsage(t.Context(), now.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	root := e.browser()
	root.signIn(e.root)
	if p := root.get("/console/accounts/" + acc.ID + "/users/" + ann.ID); !strings.Contains(p.body, `href="/console/usage?user=`+ann.ID+`"`) {
		t.Error("the user page does not link to its usage")
	}
	p := root.get("/console/usage?user=" + ann.ID)
	if p.status != 200 || !strings.Contains(p.body, ">411<") || strings.Contains(p.body, "9000") || strings.Contains(p.body, "9411") {
		t.Fatalf("usage of a user: %d %s", p.status, p.body[strings.Index(p.body, "<main"):])
	}
	admin := e.browser()
	admin.signIn(adminOther.Secret)
	if p := admin.get("/console/usage?user=" + ann.ID); p.status != 200 || strings.Contains(p.body, ">411<") || strings.Contains(p.body, ">400<") {
		t.Errorf("another account's admin reads a user's usage: %d", p.status)
	}
}
