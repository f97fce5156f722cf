package keywardtest

import (
	"slices"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

func testTryLock(t *testing.T, open func(*testing.T) keyward.Store) {
	f := newFixture(t, open)
	release, ok, err := f.s.TryLock(f.ctx, "expiry")
	must(t, err)
	if !ok {
		t.Fatal("TryLock(expiry) on a free lock: not taken")
	}
	if _, ok, err := f.s.TryLock(f.ctx, "expiry"); err != nil || ok {
		t.Fatalf("TryLock(expiry) while held = %v, %v; want false, nil", ok, err)
	}
	other, ok, err := f.s.TryLock(f.ctx, "cleanup")
	must(t, err)
	if !ok {
		t.Fatal("TryLock(cleanup) while expiry is held: not taken (locks must be independent)")
	}
	other()
	release()
	again, ok, err := f.s.TryLock(f.ctx, "expiry")
	must(t, err)
	if !ok {
		t.Fatal("TryLock(expiry) after its release: not taken")
	}
	again()
}

func testRotationPolicies(t *testing.T, open func(*testing.T) keyward.Store) {
	f := newFixture(t, open)
	a := f.account("a")
	k := f.adminKey(a.ID)
	acct := &keyward.RotationPolicy{AccountID: a.ID, MaxAge: keyward.Duration(90 * 24 * time.Hour), UpdatedAt: fixedTime, UpdatedBy: k.ID}
	own := &keyward.RotationPolicy{KeyID: k.ID, MaxAge: keyward.Duration(30 * 24 * time.Hour), ExpireAfter: keyward.Duration(7 * 24 * time.Hour), UpdatedAt: fixedTime}
	for _, p := range []*keyward.RotationPolicy{acct, own} {
		must(t, f.s.SetRotationPolicy(f.ctx, keyward.Change{}, p))
		got, err := f.s.RotationPolicy(f.ctx, p.Scope())
		must(t, err)
		if *got != *p {
			t.Fatalf("RotationPolicy(%s) = %+v, want %+v", p.Scope(), got, p)
		}
	}
	// Set again: replaced.
	acct.MaxAge, acct.ExpireAfter, acct.UpdatedAt = keyward.Duration(48*time.Hour), keyward.Duration(time.Hour), fixedTime.Add(time.Minute)
	must(t, f.s.SetRotationPolicy(f.ctx, keyward.Change{}, acct))
	if got, err := f.s.RotationPolicy(f.ctx, acct.Scope()); err != nil || *got != *acct {
		t.Fatalf("RotationPolicy after replace = %+v, %v; want %+v", got, err, acct)
	}

	wantCode(t, f.s.SetRotationPolicy(f.ctx, keyward.Change{}, &keyward.RotationPolicy{AccountID: "acc_missing", MaxAge: acct.MaxAge, UpdatedAt: fixedTime}), keyward.ENOTFOUND)
	wantCode(t, f.s.SetRotationPolicy(f.ctx, keyward.Change{}, &keyward.RotationPolicy{KeyID: "key_missing", MaxAge: acct.MaxAge, UpdatedAt: fixedTime}), keyward.ENOTFOUND)
	wantCode(t, f.s.SetRotationPolicy(f.ctx, keyward.Change{}, &keyward.RotationPolicy{AccountID: a.ID, KeyID: k.ID, MaxAge: acct.MaxAge, UpdatedAt: fixedTime}), keyward.EINVALID)
	wantCode(t, f.s.SetRotationPolicy(f.ctx, keyward.Change{}, &keyward.RotationPolicy{AccountID: a.ID, MaxAge: keyward.Duration(time.Minute), UpdatedAt: fixedTime}), keyward.EINVALID)

	got, err := f.s.DeleteRotationPolicy(f.ctx, keyward.Change{}, own.Scope())
	must(t, err)
	if *got != *own {
		t.Fatalf("DeleteRotationPolicy returned %+v, want %+v", got, own)
	}
	_, err = f.s.RotationPolicy(f.ctx, own.Scope())
	wantCode(t, err, keyward.ENOTFOUND)
	_, err = f.s.DeleteRotationPolicy(f.ctx, keyward.Change{}, own.Scope())
	wantCode(t, err, keyward.ENOTFOUND)

	// Deleting the key or account deletes its policy.
	must(t, f.s.SetRotationPolicy(f.ctx, keyward.Change{}, own))
	_, err = f.s.DeleteKey(f.ctx, keyward.Change{}, k.ID)
	must(t, err)
	_, err = f.s.RotationPolicy(f.ctx, own.Scope())
	wantCode(t, err, keyward.ENOTFOUND)
	_, err = f.s.DeleteAccount(f.ctx, keyward.Change{}, a.ID)
	must(t, err)
	_, err = f.s.RotationPolicy(f.ctx, acct.Scope())
	wantCode(t, err, keyward.ENOTFOUND)
}

func testKeyNotices(t *testing.T, open func(*testing.T) keyward.Store) {
	f := newFixture(t, open)
	a := f.account("a")
	k := f.adminKey(a.ID)
	n := &keyward.KeyNotice{KeyID: k.ID, Kind: keyward.NoticeExpired, Subject: fixedTime, At: fixedTime.Add(time.Minute)}
	entry := func(action string) *keyward.AuditEntry {
		return &keyward.AuditEntry{Time: fixedTime, Action: action, TargetType: "key", TargetID: k.ID, Outcome: keyward.AuditSuccess}
	}
	must(t, f.s.AddKeyNotice(f.ctx, keyward.Change{Audit: entry("key.expired")}, n))
	// The same notice again: a conflict, and its audit entry is not
	// written.
	dup := *n
	dup.At = dup.At.Add(time.Hour)
	wantCode(t, f.s.AddKeyNotice(f.ctx, keyward.Change{Audit: entry("key.expired.again")}, &dup), keyward.ECONFLICT)
	entries, _, err := f.s.AuditEntries(f.ctx, keyward.AuditFilter{TargetID: k.ID}, keyward.Page{})
	must(t, err)
	if len(entries) != 1 || entries[0].Action != "key.expired" {
		t.Fatalf("audit entries of %s = %d, want the one of the notice added (a refused notice writes none)", k.ID, len(entries))
	}
	// Another subject replaces the notice; another kind is separate.
	later := &keyward.KeyNotice{KeyID: k.ID, Kind: keyward.NoticeExpired, Subject: fixedTime.Add(24 * time.Hour), At: fixedTime.Add(25 * time.Hour)}
	must(t, f.s.AddKeyNotice(f.ctx, keyward.Change{}, later))
	due := &keyward.KeyNotice{KeyID: k.ID, Kind: keyward.NoticeRotationDue, Subject: fixedTime, At: fixedTime}
	must(t, f.s.AddKeyNotice(f.ctx, keyward.Change{}, due))
	ns, err := f.s.KeyNotices(f.ctx, k.ID)
	must(t, err)
	if len(ns) != 2 || *ns[0] != *later || *ns[1] != *due {
		t.Fatalf("KeyNotices = %+v, want %+v and %+v", ns, later, due)
	}
	wantCode(t, f.s.AddKeyNotice(f.ctx, keyward.Change{}, &keyward.KeyNotice{KeyID: "key_missing", Kind: keyward.NoticeExpired, Subject: fixedTime, At: fixedTime}), keyward.ENOTFOUND)

	// A notice in a write's change commits with its change, and
	// a notice the key has already refuses the change.
	at := fixedTime.Add(48 * time.Hour)
	scheduled := &keyward.KeyNotice{KeyID: k.ID, Kind: keyward.NoticeExpiryScheduled, Subject: at, At: fixedTime}
	expire := func(k *keyward.Key) error { k.ExpiresAt = &at; return nil }
	_, err = f.s.UpdateKey(f.ctx, keyward.Change{Notice: scheduled}, k.ID, expire)
	must(t, err)
	if got := f.key(k.ID); got.ExpiresAt == nil || !got.ExpiresAt.Equal(at) {
		t.Fatalf("expires_at after the update = %v, want %v", got.ExpiresAt, at)
	}
	_, err = f.s.UpdateKey(f.ctx, keyward.Change{}, k.ID, func(k *keyward.Key) error { k.ExpiresAt = nil; return nil })
	must(t, err)
	_, err = f.s.UpdateKey(f.ctx, keyward.Change{Notice: scheduled}, k.ID, expire)
	wantCode(t, err, keyward.ECONFLICT)
	if got := f.key(k.ID); got.ExpiresAt != nil {
		t.Fatalf("an update refused for its notice changed the key: expires_at %v", got.ExpiresAt)
	}
}

func keyIDs(keys []*keyward.Key) []string {
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID
	}
	return ids
}

