package admin_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

// Only root sets or removes shared limits; the account's admins read the
// account's and its users', a user its own; each change is audited and
// applies at once to the keys.
func TestSharedLimitsPolicy(t *testing.T) {
	e := newEnv(t)
	a, u, adminKey, userKey := e.tenant(t, "acme", "p")
	other, _, otherAdmin, _ := e.tenant(t, "other", "p")
	asAdmin, asUser, asOther := as(t, &adminKey.Key), as(t, &userKey.Key), as(t, &otherAdmin.Key)
	twice := keyward.MeterSet{RateLimits: []keyward.RateLimit{{Name: "h", Limit: 2, Window: keyward.Duration(time.Hour)}}}

	for _, ctx := range []context.Context{asAdmin, asUser} {
		_, err := e.svc.Keys.SetMeter(ctx, a.ID, u.ID, twice)
		wantCode(t, err, keyward.EFORBIDDEN)
	}
	_, err := e.svc.Keys.SetMeter(e.root, a.ID, u.ID, keyward.MeterSet{})
	wantCode(t, err, keyward.EINVALID)
	_, err = e.svc.Keys.SetMeter(e.root, a.ID, u.ID, keyward.MeterSet{Credits: &keyward.Credits{Remaining: -1}})
	wantCode(t, err, keyward.EINVALID)
	_, err = e.svc.Keys.SetMeter(e.root, other.ID, u.ID, twice)
	wantCode(t, err, keyward.ENOTFOUND)
	_, err = e.svc.Keys.Meter(e.root, a.ID, u.ID)
	wantCode(t, err, keyward.ENOTFOUND)

	m := must(e.svc.Keys.SetMeter(e.root, a.ID, u.ID, twice))
	if m.Level != keyward.LevelUser || m.ID != u.ID || len(m.RateLimits) != 1 {
		t.Fatalf("SetMeter = %+v", m)
	}
	verify := func() *keyward.VerifyResult {
		t.Helper()
		return must(e.svc.Keys.VerifyKey(e.root, keyward.VerifyRequest{Key: userKey.Secret}))
	}
	for range 2 {
		if r := verify(); r.Code != keyward.DecisionValid {
			t.Fatalf("within the user's limit: %s", r.Code)
		}
	}
	if r := verify(); r.Code != keyward.DecisionRateLimited || r.LimitLevel != keyward.LevelUser {
		t.Fatalf("beyond the user's limit: %s at level %q, want RATE_LIMITED at user", r.Code, r.LimitLevel)
	}

	for _, ctx := range []context.Context{asAdmin, asUser, e.root} {
		if got := must(e.svc.Keys.Meter(ctx, a.ID, u.ID)); got.ID != u.ID {
			t.Fatalf("Meter = %+v", got)
		}
	}
	_, err = e.svc.Keys.Meter(asOther, a.ID, u.ID)
	wantCode(t, err, keyward.ENOTFOUND)
	_, err = e.svc.Keys.Meter(asUser, a.ID, "")
	wantCode(t, err, keyward.EFORBIDDEN)

	wantCode(t, e.svc.Keys.DeleteMeter(asAdmin, a.ID, u.ID), keyward.EFORBIDDEN)
	if err := e.svc.Keys.DeleteMeter(e.root, a.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, e.svc.Keys.DeleteMeter(e.root, a.ID, u.ID), keyward.ENOTFOUND)
	// Each change told the observers the account's keys changed, so
	// cached keys are reloaded with it.
	e.obs.mu.Lock()
	heard := slices.Clone(e.obs.accounts)
	e.obs.mu.Unlock()
	if n := len(slices.DeleteFunc(heard, func(id string) bool { return id != a.ID })); n != 2 {
		t.Fatalf("observers heard of account %s %d times, want 2 (set and remove)", a.ID, n)
	}

	for action, n := range map[string]int{"user.limits_set": 1, "user.limits_remove": 1} {
		l := must(e.svc.Audit.AuditEntries(e.root, keyward.AuditFilter{Action: action, TargetID: u.ID}, keyward.Page{}))
		if len(l.Items) != n {
			t.Fatalf("%d audit entries %s, want %d", len(l.Items), action, n)
		}
	}
}
