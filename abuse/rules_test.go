package abuse_test

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/abuse"
)

func network(keyID, ip string) keyward.Signal {
	return keyward.Signal{Kind: keyward.SignalNetwork, Decision: keyward.DecisionValid, IP: addr(ip), KeyID: keyID, AccountID: "acc_1", Count: 1}
}

func usage(keyID string, n int64) keyward.Signal {
	return keyward.Signal{Kind: keyward.SignalUsage, KeyID: keyID, AccountID: "acc_1", Count: n}
}

func TestIPSpread(t *testing.T) {
	e := newEnv(t, func(c *abuse.Config) {
		c.IPSpread = abuse.IPSpread{Enabled: true, Action: keyward.AnomalyActionDisableKey}
	})
	// Ten networks (two addresses of one /24 count once) are the limit.
	for i := range 10 {
		e.send(network("key_new", fmt.Sprintf("198.51.%d.1", i)), network("key_new", fmt.Sprintf("198.51.%d.200", i)))
	}
	if as := e.anomalies(keyward.AnomalyIPSpread); len(as) != 0 {
		t.Fatalf("reported at 10 networks: %v", as)
	}
	e.send(network("key_new", "2001:db8::1"), network("key_new", "2001:db8:0:1::1"))
	as := e.anomalies(keyward.AnomalyIPSpread)
	if len(as) != 1 {
		t.Fatalf("ip_spread anomalies = %d, want 1 (once per window)", len(as))
	}
	e.want(as[0], keyward.AnomalyIPSpread, keyward.SeverityMedium, "acc_1", "key_new", "2001:db8::1", keyward.AnomalyActionDisableKey)
	m := details(t, as[0])
	wantNumber(t, m, "networks", 11)
	wantNumber(t, m, "limit", 10)
	wantNumber(t, m, "baseline", 0)
	if !slices.Equal(e.acts.disabled, []string{"key_new"}) {
		t.Errorf("disabled %v, want key_new", e.acts.disabled)
	}

	// A key used from 10 networks an hour for a day has a baseline of 10,
	// so its limit is 30.
	for range abuse.DefaultIPSpreadWindows {
		for i := range 10 {
			e.send(network("key_busy", fmt.Sprintf("203.0.%d.1", i)))
		}
		e.clock.advance(time.Hour)
	}
	for i := range 30 {
		e.send(network("key_busy", fmt.Sprintf("192.0.%d.1", i)))
	}
	if as := e.anomalies(keyward.AnomalyIPSpread); len(as) != 1 {
		t.Fatalf("key_busy reported at 30 networks with a baseline of 10")
	}
	e.send(network("key_busy", "192.0.99.1"))
	as = e.anomalies(keyward.AnomalyIPSpread)
	if len(as) != 2 {
		t.Fatalf("anomalies = %d, want key_busy reported at 31 networks", len(as))
	}
	m = details(t, find(t, as, ofKey("key_busy")))
	wantNumber(t, m, "networks", 31)
	wantNumber(t, m, "baseline", 10)
	wantNumber(t, m, "limit", 30)
	if !slices.Equal(e.acts.disabled, []string{"key_new", "key_busy"}) {
		t.Errorf("disabled %v", e.acts.disabled)
	}
}

// TestIPSpreadCountsEachNetworkOnce: a network seen again later in the
// window, in any order and either family, is not counted again.
func TestIPSpreadCountsEachNetworkOnce(t *testing.T) {
	e := newEnv(t, func(c *abuse.Config) { c.IPSpread = abuse.IPSpread{Enabled: true} })
	ips := []string{"198.51.7.1", "2001:db8:0:9::1", "198.51.2.1", "198.51.9.1", "2001:db8::1", "198.51.0.1",
		"198.51.5.1", "2001:db8:0:3::1", "198.51.1.1", "198.51.8.1"}
	for round := range 3 {
		for i := range ips {
			// Each round in another order, another address of the network.
			ip := ips[(i*7+round*3)%len(ips)]
			e.send(network("key_1", strings.TrimSuffix(ip, "1")+strconv.Itoa(round+1)))
		}
	}
	if as := e.anomalies(keyward.AnomalyIPSpread); len(as) != 0 {
		t.Fatalf("reported with 10 networks seen three times each: %v", as)
	}
	e.send(network("key_1", "198.51.4.1"))
	as := e.anomalies(keyward.AnomalyIPSpread)
	if len(as) != 1 {
		t.Fatalf("ip_spread anomalies = %d, want 1 at the 11th network", len(as))
	}
	wantNumber(t, details(t, as[0]), "networks", 11)
}

