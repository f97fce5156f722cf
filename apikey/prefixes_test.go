package apikey

import (
	"errors"
	"hash/crc32"
	"regexp"
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

func TestPrefixesCompose(t *testing.T) {
	def := DefaultPrefixes()
	ovk := Prefixes{Root: "ovk_root_", AccountAdmin: "ovk_acct_", User: "ovk_user_", Environments: map[string]string{"staging": "stg"}}
	for _, c := range []struct {
		p            Prefixes
		role         keyward.Role
		env, account string
		want         string
	}{
		{def, keyward.RoleRoot, "", "", "kw_root"},
		{def, keyward.RoleRoot, "live", "", "kw_root"},
		{def, keyward.RoleAccountAdmin, "live", "", "kw_acct"},
		{def, keyward.RoleUser, "live", "", "kw_user"},
		{def, keyward.RoleRoot, "test", "", "kw_test_root"},
		{def, keyward.RoleUser, "test", "", "kw_test_user"},
		{def, keyward.RoleUser, "live", "acme", "acme"},
		{def, keyward.RoleUser, "test", "acme", "acme_test"},
		{def, keyward.RoleUser, "test", "acme_key", "acme_test_key"},
		// The account prefix replaces only the user tier's.
		{def, keyward.RoleAccountAdmin, "test", "acme", "kw_test_acct"},
		// Written with the separator, a prefix is the same prefix.
		{ovk, keyward.RoleRoot, "live", "", "ovk_root"},
		{ovk, keyward.RoleUser, "test", "", "ovk_test_user"},
		{ovk, keyward.RoleAccountAdmin, "staging", "", "ovk_stg_acct"},
	} {
		got, err := c.p.Prefix(c.role, c.env, c.account)
		if err != nil || got != c.want {
			t.Errorf("Prefix(%s, %q, %q) = %q, %v; want %q", c.role, c.env, c.account, got, err, c.want)
		}
		if err := c.p.Validate(); err != nil {
			t.Errorf("Validate(%+v): %v", c.p, err)
		}
	}
	// An environment nobody configured is refused, naming the fix.
	if _, err := def.Prefix(keyward.RoleUser, "staging", ""); keyward.ErrorCode(err) != keyward.EINVALID || !strings.Contains(err.Error(), "key_prefixes.environments") {
		t.Errorf("unconfigured environment: %v, want EINVALID naming key_prefixes.environments", err)
	}
	// An account prefix too long for the segment is refused, not cut.
	if _, err := def.Prefix(keyward.RoleUser, "test", "abcdefghijklmnopqrst"); keyward.ErrorCode(err) != keyward.EINVALID {
		t.Errorf("too long a prefix: %v, want EINVALID", err)
	}
	if got := def.EnvironmentNames(); strings.Join(got, ",") != "live,test" {
		t.Errorf("EnvironmentNames = %v, want live, test", got)
	}
}

func TestPrefixesValidate(t *testing.T) {
	for _, c := range []struct {
		name    string
		p       Prefixes
		setting string
	}{
		{"bad tier prefix", Prefixes{Root: "Root"}, "root"},
		{"tier prefix with a dash", Prefixes{User: "kw-user"}, "user"},
		{"same prefix twice", Prefixes{User: "kw_root"}, "user"},
		{"one begins another", Prefixes{Root: "kw", User: "kw_user"}, "account_admin"},
		{"one begins another, separator written", Prefixes{AccountAdmin: "ovk_", User: "ovk_acct_x_"}, "user"},
		{"environment begins a tier", Prefixes{Root: "kw_test", User: "kw_user"}, "environments.test"},
		{"empty segment collides with live", Prefixes{Environments: map[string]string{"test": ""}}, "root"},
		{"bad environment name", Prefixes{Environments: map[string]string{"Prod": "prod"}}, "environments.Prod"},
		{"bad segment", Prefixes{Environments: map[string]string{"qa": "q-a"}}, "environments.qa"},
		{"segment too long for the format", Prefixes{Environments: map[string]string{"qa": "quality_assurance"}}, "environments.qa"},
	} {
		err := c.p.Validate()
		var pe *PrefixError
		if !errors.As(err, &pe) || pe.Setting != c.setting || pe.Problem == "" {
			t.Errorf("%s: Validate = %v, want a *PrefixError of %s", c.name, err, c.setting)
		}
	}
	// What the rule must not refuse: prefixes that share letters but
	// where no key's beginning begins another's.
	for _, p := range []Prefixes{
		{Root: "kw_user", User: "kw_users"},
		{Root: "a_b", AccountAdmin: "a_bc", User: "a_bcd"},
		{Environments: map[string]string{"live": "live", "staging": "stg"}},
	} {
		if err := p.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", p, err)
		}
	}
}

