package keywardtest

import (
	"net/netip"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

func ipRule(accountID string, action keyward.IPAction, cidr string) *keyward.IPRule {
	return &keyward.IPRule{
		ID: apikey.NewID("ipr"), AccountID: accountID, Action: action,
		CIDR: netip.MustParsePrefix(cidr), CreatedAt: fixedTime, CreatedBy: apikey.NewID("key"),
	}
}

func wantIPRule(t testing.TB, got, want *keyward.IPRule) {
	t.Helper()
	if got.ID != want.ID || got.AccountID != want.AccountID || got.Action != want.Action || got.CIDR != want.CIDR ||
		got.Reason != want.Reason || !timeEqual(got.ExpiresAt, want.ExpiresAt) || !got.CreatedAt.Equal(want.CreatedAt) ||
		got.CreatedBy != want.CreatedBy || got.Automatic != want.Automatic {
		t.Fatalf("ip rule differs:\n got %+v\nwant %+v", got, want)
	}
	if got.CreatedAt.Location() != time.UTC || got.ExpiresAt != nil && got.ExpiresAt.Location() != time.UTC {
		t.Fatalf("ip rule %s: times are not UTC: %v, %v", got.ID, got.CreatedAt, got.ExpiresAt)
	}
}

func ipRuleIDs(rs []*keyward.IPRule) []string {
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.ID
	}
	return ids
}

func testIPRules(t *testing.T, open func(*testing.T) keyward.Store) {
	f := newFixture(t, open)
	a, b := f.account("a"), f.account("b")

	// Round trip, IPv4 and IPv6, global and per account.
	global := ipRule("", keyward.IPBlock, "203.0.113.0/24")
	global.Reason = "scanner"
	global.ExpiresAt = ptr(fixedTime.Add(time.Hour).In(time.FixedZone("UTC+2", 7200)))
	v6 := ipRule(a.ID, keyward.IPAllow, "2001:db8:1::/48")
	host := ipRule(a.ID, keyward.IPBlock, "198.51.100.7/32")
	other := ipRule(b.ID, keyward.IPBlock, "::1/128")
	// An automatic block (brute-force blocking) keeps its mark, in every
	// read: get, list, active and delete.
	auto := ipRule("", keyward.IPBlock, "192.0.2.66/32")
	auto.Automatic, auto.CreatedBy = true, ""
	for _, r := range []*keyward.IPRule{global, v6, host, other, auto} {
		must(t, f.s.CreateIPRule(f.ctx, keyward.Change{}, r))
	}
	for _, r := range []*keyward.IPRule{global, v6, host, other, auto} {
		got, err := f.s.IPRule(f.ctx, r.ID)
		must(t, err)
		wantIPRule(t, got, r)
	}

	t.Run("errors", func(t *testing.T) {
		_, err := f.s.IPRule(f.ctx, "ipr_missing")
		wantCode(t, err, keyward.ENOTFOUND)
		wantCode(t, f.s.CreateIPRule(f.ctx, keyward.Change{}, ipRule("acc_missing", keyward.IPBlock, "10.0.0.0/8")), keyward.ENOTFOUND)
		dup := ipRule("", keyward.IPBlock, "10.0.0.0/8")
		dup.ID = global.ID
		wantCode(t, f.s.CreateIPRule(f.ctx, keyward.Change{}, dup), keyward.ECONFLICT)
		wantCode(t, f.s.CreateIPRule(f.ctx, keyward.Change{}, ipRule("", "deny", "10.0.0.0/8")), keyward.EINVALID)
		unmasked := ipRule("", keyward.IPBlock, "10.0.0.0/8")
		unmasked.CIDR = netip.MustParsePrefix("10.1.2.3/8")
		wantCode(t, f.s.CreateIPRule(f.ctx, keyward.Change{}, unmasked), keyward.EINVALID)
		autoAllow := ipRule("", keyward.IPAllow, "10.0.0.0/8")
		autoAllow.Automatic = true
		wantCode(t, f.s.CreateIPRule(f.ctx, keyward.Change{}, autoAllow), keyward.EINVALID)
		autoAccount := ipRule(a.ID, keyward.IPBlock, "10.0.0.0/8")
		autoAccount.Automatic = true
		wantCode(t, f.s.CreateIPRule(f.ctx, keyward.Change{}, autoAccount), keyward.EINVALID)
		zero := ipRule("", keyward.IPBlock, "10.0.0.0/8")
		zero.CIDR = netip.Prefix{}
		wantCode(t, f.s.CreateIPRule(f.ctx, keyward.Change{}, zero), keyward.EINVALID)
		_, _, err = f.s.IPRules(f.ctx, keyward.IPRuleFilter{AccountID: a.ID, Global: true}, keyward.Page{})
		wantCode(t, err, keyward.EINVALID)
	})

	t.Run("filters", func(t *testing.T) {
		list := func(flt keyward.IPRuleFilter) []string {
			t.Helper()
			rs, next, err := f.s.IPRules(f.ctx, flt, keyward.Page{})
			must(t, err)
			if next != "" {
				t.Fatalf("next = %q on a short list", next)
			}
			return ipRuleIDs(rs)
		}
		wantIDs(t, list(keyward.IPRuleFilter{}), sorted(global.ID, v6.ID, host.ID, other.ID, auto.ID)...)
		wantIDs(t, list(keyward.IPRuleFilter{Global: true}), sorted(global.ID, auto.ID)...)
		wantIDs(t, list(keyward.IPRuleFilter{AccountID: a.ID}), sorted(v6.ID, host.ID)...)
		wantIDs(t, list(keyward.IPRuleFilter{AccountID: "acc_none"}))
		ids := pageWalk(t, 1, func(p keyward.Page) ([]*keyward.IPRule, string, error) {
			return f.s.IPRules(f.ctx, keyward.IPRuleFilter{}, p)
		}, func(r *keyward.IPRule) string { return r.ID })
		wantIDs(t, ids, sorted(global.ID, v6.ID, host.ID, other.ID, auto.ID)...)
		rs, err := f.s.ActiveIPRules(f.ctx, fixedTime)
		must(t, err)
		for _, r := range rs {
			if r.ID == auto.ID {
				wantIPRule(t, r, auto)
			}
		}
	})

	t.Run("delete", func(t *testing.T) {
		got, err := f.s.DeleteIPRule(f.ctx, keyward.Change{}, host.ID)
		must(t, err)
		wantIPRule(t, got, host)
		_, err = f.s.DeleteIPRule(f.ctx, keyward.Change{}, host.ID)
		wantCode(t, err, keyward.ENOTFOUND)
		_, err = f.s.IPRule(f.ctx, host.ID)
		wantCode(t, err, keyward.ENOTFOUND)
		got, err = f.s.DeleteIPRule(f.ctx, keyward.Change{}, auto.ID)
		must(t, err)
		wantIPRule(t, got, auto)
	})

	t.Run("deleting an account deletes its rules", func(t *testing.T) {
		_, err := f.s.DeleteAccount(f.ctx, keyward.Change{}, b.ID)
		must(t, err)
		_, err = f.s.IPRule(f.ctx, other.ID)
		wantCode(t, err, keyward.ENOTFOUND)
	})
}