func TestUsageSpike(t *testing.T) {
	e := newEnv(t, func(c *abuse.Config) { c.UsageSpike.Enabled = true })
	// Twelve windows of 5 uses: a trailing mean of 5, so a spike is above
	// 50 uses and at least the minimum of 100.
	for range abuse.DefaultUsageSpikeWindows {
		e.send(usage("key_1", 2), usage("key_1", 3))
		// A new key is not judged while it learns, however busy.
		e.send(usage("key_learning", 5000))
		e.clock.advance(abuse.DefaultUsageSpikeWindow)
	}
	e.send(usage("key_1", 99))
	if as := e.anomalies(keyward.AnomalyUsageSpike); len(as) != 0 {
		t.Fatalf("reported below the minimum: %v", as)
	}
	e.clock.advance(time.Minute) // same window
	e.send(usage("key_1", 1))
	as := e.anomalies(keyward.AnomalyUsageSpike)
	if len(as) != 1 {
		t.Fatalf("usage_spike anomalies = %d, want 1", len(as))
	}
	e.want(as[0], keyward.AnomalyUsageSpike, keyward.SeverityMedium, "acc_1", "key_1", "", keyward.AnomalyActionNone)
	m := details(t, as[0])
	wantNumber(t, m, "uses", 100)
	wantNumber(t, m, "mean", 5)
	wantNumber(t, m, "factor", 10)
	e.send(usage("key_1", 1000))
	if as := e.anomalies(keyward.AnomalyUsageSpike); len(as) != 1 {
		t.Fatalf("reported twice in one window: %d", len(as))
	}
	// key_learning, now judged, is steady at 5000 per window.
	e.clock.advance(4 * time.Minute)
	e.send(usage("key_learning", 5000))
	if as := e.anomalies(keyward.AnomalyUsageSpike); len(as) != 1 {
		t.Fatalf("steady key reported: %v", as[len(as)-1])
	}
	if len(e.acts.disabled) != 0 {
		t.Errorf("disabled %v with no action configured", e.acts.disabled)
	}
}

// TestUsageSpikeAfterIdle: after a history of nothing, the minimum alone
// decides.
func TestUsageSpikeAfterIdle(t *testing.T) {
	e := newEnv(t, func(c *abuse.Config) {
		c.UsageSpike = abuse.UsageSpike{Enabled: true, Windows: 2, Minimum: 10, Action: keyward.AnomalyActionDisableKey}
	})
	e.send(usage("key_1", 50))
	e.clock.advance(2 * abuse.DefaultUsageSpikeWindow)
	e.send(usage("key_1", 9))
	if as := e.anomalies(keyward.AnomalyUsageSpike); len(as) != 0 {
		t.Fatalf("reported below the minimum: %v", as)
	}
	e.clock.advance(5 * abuse.DefaultUsageSpikeWindow)
	e.send(usage("key_1", 10))
	as := e.anomalies(keyward.AnomalyUsageSpike)
	if len(as) != 1 || !slices.Equal(e.acts.disabled, []string{"key_1"}) {
		t.Fatalf("anomalies %v, disabled %v; want key_1 reported and disabled", as, e.acts.disabled)
	}
	wantNumber(t, details(t, as[0]), "mean", 0)
}

func TestRevokedKeyUse(t *testing.T) {
	e := newEnv(t, func(c *abuse.Config) {
		c.RevokedKeyUse = abuse.RevokedKeyUse{Enabled: true, Action: keyward.AnomalyActionBlockIP}
		c.AllowList = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	})
	revoked := func(keyID, ip string, d keyward.Decision) keyward.Signal {
		s := failure(ip, d)
		s.KeyID, s.AccountID = keyID, "acc_1"
		return s
	}
	e.send(revoked("key_1", "192.0.2.1", keyward.DecisionRevoked))
	e.send(revoked("key_1", "192.0.2.2", keyward.DecisionRevoked)) // once per window
	e.send(revoked("key_2", "192.0.2.3", keyward.DecisionDisabled))
	e.send(revoked("", "192.0.2.3", keyward.DecisionRevoked))
	as := e.anomalies(keyward.AnomalyRevokedKeyUse)
	if len(as) != 1 {
		t.Fatalf("revoked_key_use anomalies = %d, want 1", len(as))
	}
	e.want(as[0], keyward.AnomalyRevokedKeyUse, keyward.SeverityHigh, "acc_1", "key_1", "192.0.2.1", keyward.AnomalyActionBlockIP)
	if len(e.acts.blocks) != 1 || e.acts.blocks[0].network != netip.MustParsePrefix("192.0.2.1/32") ||
		!e.acts.blocks[0].until.Equal(e.clock.now.Add(abuse.DefaultBlockFor)) {
		t.Fatalf("blocks = %v, want 192.0.2.1/32 for the default period", e.acts.blocks)
	}
	if details(t, as[0])["decision"] != "REVOKED" {
		t.Errorf("details %s", as[0].Details)
	}

	e.send(revoked("key_3", "10.9.9.9", keyward.DecisionExpired), revoked("key_4", "", keyward.DecisionExpired))
	as = e.anomalies(keyward.AnomalyRevokedKeyUse)
	if len(as) != 3 || len(e.acts.blocks) != 1 {
		t.Fatalf("anomalies = %d, blocks = %d; want 3 and still 1", len(as), len(e.acts.blocks))
	}
	if a3, a4 := find(t, as, ofKey("key_3")), find(t, as, ofKey("key_4")); !strings.Contains(a3.ActionError, "allow list") || !strings.Contains(a4.ActionError, "unknown") {
		t.Errorf("action errors %q, %q; want the allow list and the unknown address named", a3.ActionError, a4.ActionError)
	}

	e.clock.advance(abuse.DefaultRevokedKeyUseWindow)
	e.send(revoked("key_1", "192.0.2.1", keyward.DecisionRevoked))
	if as := e.anomalies(keyward.AnomalyRevokedKeyUse); len(as) != 4 {
		t.Fatalf("anomalies = %d, want key_1 reported again after the window", len(as))
	}
}

