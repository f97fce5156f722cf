package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

func TestCreditsAndSharedLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	accA, accB := e.account("alpha"), e.account("beta")
	adminB := e.key(keyward.KeyCreate{AccountID: accB.ID, Role: keyward.RoleAccountAdmin})
	userB := e.user(accB.ID, "bob")
	keyB := e.key(keyward.KeyCreate{AccountID: accB.ID, UserID: userB.ID, Role: keyward.RoleUser})

	root := e.browser()
	root.signIn(e.root)
	keyPath := "/console/keys/" + keyB.ID
	if p := root.get(keyPath); !strings.Contains(p.body, "not metered by credits") || !strings.Contains(p.body, "Set credits") {
		t.Error("key page without credits does not say so, or offers root no form")
	}
	if p := root.post(keyPath+"/credits", url.Values{"remaining": {"100"}, "refill_amount": {"50"}, "refill_interval": {"24h"}}); p.status != http.StatusSeeOther {
		t.Fatalf("set credits: %d %.300s", p.status, p.body)
	}
	if p := root.post(keyPath+"/top-up", url.Values{"amount": {"25"}}); p.status != http.StatusSeeOther {
		t.Fatalf("top up: %d %.300s", p.status, p.body)
	}
	cr, err := e.svc.Keys.Credits(e.rootCtx(), keyB.ID)
	if err != nil || cr.Remaining != 125 || cr.Refill == nil || cr.Refill.Amount != 50 || time.Duration(cr.Refill.Interval) != 24*time.Hour {
		t.Fatalf("credits after set and top-up: %+v, %v", cr, err)
	}
	for _, bad := range []url.Values{{"remaining": {"-1"}}, {"remaining": {"10"}, "refill_amount": {"5"}, "refill_interval": {"soon"}},
		{"remaining": {"10"}, "refill_amount": {"5"}, "refill_interval": {"monthly:x"}}, {"remaining": {"10"}, "refill_amount": {"5"}, "refill_interval": {"monthly:32"}}} {
		if p := root.post(keyPath+"/credits", bad); p.status != http.StatusBadRequest {
			t.Errorf("credits %v: %d, want 400", bad, p.status)
		}
	}
	if p := root.post(keyPath+"/top-up", url.Values{"amount": {"0"}}); p.status != http.StatusBadRequest {
		t.Errorf("top-up of 0: %d, want 400", p.status)
	}

	// An account admin reads the credits of its account's keys, changes none.
	admin := e.browser()
	admin.signIn(adminB.Secret)
	p := admin.get(keyPath)
	if !strings.Contains(p.body, "125 left, 50 added every 24h0m0s") || strings.Contains(p.body, "Set credits") || strings.Contains(p.body, "Top up") {
		t.Errorf("admin's key page misses the live credits, or offers forms only root may use: %s", p.body[strings.Index(p.body, "<h2>Credits"):strings.Index(p.body, "<h2>Actions")])
	}
	if p := admin.post(keyPath+"/top-up", url.Values{"amount": {"1000"}}); p.status != http.StatusForbidden {
		t.Errorf("admin tops up credits: %d, want 403", p.status)
	}
	// A monthly refill is set as monthly:DAY and shown as such.
	if p := root.post(keyPath+"/credits", url.Values{"remaining": {"100"}, "refill_amount": {"50"}, "refill_interval": {"monthly:15"}}); p.status != http.StatusSeeOther {
		t.Fatalf("set monthly credits: %d %.300s", p.status, p.body)
	}
	if cr, err := e.svc.Keys.Credits(e.rootCtx(), keyB.ID); err != nil || cr.Refill == nil || cr.Refill.Day != 15 || cr.Refill.Interval != 0 {
		t.Fatalf("credits after a monthly refill was set: %+v, %v", cr, err)
	}
	if p := admin.get(keyPath); !strings.Contains(p.body, "100 left, 50 added on day 15 of every month") {
		t.Error("the key page does not show the monthly refill")
	}
	if p := root.post(keyPath+"/remove-credits", nil); p.status != http.StatusSeeOther {
		t.Fatalf("remove credits: %d", p.status)
	}
	if _, err := e.svc.Keys.Credits(e.rootCtx(), keyB.ID); keyward.ErrorCode(err) != keyward.ENOTFOUND {
		t.Errorf("credits after removing them: %v", err)
	}

	// Shared limits of the account and of a user.
	accPath := "/console/accounts/" + accB.ID
	if p := root.post(accPath+"/limits", url.Values{"limit_name": {"per-minute"}, "limit": {"100"}, "window": {"1m"}, "remaining": {"5000"}}); p.status != http.StatusSeeOther {
		t.Fatalf("account limits: %d %s", p.status, p.body[strings.Index(p.body, "<main"):])
	}
	m, err := e.svc.Keys.Meter(e.rootCtx(), accB.ID, "")
	if err != nil || len(m.RateLimits) != 1 || m.RateLimits[0].Limit != 100 || m.Credits == nil || m.Credits.Remaining != 5000 {
		t.Fatalf("account meter: %+v, %v", m, err)
	}
	if p := admin.get(accPath); !strings.Contains(p.body, "100 per 1m0s") || !strings.Contains(p.body, "5000 left") || strings.Contains(p.body, "Set shared limits") {
		t.Error("admin's account page misses its shared limits, or offers root's form")
	}
	if p := admin.post(accPath+"/limits", url.Values{"limit_name": {"all"}, "limit": {"1000000"}, "window": {"1s"}}); p.status != http.StatusForbidden {
		t.Errorf("admin sets its account's limits: %d, want 403", p.status)
	}
	userPath := accPath + "/users/" + userB.ID
	if p := root.post(userPath+"/limits", url.Values{"limit_name": {"burst"}, "limit": {"10"}, "window": {"1s"}}); p.status != http.StatusSeeOther {
		t.Fatalf("user limits: %d %.300s", p.status, p.body)
	}
	if p := root.get(userPath); !strings.Contains(p.body, "Rate limit burst") {
		t.Error("user page does not show its shared limits")
	}
	if p := root.post(userPath+"/limits", url.Values{}); p.status != http.StatusBadRequest {
		t.Errorf("empty shared limits: %d, want 400", p.status)
	}
	if p := root.post(userPath+"/limits/delete", nil); p.status != http.StatusSeeOther {
		t.Fatalf("remove user limits: %d", p.status)
	}
	if _, err := e.svc.Keys.Meter(e.rootCtx(), accB.ID, userB.ID); keyward.ErrorCode(err) != keyward.ENOTFOUND {
		t.Errorf("user meter after removal: %v", err)
	}
	if _, err := e.svc.Keys.SetMeter(e.rootCtx(), accA.ID, "", keyward.MeterSet{Credits: &keyward.Credits{Remaining: 777}}); err != nil {
		t.Fatal(err)
	}
	if p := admin.get("/console/accounts/" + accA.ID); p.status != http.StatusNotFound || strings.Contains(p.body, "777") {
		t.Errorf("admin reads another account's limits: %d", p.status)
	}
}