func testActiveIPRules(t *testing.T, open func(*testing.T) keyward.Store) {
	f := newFixture(t, open)
	a := f.account("a")
	now := fixedTime.Add(24 * time.Hour)
	forever := ipRule("", keyward.IPBlock, "192.0.2.0/24")
	later := ipRule(a.ID, keyward.IPAllow, "2001:db8::/32")
	later.ExpiresAt = ptr(now.Add(time.Microsecond))
	expired := ipRule("", keyward.IPBlock, "198.51.100.0/24")
	expired.ExpiresAt = ptr(now.Add(-time.Hour))
	atNow := ipRule(a.ID, keyward.IPBlock, "10.0.0.0/8")
	atNow.ExpiresAt = ptr(now) // ends at now: no longer active
	for _, r := range []*keyward.IPRule{forever, later, expired, atNow} {
		must(t, f.s.CreateIPRule(f.ctx, keyward.Change{}, r))
	}
	rs, err := f.s.ActiveIPRules(f.ctx, now)
	must(t, err)
	wantIDs(t, ipRuleIDs(rs), sorted(forever.ID, later.ID)...)
	for _, r := range rs {
		if r.ID == later.ID {
			wantIPRule(t, r, later)
		}
	}
	// The listing keeps expired rules: they are shown until deleted.
	all, _, err := f.s.IPRules(f.ctx, keyward.IPRuleFilter{}, keyward.Page{})
	must(t, err)
	if len(all) != 4 {
		t.Fatalf("IPRules listed %d rules, want all 4 (expired ones included)", len(all))
	}
	empty := newFixture(t, open)
	rs, err = empty.s.ActiveIPRules(empty.ctx, now)
	must(t, err)
	if rs == nil || len(rs) != 0 {
		t.Fatalf("ActiveIPRules on an empty store = %v, want an empty list", rs)
	}
}

func testKeyIPAllow(t *testing.T, open func(*testing.T) keyward.Store) {
	f := newFixture(t, open)
	a := f.account("a")
	u := f.user(a.ID, "u")
	k := fullKey(a.ID, u.ID)
	must(t, f.s.CreateKey(f.ctx, keyward.Change{}, k))
	wantKey(t, f.key(k.ID), k)
	got, err := f.s.KeyByHash(f.ctx, k.Hash)
	must(t, err)
	wantKey(t, got, k)

	// Update replaces the list, and an empty list removes it.
	v6only := []netip.Prefix{netip.MustParsePrefix("2001:db8:42::1/128")}
	up, err := f.s.UpdateKey(f.ctx, keyward.Change{}, k.ID, func(k *keyward.Key) error { k.IPAllow = v6only; return nil })
	must(t, err)
	if len(up.IPAllow) != 1 || up.IPAllow[0] != v6only[0] {
		t.Fatalf("IPAllow after update = %v, want %v", up.IPAllow, v6only)
	}
	up, err = f.s.UpdateKey(f.ctx, keyward.Change{}, k.ID, func(k *keyward.Key) error { k.IPAllow = nil; return nil })
	must(t, err)
	if len(up.IPAllow) != 0 {
		t.Fatalf("IPAllow after clearing = %v, want none", up.IPAllow)
	}

	// CreateKeys keeps the lists too.
	batch := batchKeys(a.ID, u.ID, 2)
	batch[0].IPAllow = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	must(t, f.s.CreateKeys(f.ctx, keyward.Change{}, batch))
	wantKey(t, f.key(batch[0].ID), batch[0])
	wantKey(t, f.key(batch[1].ID), batch[1])
}