func TestFailureBurst(t *testing.T) {
	e := newEnv(t, func(c *abuse.Config) { c.FailureBurst.Enabled = true })
	fail := func(accountID string, d keyward.Decision) keyward.Signal {
		s := failure("192.0.2.1", d)
		s.KeyID, s.AccountID = "key_1", accountID
		return s
	}
	for i := range 49 {
		d := keyward.DecisionInsufficientPermissions
		if i%2 == 0 {
			d = keyward.DecisionIPNotAllowed
		}
		e.send(fail("acc_1", d), fail("acc_1", keyward.DecisionRateLimited), fail("acc_1", keyward.DecisionUsageExceeded))
	}
	e.send(fail("acc_2", keyward.DecisionRevoked), fail("", keyward.DecisionRevoked))
	if as := e.anomalies(keyward.AnomalyFailureBurst); len(as) != 0 {
		t.Fatalf("reported at 49 failures: %v", as)
	}
	e.clock.advance(4 * time.Minute)
	e.send(fail("acc_1", keyward.DecisionDisabled), fail("acc_1", keyward.DecisionDisabled))
	as := e.anomalies(keyward.AnomalyFailureBurst)
	if len(as) != 1 {
		t.Fatalf("failure_burst anomalies = %d, want 1", len(as))
	}
	e.want(as[0], keyward.AnomalyFailureBurst, keyward.SeverityMedium, "acc_1", "", "", keyward.AnomalyActionNone)
	wantNumber(t, details(t, as[0]), "failures", 50)

	e.clock.advance(time.Minute) // the next window
	for range 50 {
		e.send(fail("acc_1", keyward.DecisionNotFound))
	}
	if as := e.anomalies(keyward.AnomalyFailureBurst); len(as) != 2 {
		t.Fatalf("anomalies = %d, want a second burst in the next window", len(as))
	}
}

func TestWindowStart(t *testing.T) {
	for _, tc := range []struct {
		now    time.Time
		window time.Duration
		want   time.Time
	}{
		{t0.Add(59 * time.Second), time.Minute, t0},
		{t0.Add(time.Minute), time.Minute, t0.Add(time.Minute)},
		{t0.Add(7*time.Minute + time.Millisecond), 5 * time.Minute, t0.Add(5 * time.Minute)},
		{t0.Add(90 * time.Minute).In(time.FixedZone("X", 3600)), time.Hour, t0.Add(time.Hour)},
	} {
		if got := abuse.WindowStart(tc.now, tc.window); !got.Equal(tc.want) {
			t.Errorf("WindowStart(%v, %v) = %v, want %v", tc.now, tc.window, got, tc.want)
		}
	}
}

func TestLocalCounter(t *testing.T) {
	ctx := t.Context()
	c := abuse.NewLocalCounter(2)
	add := func(key string, at time.Time) int64 {
		t.Helper()
		n, err := c.Add(ctx, key, 1, at, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if add("a", t0) != 1 || add("a", t0.Add(59*time.Second)) != 2 || add("c", t0.Add(59*time.Second)) != 1 {
		t.Fatal("counts do not add up")
	}
	// Full of live counts: a new one is refused until they expire.
	if _, err := c.Add(ctx, "b", 1, t0.Add(59*time.Second), time.Minute); keyward.ErrorCode(err) != keyward.EUNAVAILABLE {
		t.Fatalf("Add past the bound = %v, want EUNAVAILABLE", err)
	}
	if add("b", t0.Add(time.Minute)) != 1 || add("a", t0.Add(time.Minute)) != 1 {
		t.Fatal("expired counts were not swept, or a new window did not start from zero")
	}

	claim := func(key string, at time.Time) bool {
		t.Helper()
		ok, err := c.Claim(ctx, key, at, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !claim("m", t0) || claim("m", t0.Add(59*time.Second)) || !claim("m", t0.Add(time.Minute)) {
		t.Fatal("a marker is not claimed once while it lives")
	}
	if err := c.Release(ctx, "m"); err != nil {
		t.Fatal(err)
	}
	if !claim("m", t0.Add(time.Minute)) {
		t.Fatal("a released marker cannot be claimed")
	}
}