func sortedIDs(ids ...string) []string {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return ids
}

func testExpiredKeys(t *testing.T, open func(*testing.T) keyward.Store) {
	f := newFixture(t, open)
	a := f.account("a")
	u := f.user(a.ID, "u")
	now := fixedTime
	mk := func(expires, revoked *time.Time) *keyward.Key {
		return &NewKey(t, f.s, f.h, keyward.Key{Role: keyward.RoleUser, AccountID: a.ID, UserID: u.ID, ExpiresAt: expires, RevokedAt: revoked}).Key
	}
	expired := mk(ptr(now.Add(-time.Hour)), nil)
	atNow := mk(ptr(now), nil)
	mk(ptr(now.Add(time.Second)), nil)                       // not yet
	mk(nil, nil)                                             // never
	mk(ptr(now.Add(-time.Hour)), ptr(now.Add(-2*time.Hour))) // revoked first
	revokedLater := mk(ptr(now.Add(-time.Hour)), ptr(now.Add(-time.Minute)))
	want := sortedIDs(expired.ID, atNow.ID, revokedLater.ID)

	list := func(after string, limit int) []string {
		t.Helper()
		keys, err := f.s.ExpiredKeys(f.ctx, now, after, limit)
		must(t, err)
		return keyIDs(keys)
	}
	if got := list("", 10); !slices.Equal(got, want) {
		t.Fatalf("ExpiredKeys = %v, want %v", got, want)
	}
	if got := list(want[0], 1); !slices.Equal(got, want[1:2]) {
		t.Fatalf("ExpiredKeys after %s limit 1 = %v, want %v", want[0], got, want[1:2])
	}
	// Announced: no longer listed, until its expiry changes.
	must(t, f.s.AddKeyNotice(f.ctx, keyward.Change{}, &keyward.KeyNotice{KeyID: expired.ID, Kind: keyward.NoticeExpired, Subject: *expired.ExpiresAt, At: now}))
	if got := list("", 10); slices.Contains(got, expired.ID) {
		t.Fatalf("ExpiredKeys lists %s after its expiry notice", expired.ID)
	}
	_, err := f.s.UpdateKey(f.ctx, keyward.Change{}, expired.ID, func(k *keyward.Key) error { k.ExpiresAt = ptr(now.Add(-time.Minute)); return nil })
	must(t, err)
	if got := list("", 10); !slices.Contains(got, expired.ID) {
		t.Fatalf("ExpiredKeys does not list %s after its expiry changed", expired.ID)
	}
}

