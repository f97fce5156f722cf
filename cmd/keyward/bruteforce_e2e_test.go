package main

// End-to-end tests of brute-force blocking with the real binary (issue 13):
// guessing from an address blocks the guesses, never the valid keys used
// from it, and behind a trusted proxy the admin API blocks the forwarded
// client, never the proxy.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

// apiCall sends method path to the API at base with key as the caller and,
// when xff is not empty, X-Forwarded-For: xff. It returns the status and
// the body.
func apiCall(t *testing.T, base, method, path, key, xff string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// whoami returns the status of GET /v1/whoami as key from xff.
func whoami(t *testing.T, base, key, xff string) int {
	t.Helper()
	s, _ := apiCall(t, base, "GET", "/v1/whoami", key, xff, nil)
	return s
}

// guess sends n made-up root keys to /v1/whoami from xff; each must be
// refused (401, or 403 once the address is blocked).
func guess(t *testing.T, base, xff string, n int) {
	t.Helper()
	for i := range n {
		if s := whoami(t, base, fmt.Sprintf("kw_root_bad%d", i), xff); s != http.StatusUnauthorized && s != http.StatusForbidden {
			t.Fatalf("guess %d from %q: status %d, want 401 or 403", i, xff, s)
		}
	}
}

// globalRules lists the global IP rules as root from xff.
func globalRules(t *testing.T, base, root, xff string) []*keyward.IPRule {
	t.Helper()
	s, body := apiCall(t, base, "GET", "/v1/ip-rules?scope=global", root, xff, nil)
	var list keyward.IPRuleList
	if s != http.StatusOK || json.Unmarshal(body, &list) != nil {
		t.Fatalf("listing the global rules: %d %s", s, body)
	}
	return list.Items
}

// TestBruteForceSparesValidKeys is the repro of issue 13: 25 bad root keys
// from one address block it, yet the real root key from that address still
// works; a wrong key from it is refused with 403, and the block is listed
// as automatic.
func TestBruteForceSparesValidKeys(t *testing.T) {
	requireBinary(t)
	p := startBinary(t, filepath.Join(t.TempDir(), "data"))
	root := rootKey(t, p)

	guess(t, p.url, "", 25)
	eventually(t, waitTimeout, "the guessing address blocked", func() string {
		if s := whoami(t, p.url, "kw_root_bad_again", ""); s != http.StatusForbidden {
			return fmt.Sprint(s)
		}
		return ""
	})
	if s := whoami(t, p.url, root, ""); s != http.StatusOK {
		t.Fatalf("the real root key from the blocked address: %d, want 200", s)
	}
	// A well-formed wrong key is refused too, not only garbage.
	if s := whoami(t, p.url, root[:len(root)-4]+"AAAA", ""); s != http.StatusForbidden {
		t.Errorf("a wrong key from the blocked address: %d, want 403", s)
	}
	rules := globalRules(t, p.url, root, "")
	if len(rules) != 1 || rules[0].CIDR.String() != "127.0.0.1/32" || !rules[0].Automatic || rules[0].ExpiresAt == nil {
		t.Fatalf("global rules = %+v, want one automatic, expiring block of 127.0.0.1", rules)
	}
	if r := runBinary(t, p.url, root, "ip-rules", "list", "--global"); r.code != 0 || !strings.Contains(r.stdout, "block (automatic)") {
		t.Errorf("ip-rules list --global: exit %d, output:\n%s\nwant the block shown as automatic", r.code, r.stdout)
	}
	p.stop(t)
}

// TestBruteForceBehindTrustedProxy: with the proxy in trusted_proxies the
// admin API reads the client from X-Forwarded-For; the guessing client is
// blocked, the proxy's own address never is, other forwarded clients are
// unaffected, and a block made by hand refuses even the root key.
func TestBruteForceBehindTrustedProxy(t *testing.T) {
	requireBinary(t)
	p := startBinary(t, filepath.Join(t.TempDir(), "data"), "--trusted-proxies", "127.0.0.1")
	root := rootKey(t, p)
	const attacker, bystander, operator = "203.0.113.7", "198.51.100.9", "198.51.100.1"

	// Requests the proxy relays without naming a client carry its own
	// address: they are refused, never counted. Sent first, so the
	// detector (one goroutine, in order) has seen them all by the time it
	// blocks the attacker below.
	guess(t, p.url, "", 25)
	guess(t, p.url, attacker, 25)
	eventually(t, waitTimeout, "the attacker blocked", func() string {
		if s := whoami(t, p.url, "kw_root_bad_again", attacker); s != http.StatusForbidden {
			return fmt.Sprint(s)
		}
		return ""
	})
	if s := whoami(t, p.url, root, attacker); s != http.StatusOK {
		t.Errorf("the real root key from the blocked client: %d, want 200", s)
	}
	if s := whoami(t, p.url, "kw_root_bad_proxy", ""); s != http.StatusUnauthorized {
		t.Errorf("a bad key from the proxy itself: %d, want 401 (the proxy is never blocked)", s)
	}
	if s := whoami(t, p.url, "kw_root_bad_bystander", bystander); s != http.StatusUnauthorized {
		t.Errorf("a bad key from another forwarded client: %d, want 401", s)
	}
	if s := whoami(t, p.url, root, bystander); s != http.StatusOK {
		t.Errorf("the root key from another forwarded client: %d, want 200", s)
	}
	rules := globalRules(t, p.url, root, operator)
	if len(rules) != 1 || rules[0].CIDR.String() != attacker+"/32" || !rules[0].Automatic {
		t.Fatalf("global rules = %+v, want only the automatic block of %s", rules, attacker)
	}

	// A block made by hand keeps refusing everything, the root key too.
	s, body := apiCall(t, p.url, "POST", "/v1/ip-rules", root, operator,
		map[string]any{"action": "block", "cidr": bystander, "reason": "by hand", "expires_at": time.Now().Add(time.Hour)})
	if s != http.StatusCreated {
		t.Fatalf("creating a block by hand: %d %s", s, body)
	}
	if s := whoami(t, p.url, root, bystander); s != http.StatusForbidden {
		t.Errorf("the root key from an address blocked by hand: %d, want 403", s)
	}
	if s := whoami(t, p.url, root, operator); s != http.StatusOK {
		t.Errorf("the root key from the operator's address: %d, want 200", s)
	}
	// The audit log records the forwarded client, not the proxy.
	s, body = apiCall(t, p.url, "GET", "/v1/audit?action=ip_rule.create", root, operator, nil)
	var audit keyward.AuditList
	if s != http.StatusOK || json.Unmarshal(body, &audit) != nil {
		t.Fatalf("audit: %d %s", s, body)
	}
	var byHand *keyward.AuditEntry
	for _, a := range audit.Items {
		if a.Actor.KeyID != "" {
			byHand = a
		}
	}
	if byHand == nil || byHand.Actor.IP != operator {
		t.Errorf("audit entries of ip_rule.create = %s; want the hand-made one from %s", body, operator)
	}
	p.stop(t)
}
