package admin_test

import (
	"testing"
	"time"

	"github.com/keyward/keyward"
)

var perMinute = keyward.RateLimit{Name: "per-minute", Limit: 60, Window: keyward.Duration(time.Minute)}

func TestOnlyRootSetsLimitsAndCredits(t *testing.T) {
	e := newEnv(t)
	a, u, adminKey, userKey := e.tenant(t, "acme", "p")
	asAdmin, asUser := as(t, &adminKey.Key), as(t, &userKey.Key)

	_, err := e.svc.Keys.CreateKey(asAdmin, keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, RateLimits: []keyward.RateLimit{perMinute}})
	wantCode(t, err, keyward.EFORBIDDEN)
	_, err = e.svc.Keys.CreateKey(asAdmin, keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Credits: &keyward.Credits{Remaining: 5}})
	wantCode(t, err, keyward.EFORBIDDEN)
	limits := []keyward.RateLimit{}
	_, err = e.svc.Keys.UpdateKey(asAdmin, userKey.ID, keyward.KeyUpdate{RateLimits: &limits})
	wantCode(t, err, keyward.EFORBIDDEN)
	_, err = e.svc.Keys.SetCredits(asAdmin, userKey.ID, &keyward.Credits{Remaining: 5})
	wantCode(t, err, keyward.EFORBIDDEN)
	_, err = e.svc.Keys.TopUpCredits(asUser, userKey.ID, 5)
	wantCode(t, err, keyward.EFORBIDDEN)

	// Root may, and the values are validated.
	_, err = e.svc.Keys.CreateKey(e.root, keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, RateLimits: []keyward.RateLimit{{Name: "x", Limit: 0, Window: keyward.Duration(time.Second)}}})
	wantCode(t, err, keyward.EINVALID)
	_, err = e.svc.Keys.CreateKey(e.root, keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Credits: &keyward.Credits{Remaining: -1}})
	wantCode(t, err, keyward.EINVALID)
	k := must(e.svc.Keys.CreateKey(e.root, keyward.KeyCreate{AccountID: a.ID, UserID: u.ID,
		RateLimits: []keyward.RateLimit{perMinute}, Credits: &keyward.Credits{Remaining: 5}}))
	if len(k.RateLimits) != 1 || k.Credits == nil || k.Credits.Remaining != 5 || !k.Credits.RefilledAt.Equal(e.now.UTC().Truncate(time.Microsecond)) {
		t.Fatalf("created key limits %v credits %+v", k.RateLimits, k.Credits)
	}
}

// A key made by a limited key carries its maker's limits, so minting keys
// never escapes them; a key with credits may not mint keys at all.
func TestKeysInheritTheirMakersLimits(t *testing.T) {
	e := newEnv(t)
	a, u, _, _ := e.tenant(t, "acme", "p")
	limited := must(e.svc.Keys.CreateKey(e.root, keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Permissions: []string{"p"}, RateLimits: []keyward.RateLimit{perMinute}}))
	child := must(e.svc.Keys.CreateKey(as(t, &limited.Key), keyward.KeyCreate{AccountID: a.ID, UserID: u.ID}))
	if len(child.RateLimits) != 1 || child.RateLimits[0] != perMinute {
		t.Fatalf("child limits = %v, want the maker's %v", child.RateLimits, perMinute)
	}
	metered := must(e.svc.Keys.CreateKey(e.root, keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Credits: &keyward.Credits{Remaining: 5}}))
	_, err := e.svc.Keys.CreateKey(as(t, &metered.Key), keyward.KeyCreate{AccountID: a.ID, UserID: u.ID})
	wantCode(t, err, keyward.EFORBIDDEN)
}