func testRotationDueKeys(t *testing.T, open func(*testing.T) keyward.Store) {
	f := newFixture(t, open)
	a, b := f.account("a"), f.account("b")
	t0 := fixedTime
	day := 24 * time.Hour
	mk := func(accountID string, created time.Time, revoked *time.Time) *keyward.Key {
		return &NewKey(t, f.s, f.h, keyward.Key{Role: keyward.RoleAccountAdmin, AccountID: accountID, CreatedAt: created, RevokedAt: revoked}).Key
	}
	old := mk(a.ID, t0, nil)
	young := mk(a.ID, t0.Add(2*day), nil)
	ownLonger := mk(a.ID, t0, nil)
	mk(a.ID, t0, ptr(t0.Add(time.Hour)))             // revoked
	noPolicy := mk(b.ID, t0, nil)                    // account b has none
	ownShort := mk(b.ID, t0.Add(day+time.Hour), nil) // its own policy
	must(t, f.s.SetRotationPolicy(f.ctx, keyward.Change{}, &keyward.RotationPolicy{AccountID: a.ID, MaxAge: keyward.Duration(day), UpdatedAt: t0}))
	must(t, f.s.SetRotationPolicy(f.ctx, keyward.Change{}, &keyward.RotationPolicy{KeyID: ownLonger.ID, MaxAge: keyward.Duration(3 * day), UpdatedAt: t0}))
	must(t, f.s.SetRotationPolicy(f.ctx, keyward.Change{}, &keyward.RotationPolicy{KeyID: ownShort.ID, MaxAge: keyward.Duration(time.Hour), ExpireAfter: keyward.Duration(time.Hour), UpdatedAt: t0}))

	now := t0.Add(2*day + time.Hour)
	ds, err := f.s.RotationDueKeys(f.ctx, now, "", 10)
	must(t, err)
	want := map[string]*keyward.RotationDue{
		old.ID:      {Policy: keyward.RotationPolicy{AccountID: a.ID, MaxAge: keyward.Duration(day), UpdatedAt: t0}, DueAt: t0.Add(day)},
		ownShort.ID: {Policy: keyward.RotationPolicy{KeyID: ownShort.ID, MaxAge: keyward.Duration(time.Hour), ExpireAfter: keyward.Duration(time.Hour), UpdatedAt: t0}, DueAt: t0.Add(day + 2*time.Hour)},
	}
	if len(ds) != len(want) {
		t.Fatalf("RotationDueKeys = %d keys, want %s and %s (not %s, %s, %s)", len(ds), old.ID, ownShort.ID, young.ID, ownLonger.ID, noPolicy.ID)
	}
	for _, d := range ds {
		w := want[d.Key.ID]
		if w == nil || d.Policy != w.Policy || !d.DueAt.Equal(w.DueAt) || !d.NoticeAt.IsZero() {
			t.Fatalf("RotationDueKeys lists %s with %+v due %v, want %+v", d.Key.ID, d.Policy, d.DueAt, w)
		}
	}
	// Exactly at the due time it is due.
	if ds, err := f.s.RotationDueKeys(f.ctx, t0.Add(day), "", 10); err != nil || len(ds) != 1 || ds[0].Key.ID != old.ID {
		t.Fatalf("RotationDueKeys at the due time of %s = %v, %v", old.ID, ds, err)
	}

	// Announced: not listed again; ExpiryDueKeys lists the one whose
	// policy expires keys, until its expiry is scheduled.
	for id, w := range want {
		must(t, f.s.AddKeyNotice(f.ctx, keyward.Change{}, &keyward.KeyNotice{KeyID: id, Kind: keyward.NoticeRotationDue, Subject: w.DueAt, At: now}))
	}
	if ds, err := f.s.RotationDueKeys(f.ctx, now, "", 10); err != nil || len(ds) != 0 {
		t.Fatalf("RotationDueKeys after the notices = %d keys, %v; want none", len(ds), err)
	}
	ex, err := f.s.ExpiryDueKeys(f.ctx, "", 10)
	must(t, err)
	if len(ex) != 1 || ex[0].Key.ID != ownShort.ID || !ex[0].NoticeAt.Equal(now) || !ex[0].ExpireAt().Equal(now.Add(time.Hour)) {
		t.Fatalf("ExpiryDueKeys = %+v, want %s noticed at %v", ex, ownShort.ID, now)
	}
	must(t, f.s.AddKeyNotice(f.ctx, keyward.Change{}, &keyward.KeyNotice{KeyID: ownShort.ID, Kind: keyward.NoticeExpiryScheduled, Subject: ex[0].ExpireAt(), At: now}))
	if ex, err := f.s.ExpiryDueKeys(f.ctx, "", 10); err != nil || len(ex) != 0 {
		t.Fatalf("ExpiryDueKeys after scheduling = %d keys, %v; want none", len(ex), err)
	}
	// A longer max age moves the due time: announced again later.
	must(t, f.s.SetRotationPolicy(f.ctx, keyward.Change{}, &keyward.RotationPolicy{AccountID: a.ID, MaxAge: keyward.Duration(3 * day), UpdatedAt: t0}))
	if ds, err := f.s.RotationDueKeys(f.ctx, now, "", 10); err != nil || len(ds) != 0 {
		t.Fatalf("RotationDueKeys before the new due time = %d keys, %v", len(ds), err)
	}
	if ds, err := f.s.RotationDueKeys(f.ctx, t0.Add(3*day), "", 10); err != nil || len(ds) != 2 {
		t.Fatalf("RotationDueKeys at the new due time = %d keys, %v; want %s and %s", len(ds), err, old.ID, ownLonger.ID)
	}
}

