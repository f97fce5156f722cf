package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

func TestIPRuleBadCIDR(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, cidr := range []string{"10.0.0.0/33", "not-an-ip", "::ffff:10.0.0.1/128", ""} {
		r := e.do("POST", "/v1/ip-rules", e.root, `{"action":"block","cidr":"`+cidr+`"}`)
		if r.status != http.StatusBadRequest {
			t.Fatalf("cidr %q: status %d, want 400; body %s", cidr, r.status, r.body)
		}
		p := r.problem(t)
		if p.Code != keyward.EINVALID || !strings.Contains(p.Detail, `"`+cidr+`"`) {
			t.Errorf("cidr %q: problem %+v does not name the value", cidr, p)
		}
	}
	r := e.do("POST", "/v1/ip-rules", e.root, `{"action":"deny","cidr":"10.0.0.0/8"}`)
	if r.status != http.StatusBadRequest {
		t.Errorf("action deny: status %d, want 400", r.status)
	}
	a := e.mustAccount("a")
	r = e.do("POST", "/v1/keys", e.root, `{"account_id":"`+a.ID+`","role":"account_admin","ip_allow":["10.0.0.0/8","300.1.1.1"]}`)
	if p := r.problem(t); r.status != http.StatusBadRequest || !strings.Contains(p.Detail, `"300.1.1.1"`) {
		t.Errorf("ip_allow with a bad CIDR: status %d, detail %q", r.status, p.Detail)
	}
	r = e.do("GET", "/v1/ip-rules?scope=local", e.root, "")
	if r.status != http.StatusBadRequest {
		t.Errorf("scope=local: status %d, want 400", r.status)
	}
}

// TestIPRulesProtectTheAPI: the API's own authentication obeys the rules,
// and a change applies at once. The test client is 127.0.0.1.
func TestIPRulesProtectTheAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.mustAccount("a")
	admin := keyward.Secret(e.mustKey(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin}).Secret)
	whoami := func(key keyward.Secret) int { return e.do("GET", "/v1/whoami", key, "").status }

	rule, err := e.client(e.root).CreateIPRule(t.Context(), keyward.IPRuleCreate{AccountID: a.ID, Action: keyward.IPBlock, CIDR: "127.0.0.1", Reason: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if rule.CIDR.String() != "127.0.0.1/32" || rule.CreatedBy != e.rootKey.ID {
		t.Errorf("rule = %+v", rule)
	}
	if got := whoami(admin); got != http.StatusForbidden {
		t.Fatalf("admin of a blocked account: %d, want 403", got)
	}
	if got := whoami(e.root); got != http.StatusOK {
		t.Fatalf("root: %d, want 200 (the rule is the account's)", got)
	}
	if err := e.client(e.root).DeleteIPRule(t.Context(), rule.ID); err != nil {
		t.Fatal(err)
	}
	if got := whoami(admin); got != http.StatusOK {
		t.Fatalf("after delete: %d, want 200", got)
	}

	// An allow list elsewhere refuses; one holding the client admits.
	if _, err := e.client(e.root).CreateIPRule(t.Context(), keyward.IPRuleCreate{AccountID: a.ID, Action: keyward.IPAllow, CIDR: "10.0.0.0/8"}); err != nil {
		t.Fatal(err)
	}
	if got := whoami(admin); got != http.StatusForbidden {
		t.Fatalf("outside the account's allow list: %d, want 403", got)
	}
	if _, err := e.client(e.root).CreateIPRule(t.Context(), keyward.IPRuleCreate{AccountID: a.ID, Action: keyward.IPAllow, CIDR: "127.0.0.0/8"}); err != nil {
		t.Fatal(err)
	}
	if got := whoami(admin); got != http.StatusOK {
		t.Fatalf("inside the account's allow list: %d, want 200", got)
	}

	// The key's own list.
	far := e.mustKey(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin, IPAllow: []string{"2001:db8::/32"}})
	if got := whoami(keyward.Secret(far.Secret)); got != http.StatusForbidden {
		t.Fatalf("key allowed only from 2001:db8::/32: %d, want 403", got)
	}
	near := e.mustKey(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin, IPAllow: []string{"127.0.0.1"}})
	if got := whoami(keyward.Secret(near.Secret)); got != http.StatusOK {
		t.Fatalf("key allowed from 127.0.0.1: %d, want 200", got)
	}
	k, err := e.client(e.root).Key(t.Context(), near.ID)
	if err != nil || len(k.IPAllow) != 1 || k.IPAllow[0].String() != "127.0.0.1/32" {
		t.Fatalf("Key = %+v, %v; want ip_allow [127.0.0.1/32]", k, err)
	}

	// Listing: an admin sees its account's rules only.
	l, err := e.client(admin).IPRules(t.Context(), keyward.IPRuleFilter{}, keyward.Page{})
	if err != nil || len(l.Items) != 2 {
		t.Fatalf("admin's list = %+v, %v; want its 2 rules", l, err)
	}
}