// Neither minting keys nor rotating them refills a rate limit: the new
// keys count against the buckets of the key they came from.
func TestMintingAndRotatingShareTheBuckets(t *testing.T) {
	e := newEnv(t)
	a, u, adminKey, _ := e.tenant(t, "acme", "p")
	twice := keyward.RateLimit{Name: "h", Limit: 2, Window: keyward.Duration(time.Hour)}
	user := must(e.svc.Keys.CreateKey(e.root, keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Permissions: []string{"p"}, RateLimits: []keyward.RateLimit{twice}}))
	verify := func(k *keyward.CreatedKey) keyward.Decision {
		t.Helper()
		return must(e.svc.Keys.VerifyKey(e.root, keyward.VerifyRequest{Key: k.Secret})).Code
	}
	if d := verify(user); d != keyward.DecisionValid {
		t.Fatalf("first call: %s", d)
	}
	child := must(e.svc.Keys.CreateKey(as(t, &user.Key), keyward.KeyCreate{AccountID: a.ID, UserID: u.ID}))
	if child.MeterID != user.ID {
		t.Fatalf("a user key's child meters against %q, want its maker %s", child.MeterID, user.ID)
	}
	if d := verify(child); d != keyward.DecisionValid {
		t.Fatalf("the child's first call, the maker's second: %s", d)
	}
	if d := verify(child); d != keyward.DecisionRateLimited {
		t.Fatalf("the third call across maker and child: %s, want RATE_LIMITED", d)
	}
	next := must(e.svc.Keys.RotateKey(e.root, user.ID, keyward.KeyRotate{Grace: keyward.Duration(time.Hour)}))
	again := must(e.svc.Keys.RotateKey(e.root, next.ID, keyward.KeyRotate{Grace: keyward.Duration(time.Hour)}))
	if next.MeterID != user.ID || again.MeterID != user.ID {
		t.Fatalf("replacements meter against %q and %q, want the first key %s", next.MeterID, again.MeterID, user.ID)
	}
	if d := verify(again); d != keyward.DecisionRateLimited {
		t.Fatalf("after two rotations: %s, want RATE_LIMITED (the buckets are shared)", d)
	}
	// An account admin's keys for its users each have their own buckets.
	own := must(e.svc.Keys.CreateKey(as(t, &adminKey.Key), keyward.KeyCreate{AccountID: a.ID, UserID: u.ID}))
	if own.MeterID != "" {
		t.Fatalf("an account admin's key for a user meters against %q, want its own", own.MeterID)
	}
}

func TestCredits(t *testing.T) {
	e := newEnv(t)
	_, _, adminKey, userKey := e.tenant(t, "acme", "p")
	_, err := e.svc.Keys.Credits(e.root, userKey.ID)
	wantCode(t, err, keyward.ENOTFOUND) // no credits yet
	_, err = e.svc.Keys.TopUpCredits(e.root, userKey.ID, 5)
	wantCode(t, err, keyward.EINVALID) // set them first

	refill := &keyward.CreditRefill{Amount: 100, Interval: keyward.Duration(24 * time.Hour)}
	c := must(e.svc.Keys.SetCredits(e.root, userKey.ID, &keyward.Credits{Remaining: 10, Refill: refill}))
	if c.Remaining != 10 || c.Refill == nil || c.Refill.Amount != 100 {
		t.Fatalf("set credits = %+v", c)
	}
	if got := e.obs.last(); got != userKey.ID {
		t.Fatalf("the last key change told to the cache is %q, want %s (new credits)", got, userKey.ID)
	}
	c = must(e.svc.Keys.TopUpCredits(e.root, userKey.ID, 7))
	if c.Remaining != 17 {
		t.Fatalf("after a top-up of 7, remaining = %d, want 17", c.Remaining)
	}
	_, err = e.svc.Keys.TopUpCredits(e.root, userKey.ID, 0)
	wantCode(t, err, keyward.EINVALID)

	// The owner and its admin read them; another account does not see
	// the key at all.
	for _, caller := range []*keyward.CreatedKey{userKey, adminKey} {
		if got := must(e.svc.Keys.Credits(as(t, &caller.Key), userKey.ID)); got.Remaining != 17 {
			t.Fatalf("credits read by %s = %d, want 17", caller.Role, got.Remaining)
		}
	}
	_, _, otherAdmin, _ := e.tenant(t, "other", "p")
	_, err = e.svc.Keys.Credits(as(t, &otherAdmin.Key), userKey.ID)
	wantCode(t, err, keyward.ENOTFOUND)

	// The refill is due a day later: the key reads 100 (raised, not added).
	e.now = e.now.Add(24 * time.Hour)
	if got := must(e.svc.Keys.Key(e.root, userKey.ID)); got.Credits == nil || got.Credits.Remaining != 100 {
		t.Fatalf("after the refill interval, key credits = %+v, want 100", got.Credits)
	}

	// Rotation hands the live count to the replacement; the old key,
	// in its grace window, keeps none.
	next := must(e.svc.Keys.RotateKey(e.root, userKey.ID, keyward.KeyRotate{Grace: keyward.Duration(time.Hour)}))
	if next.Credits == nil || next.Credits.Remaining != 100 {
		t.Fatalf("replacement credits = %+v, want 100", next.Credits)
	}
	if old := must(e.svc.Keys.Credits(e.root, userKey.ID)); old.Remaining != 0 || old.Refill != nil {
		t.Fatalf("the rotated key's credits = %+v, want none left and no refill", old)
	}
	if res := must(e.svc.Keys.VerifyKey(e.root, keyward.VerifyRequest{Key: userKey.Secret})); res.Code != keyward.DecisionUsageExceeded {
		t.Fatalf("the rotated key in its grace window: %s, want USAGE_EXCEEDED", res.Code)
	}
	if _, err := e.svc.Keys.SetCredits(e.root, next.ID, nil); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Keys.Credits(e.root, next.ID)
	wantCode(t, err, keyward.ENOTFOUND)
}

