package main

// End-to-end test of abuse protection with the real binary: two instances
// sharing PostgreSQL and Redis, each running the gateway in front of one
// upstream. Keys with a rate limit and with credits are hammered through
// both gateways; an address fails until it is blocked; anomalies are
// provoked and listed with the CLI.

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/client"
)

// gatewayURL waits for the gateway of p to listen and returns its URL.
func gatewayURL(t *testing.T, p *proc) string {
	t.Helper()
	line := p.stderr.WaitLine(t, `the "gateway listening" log line`, nil, func(l string) bool {
		return strings.Contains(l, `"msg":"gateway listening"`)
	})
	var rec struct{ Addr string }
	if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Addr == "" {
		t.Fatalf("cannot read the gateway address from %q: %v", line, err)
	}
	return "http://" + rec.Addr
}

// through sends GET /work through gateway as key, from the client address
// xff (believed: loopback is a trusted proxy), and returns the response.
func through(t *testing.T, gateway, key, xff string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", gateway+"/work", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("X-Forwarded-For", xff)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s/work: %v", gateway, err)
	}
	resp.Body.Close()
	return resp
}

// hammer sends n requests with key, alternating between the gateways, 8 at
// a time, and returns how many were admitted (200) and refused (429); any
// other status fails the test. It also returns one 429 response.
func hammer(t *testing.T, gateways []string, key string, n int) (admitted, limited int64, refused *http.Response) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	var a, l atomic.Int64
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			resp := through(t, gateways[i%len(gateways)], key, "198.51.100.10")
			switch resp.StatusCode {
			case http.StatusOK:
				a.Add(1)
			case http.StatusTooManyRequests:
				l.Add(1)
				mu.Lock()
				refused = resp
				mu.Unlock()
			default:
				t.Errorf("request %d: status %d", i, resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	return a.Load(), l.Load(), refused
}

func TestClusterAbuseProtection(t *testing.T) {
	c := newCluster(t, true)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok")
	}))
	defer upstream.Close()
	config := filepath.Join(t.TempDir(), "keyward.yaml")
	yaml := `gateway_listen: 127.0.0.1:0
trusted_proxies: [127.0.0.1/32]
gateway:
  routes:
    - prefix: /
      upstream: ` + upstream.URL + `
abuse:
  block_for: 1h
  brute_force: {threshold: 6, window: 1m}
`
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := c.env("KEYWARD_CONFIG=" + config)
	a := c.start(t, env)
	root := rootKey(t, a)
	b := c.start(t, env)
	gateways := []string{gatewayURL(t, a), gatewayURL(t, b)}

	ca := client.New(a.url, keyward.Secret(root))
	acc, err := ca.CreateAccount(t.Context(), keyward.AccountCreate{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	create := func(kc keyward.KeyCreate) *keyward.CreatedKey {
		t.Helper()
		kc.AccountID, kc.Role = acc.ID, keyward.RoleAccountAdmin
		k, err := ca.CreateKey(t.Context(), kc)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}

	// A rate limit shared by both instances through Redis: 10 per hour
	// refills one call every 6 minutes, so the whole test admits the
	// burst of 10 plus what refilled meanwhile (nothing, unless it ran
	// for minutes).
	const limit, window = 10, time.Hour
	limited := create(keyward.KeyCreate{RateLimits: []keyward.RateLimit{{Name: "hourly", Limit: limit, Window: keyward.Duration(window)}}})
	start := time.Now()
	admitted, refusedN, refused := hammer(t, gateways, limited.Secret, 40)
	tolerance := int64(time.Since(start) * limit / window)
	if admitted < limit || admitted > limit+tolerance {
		t.Errorf("rate limit of %d per %v: %d admitted across two instances, want %d (+%d refilled during the test)", limit, window, admitted, limit, tolerance)
	}
	if refusedN != 40-admitted {
		t.Errorf("%d refused, want the other %d", refusedN, 40-admitted)
	}
	if refused == nil || refused.Header.Get("Retry-After") == "" ||
		!strings.Contains(refused.Header.Get("RateLimit-Policy"), `"hourly";q=10;w=3600`) ||
		!strings.Contains(refused.Header.Get("RateLimit"), `"hourly";r=0`) {
		t.Errorf("a 429 lacks Retry-After or the RateLimit headers: %v", refused)
	}

	// Credits: 15, spent one per call across both instances, exactly.
	metered := create(keyward.KeyCreate{Credits: &keyward.Credits{Remaining: 15}})
	admitted, refusedN, _ = hammer(t, gateways, metered.Secret, 40)
	if admitted != 15 || refusedN != 25 {
		t.Errorf("15 credits: %d admitted, %d refused across two instances; want 15 and 25", admitted, refusedN)
	}
	cb := client.New(b.url, keyward.Secret(root))
	if cr, err := cb.Credits(t.Context(), metered.ID); err != nil || cr.Remaining != 0 {
		t.Errorf("credits read on B after the hammering = %+v, %v; want 0 remaining", cr, err)
	}
	if _, err := cb.TopUpCredits(t.Context(), metered.ID, 2); err != nil {
		t.Fatal(err)
	}
	if admitted, _, _ = hammer(t, gateways, metered.Secret, 5); admitted != 2 {
		t.Errorf("after a top-up of 2: %d admitted, want 2", admitted)
	}

	// A revoked key presented again: a leak indicator.
	good := create(keyward.KeyCreate{})
	if _, err := ca.RevokeKey(t.Context(), good.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, propagation, "the revoked key refused by B", func() string {
		if s := through(t, gateways[1], good.Secret, "198.51.100.20").StatusCode; s != http.StatusUnauthorized {
			return fmt.Sprint(s)
		}
		return ""
	})

	// Brute force: an address sends made-up keys to both instances until
	// it is blocked, then its guesses are refused on both with 403, while
	// a valid key from it still works (the block is automatic).
	attacker := fmt.Sprintf("203.0.113.%d", 1+rand.IntN(254))
	valid := create(keyward.KeyCreate{})
	for i := range 6 {
		if s := through(t, gateways[i%2], "kw_user_guess"+fmt.Sprint(i), attacker).StatusCode; s != http.StatusUnauthorized {
			t.Fatalf("guess %d: status %d, want 401", i, s)
		}
	}
	for _, gw := range gateways {
		eventually(t, 15*time.Second, "the attacker blocked at "+gw, func() string {
			if s := through(t, gw, "kw_user_guess_more", attacker).StatusCode; s != http.StatusForbidden {
				return fmt.Sprint(s)
			}
			return ""
		})
		if s := through(t, gw, valid.Secret, attacker).StatusCode; s != http.StatusOK {
			t.Errorf("a valid key from the blocked address at %s: %d, want 200", gw, s)
		}
	}
	if s := through(t, gateways[0], valid.Secret, "198.51.100.30").StatusCode; s != http.StatusOK {
		t.Errorf("a valid key from another address: %d, want 200", s)
	}
	rules, err := ca.IPRules(t.Context(), keyward.IPRuleFilter{Global: true}, keyward.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rules.Items) != 1 || rules.Items[0].CIDR.String() != attacker+"/32" || rules.Items[0].ExpiresAt == nil || !rules.Items[0].Automatic {
		t.Errorf("global rules after the brute force = %+v, want one automatic, expiring block of %s", rules.Items, attacker)
	}

	// Both findings are listed by the CLI.
	eventually(t, propagation, "the anomalies listed", func() string {
		r := runBinary(t, a.url, root, "anomalies", "list")
		if r.code != 0 {
			t.Fatalf("anomalies list: exit %d: %s", r.code, r.stderr)
		}
		for _, want := range []string{"brute_force", attacker, "revoked_key_use", good.ID} {
			if !strings.Contains(r.stdout, want) {
				return "no " + want + " in:\n" + r.stdout
			}
		}
		return ""
	})
	a.stop(t)
	b.stop(t)
}