// TestIPAllowNoEscalation: a non-root caller whose key has an allow list
// may only give keys networks inside it.
func TestIPAllowNoEscalation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.mustAccount("a")
	u := e.mustUser(a.ID, "u")
	restricted := keyward.Secret(e.mustKey(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin, IPAllow: []string{"127.0.0.0/8", "2001:db8::/32"}}).Secret)
	free := keyward.Secret(e.mustKey(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin}).Secret)
	userKey := func(allow ...string) keyward.KeyCreate {
		return keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Role: keyward.RoleUser, IPAllow: allow}
	}
	for _, c := range []struct {
		name   string
		caller keyward.Secret
		create keyward.KeyCreate
		want   string
	}{
		{"restricted caller, no list", restricted, userKey(), keyward.EFORBIDDEN},
		{"restricted caller, wider list", restricted, userKey("0.0.0.0/0"), keyward.EFORBIDDEN},
		{"restricted caller, other network", restricted, userKey("10.0.0.0/8"), keyward.EFORBIDDEN},
		{"restricted caller, narrower list", restricted, userKey("127.0.0.1", "2001:db8:1::/48"), ""},
		{"restricted caller, same list", restricted, userKey("127.0.0.0/8"), ""},
		{"unrestricted caller, any list", free, userKey("0.0.0.0/0"), ""},
		{"unrestricted caller, no list", free, userKey(), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			k, err := e.client(c.caller).CreateKey(t.Context(), c.create)
			if k != nil {
				e.remember(k.Secret)
			}
			if got := keyward.ErrorCode(err); got != c.want {
				t.Fatalf("CreateKey: %q (%v), want %q", got, err, c.want)
			}
		})
	}
	t.Run("update", func(t *testing.T) {
		target := e.mustKey(userKey("127.0.0.1"))
		wider := []string{"0.0.0.0/0"}
		if _, err := e.client(restricted).UpdateKey(t.Context(), target.ID, keyward.KeyUpdate{IPAllow: &wider}); keyward.ErrorCode(err) != keyward.EFORBIDDEN {
			t.Fatalf("widening by a restricted caller: %v, want forbidden", err)
		}
		none := []string{}
		k, err := e.client(e.root).UpdateKey(t.Context(), target.ID, keyward.KeyUpdate{IPAllow: &none})
		if err != nil || len(k.IPAllow) != 0 {
			t.Fatalf("root clears the list: %+v, %v", k, err)
		}
	})
	// Rotation hands the caller a new secret with the old key's list: a
	// restricted caller may not rotate a key that works from elsewhere.
	t.Run("rotate", func(t *testing.T) {
		open := e.mustKey(userKey())
		if _, err := e.client(restricted).RotateKey(t.Context(), open.ID, keyward.KeyRotate{}); keyward.ErrorCode(err) != keyward.EFORBIDDEN {
			t.Fatalf("rotating an unrestricted key by a restricted caller: %v, want forbidden", err)
		}
		inside := e.mustKey(userKey("127.0.0.1"))
		k, err := e.client(restricted).RotateKey(t.Context(), inside.ID, keyward.KeyRotate{})
		if err != nil {
			t.Fatalf("rotating a key inside the caller's list: %v", err)
		}
		e.remember(k.Secret)
	})
}