func TestAccountDefaultLimits(t *testing.T) {
	e := newEnv(t)
	a, _, adminKey, userKey := e.tenant(t, "acme", "p")
	limits := []keyward.RateLimit{perMinute}
	_, err := e.svc.Tenancy.UpdateAccount(as(t, &adminKey.Key), a.ID, keyward.AccountUpdate{RateLimits: &limits})
	wantCode(t, err, keyward.EFORBIDDEN)
	bad := []keyward.RateLimit{perMinute, perMinute}
	_, err = e.svc.Tenancy.UpdateAccount(e.root, a.ID, keyward.AccountUpdate{RateLimits: &bad})
	wantCode(t, err, keyward.EINVALID)

	before := len(e.obs.accountIDs())
	acc := must(e.svc.Tenancy.UpdateAccount(e.root, a.ID, keyward.AccountUpdate{RateLimits: &limits}))
	if len(acc.RateLimits) != 1 {
		t.Fatalf("account limits = %v", acc.RateLimits)
	}
	if got := e.obs.accountIDs(); len(got) != before+1 || got[len(got)-1] != a.ID {
		t.Fatalf("caches were not told the account changed: %v", got)
	}
	k := must(e.svc.Keys.Key(e.root, userKey.ID))
	if got := k.EffectiveRateLimits(); len(got) != 1 || got[0] != perMinute {
		t.Fatalf("key's effective limits = %v, want the account's", got)
	}
}

func TestAnomaliesAreScoped(t *testing.T) {
	e := newEnv(t)
	a, _, adminKey, userKey := e.tenant(t, "acme", "p")
	b, _, otherAdmin, _ := e.tenant(t, "other", "p")
	for _, acc := range []string{a.ID, b.ID} {
		if err := e.store.CreateAnomaly(t.Context(), keyward.Change{}, &keyward.Anomaly{ID: "anm_" + acc, Type: keyward.AnomalyFailureBurst, Severity: keyward.SeverityMedium, AccountID: acc, CreatedAt: e.now}); err != nil {
			t.Fatal(err)
		}
	}
	if l := must(e.svc.Abuse.Anomalies(e.root, keyward.AnomalyFilter{}, keyward.Page{})); len(l.Items) != 2 {
		t.Fatalf("root sees %d anomalies, want 2", len(l.Items))
	}
	l := must(e.svc.Abuse.Anomalies(as(t, &adminKey.Key), keyward.AnomalyFilter{}, keyward.Page{}))
	if len(l.Items) != 1 || l.Items[0].AccountID != a.ID {
		t.Fatalf("account admin sees %v, want only its account's", l.Items)
	}
	_, err := e.svc.Abuse.Anomalies(as(t, &otherAdmin.Key), keyward.AnomalyFilter{AccountID: a.ID}, keyward.Page{})
	wantCode(t, err, keyward.ENOTFOUND)
	_, err = e.svc.Abuse.Anomalies(as(t, &userKey.Key), keyward.AnomalyFilter{}, keyward.Page{})
	wantCode(t, err, keyward.EFORBIDDEN)
	_, err = e.svc.Abuse.Anomalies(e.root, keyward.AnomalyFilter{Type: "nope"}, keyward.Page{})
	wantCode(t, err, keyward.EINVALID)
}