func testRetired(t *testing.T, open func(*testing.T) keyward.Store) {
	f := newFixture(t, open)
	a := f.account("a")
	t0 := fixedTime
	mk := func(role keyward.Role, expires, revoked *time.Time) *keyward.Key {
		k := keyward.Key{Role: role, ExpiresAt: expires, RevokedAt: revoked}
		if role != keyward.RoleRoot {
			k.AccountID = a.ID
		}
		return &NewKey(t, f.s, f.h, k).Key
	}
	revoked := mk(keyward.RoleAccountAdmin, nil, ptr(t0))
	expired := mk(keyward.RoleAccountAdmin, ptr(t0.Add(-time.Hour)), nil)
	mk(keyward.RoleAccountAdmin, ptr(t0.Add(time.Second)), nil) // expired after before
	mk(keyward.RoleAccountAdmin, nil, nil)
	mk(keyward.RoleRoot, nil, ptr(t0.Add(-time.Hour))) // root keys are never listed
	keys, err := f.s.RetiredKeys(f.ctx, t0, "", 10)
	must(t, err)
	if got, want := keyIDs(keys), sortedIDs(revoked.ID, expired.ID); !slices.Equal(got, want) {
		t.Fatalf("RetiredKeys = %v, want %v", got, want)
	}

	rule := func(expires *time.Time) *keyward.IPRule {
		r := ipRule("", keyward.IPBlock, "192.0.2.0/24")
		r.ExpiresAt = expires
		must(t, f.s.CreateIPRule(f.ctx, keyward.Change{}, r))
		return r
	}
	old := rule(ptr(t0.Add(-time.Hour)))
	atBefore := rule(ptr(t0))
	rule(ptr(t0.Add(time.Second)))
	rule(nil)
	rules, err := f.s.ExpiredIPRules(f.ctx, t0, "", 10)
	must(t, err)
	if got, want := ipRuleIDs(rules), sortedIDs(old.ID, atBefore.ID); !slices.Equal(got, want) {
		t.Fatalf("ExpiredIPRules = %v, want %v", got, want)
	}
	if rules, err := f.s.ExpiredIPRules(f.ctx, t0, ipRuleIDs(rules)[0], 10); err != nil || len(rules) != 1 {
		t.Fatalf("ExpiredIPRules after the first = %d rules, %v; want 1", len(rules), err)
	}
}