// TestCheckAccountPrefix: an account's user-key prefix may not make keys
// that begin like another tier's or another environment's, and must still
// be free to share letters with them, or to equal the user tier's own.
func TestCheckAccountPrefix(t *testing.T) {
	for _, c := range []struct {
		p       Prefixes
		refused []string
		allowed []string
	}{
		{Prefixes{},
			[]string{"kw_root", "kw_acct", "kw", "kw_root_x", "kw_test_user", "kw_test"},
			[]string{"acme", "acme_live", "kw_user", "kw_users", "kw_roots", "kwx"}},
		{Prefixes{Root: "ovk_root_", AccountAdmin: "ovk_acct_", User: "ovk_user_"},
			[]string{"ovk_root", "ovk", "ovk_test_acct", "ovk_acct_acme"},
			[]string{"kw_root", "kw_acct", "ovk_user", "ovk_user_acme", "ovkx"}},
	} {
		for _, ap := range c.refused {
			if err := c.p.CheckAccountPrefix(ap); keyward.ErrorCode(err) != keyward.EINVALID || !strings.Contains(err.Error(), "overlaps") {
				t.Errorf("%+v: CheckAccountPrefix(%q) = %v, want EINVALID naming the overlap", c.p, ap, err)
			}
		}
		for _, ap := range c.allowed {
			if err := c.p.CheckAccountPrefix(ap); err != nil {
				t.Errorf("%+v: CheckAccountPrefix(%q) = %v, want nil", c.p, ap, err)
			}
		}
	}
}

// TestPatternsMatchKeys checks the scanning patterns against real keys of
// every tier and environment, and against near-misses.
func TestPatternsMatchKeys(t *testing.T) {
	p := Prefixes{Root: "ovk_root_", AccountAdmin: "ovk_acct_", User: "ovk_user_"}
	patterns, err := p.Patterns()
	if err != nil {
		t.Fatal(err)
	}
	if len(patterns) != 6 || patterns[0].ID != "keyward-live-root" || patterns[5].ID != "keyward-test-user" {
		t.Fatalf("patterns = %+v, want 6 from keyward-live-root to keyward-test-user", patterns)
	}
	res := make([]*regexp.Regexp, len(patterns))
	for i, pt := range patterns {
		res[i] = regexp.MustCompile(pt.Regex)
	}
	for i, pt := range patterns {
		for range 50 {
			s, err := Generate(pt.Prefix)
			if err != nil {
				t.Fatal(err)
			}
			raw := s.Reveal()
			for j, re := range res {
				if got := re.FindString("token=" + raw + "\n"); (got == raw) != (i == j) {
					t.Fatalf("pattern %s on a %s key %q found %q", patterns[j].ID, pt.ID, raw, got)
				}
			}
			// Near-misses: a body one character short or long, the key
			// glued to more word characters, another prefix.
			for _, miss := range []string{raw[:len(raw)-1], raw + "A", "x" + raw, raw + "_x", strings.Replace(raw, pt.Prefix, pt.Prefix+"x", 1)} {
				if res[i].MatchString(miss) {
					t.Errorf("pattern %s matches the near-miss %q", pt.ID, miss)
				}
			}
		}
	}
	// A checksum can only start with 0 to 4: one starting above does not
	// match (and Parse refuses it too).
	s, _ := Generate("ovk_root")
	raw := s.Reveal()
	bad := raw[:len(raw)-ChecksumLen] + "5" + raw[len(raw)-ChecksumLen+1:]
	if res[0].MatchString(bad) {
		t.Errorf("pattern matches %q, whose checksum no CRC32 has", bad)
	}
	if _, ok := Parse(bad); ok {
		t.Errorf("Parse accepts %q", bad)
	}
	// The largest CRC32 starts with the largest character the pattern
	// allows.
	if got := appendChecksum(nil, 0xFFFFFFFF); got[0] != checksumMax {
		t.Errorf("checksum of 2^32-1 = %s, want it to start with %c", got, checksumMax)
	}
	if got := appendChecksum(nil, crc32.ChecksumIEEE([]byte("x"))); got[0] > checksumMax {
		t.Errorf("checksum %s starts above %c", got, checksumMax)
	}
}