func (r *recorder) last() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.changed) == 0 {
		return ""
	}
	return r.changed[len(r.changed)-1]
}

func (r *recorder) accountIDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.accounts...)
}

// A verifier of one account cannot spend another account's credits: the
// other key is not found before anything is spent.
func TestVerifyKeyOfAnotherAccountSpendsNothing(t *testing.T) {
	e := newEnv(t)
	a, _, _, _ := e.tenant(t, "acme", "p")
	b, ub, _, _ := e.tenant(t, "other", "p")
	verifier := must(e.svc.Keys.CreateKey(e.root, keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin, Permissions: []string{"keys:verify"}}))
	metered := must(e.svc.Keys.CreateKey(e.root, keyward.KeyCreate{AccountID: b.ID, UserID: ub.ID, Credits: &keyward.Credits{Remaining: 1}}))

	res := must(e.svc.Keys.VerifyKey(as(t, &verifier.Key), keyward.VerifyRequest{Key: metered.Secret}))
	if res.Code != keyward.DecisionNotFound || res.KeyID != "" || res.CreditsRemaining != nil {
		t.Fatalf("another account's key, verified by account A: %+v, want a bare NOT_FOUND", res)
	}
	res = must(e.svc.Keys.VerifyKey(e.root, keyward.VerifyRequest{Key: metered.Secret}))
	if res.Code != keyward.DecisionValid || res.CreditsRemaining == nil || *res.CreditsRemaining != 0 {
		t.Fatalf("root's verification: %+v, want VALID with the one credit spent now", res)
	}
	_, err := e.svc.Keys.VerifyKey(e.root, keyward.VerifyRequest{Key: metered.Secret, Cost: -1})
	wantCode(t, err, keyward.EINVALID)
}

func TestUsageIsScoped(t *testing.T) {
	e := newEnv(t)
	a, _, adminKey, userKey := e.tenant(t, "acme", "p")
	b, _, _, _ := e.tenant(t, "other", "p")
	minute := e.now.UTC().Truncate(time.Minute)
	if err := e.store.AddUsage(t.Context(), []keyward.UsageRow{
		{Start: minute, KeyID: "key_a", AccountID: a.ID, Code: keyward.DecisionValid, Count: 5},
		{Start: minute, KeyID: "key_b", AccountID: b.ID, Code: keyward.DecisionRateLimited, Count: 2},
		{Start: minute, Code: keyward.DecisionNotFound, Count: 1},
	}); err != nil {
		t.Fatal(err)
	}
	all := must(e.svc.Audit.Usage(e.root, keyward.UsageFilter{Granularity: keyward.UsageMinute}))
	if len(all.Items) != 3 {
		t.Fatalf("root sees %d rows, want 3", len(all.Items))
	}
	own := must(e.svc.Audit.Usage(as(t, &adminKey.Key), keyward.UsageFilter{Granularity: keyward.UsageMinute}))
	if len(own.Items) != 1 || own.Items[0].AccountID != a.ID || own.Items[0].Count != 5 {
		t.Fatalf("account admin sees %+v, want only its account's row", own.Items)
	}
	_, err := e.svc.Audit.Usage(as(t, &adminKey.Key), keyward.UsageFilter{Granularity: keyward.UsageMinute, AccountID: b.ID})
	wantCode(t, err, keyward.ENOTFOUND)
	_, err = e.svc.Audit.Usage(as(t, &userKey.Key), keyward.UsageFilter{Granularity: keyward.UsageMinute})
	wantCode(t, err, keyward.EFORBIDDEN)
	_, err = e.svc.Audit.Usage(e.root, keyward.UsageFilter{Granularity: "week"})
	wantCode(t, err, keyward.EINVALID)
}