func testCreditRefillsDue(t *testing.T, open func(*testing.T) keyward.Store) {
	f := newFixture(t, open)
	a := f.account("a")
	t0 := fixedTime
	mk := func(c *keyward.Credits) *keyward.Key {
		return &NewKey(t, f.s, f.h, keyward.Key{Role: keyward.RoleAccountAdmin, AccountID: a.ID, Credits: c}).Key
	}
	hourly := mk(&keyward.Credits{Remaining: 1, Refill: &keyward.CreditRefill{Amount: 10, Interval: keyward.Duration(time.Hour)}, RefilledAt: t0})
	daily := mk(&keyward.Credits{Remaining: 1, Refill: &keyward.CreditRefill{Amount: 10, Interval: keyward.Duration(24 * time.Hour)}, RefilledAt: t0})
	mk(&keyward.Credits{Remaining: 1, RefilledAt: t0}) // no refill
	mk(nil)
	due := func(now time.Time) []string {
		t.Helper()
		ids, err := f.s.CreditRefillsDue(f.ctx, now, "", 10)
		must(t, err)
		return ids
	}
	if got := due(t0.Add(time.Hour - time.Microsecond)); len(got) != 0 {
		t.Fatalf("CreditRefillsDue before any interval = %v, want none", got)
	}
	if got := due(t0.Add(time.Hour)); !slices.Equal(got, []string{hourly.ID}) {
		t.Fatalf("CreditRefillsDue after an hour = %v, want [%s]", got, hourly.ID)
	}
	if got := due(t0.Add(24 * time.Hour)); !slices.Equal(got, sortedIDs(hourly.ID, daily.ID)) {
		t.Fatalf("CreditRefillsDue after a day = %v, want %s and %s", got, hourly.ID, daily.ID)
	}
	// Refilled (a write-back): no longer due.
	must(t, f.s.WriteCredits(f.ctx, []keyward.CreditWrite{{KeyID: hourly.ID, Remaining: 10, RefilledAt: t0.Add(time.Hour), Version: hourly.Credits.Version + 1}}))
	if got := due(t0.Add(time.Hour)); len(got) != 0 {
		t.Fatalf("CreditRefillsDue after the refill = %v, want none", got)
	}

	// Monthly refills (t0 is 2026-03-14): due at midnight UTC of their
	// day, the month's last when it is shorter.
	monthly := func(day int, refilledAt time.Time) string {
		return mk(&keyward.Credits{Remaining: 1, Refill: &keyward.CreditRefill{Amount: 10, Day: day}, RefilledAt: refilledAt}).ID
	}
	day5, day15, day31 := monthly(5, t0), monthly(15, t0), monthly(31, t0)
	april31 := monthly(31, time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC))
	isMonthly := []string{day5, day15, day31, april31}
	dueMonthly := func(now time.Time) []string {
		t.Helper()
		var out []string
		for _, id := range due(now) {
			if slices.Contains(isMonthly, id) {
				out = append(out, id)
			}
		}
		return out
	}
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		must(t, err)
		return tm
	}
	for _, c := range []struct {
		now  string
		want []string
	}{
		{"2026-03-14T23:59:59Z", nil},
		{"2026-03-15T00:00:00Z", []string{day15}},
		{"2026-03-30T23:59:59Z", []string{day15}},
		{"2026-03-31T00:00:00Z", sortedIDs(day15, day31)},
		{"2026-04-04T23:59:59Z", sortedIDs(day15, day31)},
		{"2026-04-05T00:00:00Z", sortedIDs(day5, day15, day31)},
		// April has 30 days: day 31 is due on the 30th.
		{"2026-04-29T23:59:59Z", sortedIDs(day5, day15, day31)},
		{"2026-04-30T00:00:00Z", sortedIDs(day5, day15, day31, april31)},
	} {
		if got := dueMonthly(at(c.now)); !slices.Equal(got, c.want) {
			t.Errorf("monthly refills due at %s = %v, want %v", c.now, got, c.want)
		}
	}
}
