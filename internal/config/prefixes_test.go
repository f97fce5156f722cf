package config

import (
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

func TestKeyPrefixesFromFile(t *testing.T) {
	c, err := ParseConfig(strings.NewReader("key_prefixes:\n  root: ovk_root_\n  account_admin: ovk_acct_\n  user: ovk_user_\n  environments:\n    staging: stg\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	for _, want := range []struct {
		role     keyward.Role
		env, pre string
	}{{keyward.RoleRoot, "live", "ovk_root"}, {keyward.RoleUser, "test", "ovk_test_user"}, {keyward.RoleAccountAdmin, "staging", "ovk_stg_acct"}} {
		if got, err := c.KeyPrefixes.Prefix(want.role, want.env, ""); err != nil || got != want.pre {
			t.Errorf("%s %s prefix = %q, %v; want %q", want.env, want.role, got, err, want.pre)
		}
	}
	// Unset, the defaults apply and are valid.
	if got, _ := Default().KeyPrefixes.Prefix(keyward.RoleUser, "", ""); got != "kw_user" {
		t.Errorf("default user prefix = %q, want kw_user", got)
	}
	_, err = ParseConfig(strings.NewReader("key_prefixes:\n  users: x_user\n"))
	if err == nil || !strings.Contains(err.Error(), "key_prefixes.users is not a keyward setting") {
		t.Errorf("unknown key under key_prefixes: %v", err)
	}
}

// TestKeyPrefixesValidate: a bad block is a startup error naming the
// setting at fault and the fix, on one line.
func TestKeyPrefixesValidate(t *testing.T) {
	for _, c := range []struct {
		yaml, setting, fix string
	}{
		{"key_prefixes:\n  root: kw\n", "key_prefixes.account_admin", "does not begin another"},
		{"key_prefixes:\n  user: Kw-User\n", "key_prefixes.user", "lowercase letter"},
		{"key_prefixes:\n  environments:\n    test: ''\n", "key_prefixes.root", "does not begin another"},
		{"key_prefixes:\n  environments:\n    QA: qa\n", "key_prefixes.environments.QA", "lowercase letter"},
	} {
		cfg, err := ParseConfig(strings.NewReader(c.yaml))
		if err != nil {
			t.Fatalf("%q: %v", c.yaml, err)
		}
		err = cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.setting+": ") || !strings.Contains(err.Error(), c.fix) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: Validate = %v, want one line naming %s and %q", c.yaml, err, c.setting, c.fix)
		}
	}
}
