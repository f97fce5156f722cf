package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// writeConfig writes a keyward.yaml (mode 0600) and returns its path.
func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keyward.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestConfigScanPatterns: the printed regexes, in each format, match keys
// generated with the configured prefixes of their own tier and environment
// and nothing else.
func TestConfigScanPatterns(t *testing.T) {
	path := writeConfig(t, "key_prefixes:\n  root: ovk_root_\n  account_admin: ovk_acct_\n  user: ovk_user_\n  environments:\n    staging: stg\n")
	env := map[string]string{"KEYWARD_CONFIG": path, "KEYWARD_DATA": filepath.Join(t.TempDir(), "data")}
	run := func(args ...string) string {
		t.Helper()
		r := runCLI(t, env, append([]string{"config", "scan-patterns"}, args...)...)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("config scan-patterns %v: exit %d, stderr %q", args, r.code, r.stderr)
		}
		return r.stdout
	}
	var patterns []apikey.Pattern
	if err := json.Unmarshal([]byte(run("-o", "json")), &patterns); err != nil {
		t.Fatal(err)
	}
	if len(patterns) != 9 {
		t.Fatalf("%d patterns, want 3 tiers x 3 environments: %+v", len(patterns), patterns)
	}
	regexes := strings.Split(strings.TrimSuffix(run("--format", "regex"), "\n"), "\n")
	var gitleaks []string
	for _, line := range strings.Split(run("--format", "gitleaks"), "\n") {
		if re, ok := strings.CutPrefix(line, "regex = '''"); ok {
			gitleaks = append(gitleaks, strings.TrimSuffix(re, "'''"))
		}
	}
	table := run()
	for i, p := range patterns {
		if regexes[i] != p.Regex || gitleaks[i] != p.Regex || !strings.Contains(table, p.ID) {
			t.Fatalf("pattern %s: regex format %q, gitleaks %q, want %q in every format", p.ID, regexes[i], gitleaks[i], p.Regex)
		}
	}
	if p := patterns[5]; p.ID != "keyward-staging-user" || p.Prefix != "ovk_stg_user" || p.Environment != "staging" || p.Role != keyward.RoleUser {
		t.Errorf("sixth pattern = %+v, want the staging user one (live first, then by name)", p)
	}
	for i, p := range patterns {
		re := regexp.MustCompile(regexes[i])
		for range 20 {
			s, err := apikey.Generate(p.Prefix)
			if err != nil {
				t.Fatal(err)
			}
			raw := s.Reveal()
			for j, q := range patterns {
				if got := regexp.MustCompile(q.Regex).MatchString("export TOKEN=" + raw + ";"); got != (i == j) {
					t.Fatalf("pattern %s on a %s key: match %t", q.ID, p.ID, got)
				}
			}
			for _, miss := range []string{raw[:len(raw)-1], raw + "x", "a" + raw, strings.ToUpper(raw[:3]) + raw[3:]} {
				if re.MatchString(miss) {
					t.Errorf("pattern %s matches the near-miss %q", p.ID, miss)
				}
			}
		}
	}

	// A bad --format is a usage error; bad prefixes fail as the server
	// would, naming the setting.
	checkFails(t, runCLI(t, env, "config", "scan-patterns", "--format", "trufflehog"), ExitUsage, []string{"config", "scan-patterns"})
	bad := map[string]string{"KEYWARD_CONFIG": writeConfig(t, "key_prefixes:\n  root: ovk\n  account_admin: ovk_acct\n"), "KEYWARD_DATA": env["KEYWARD_DATA"]}
	if msg := checkFails(t, runCLI(t, bad, "config", "scan-patterns"), ExitConfig, []string{"config", "scan-patterns"}); !strings.Contains(msg, "key_prefixes.account_admin") {
		t.Errorf("overlapping prefixes: %q, want it to name key_prefixes.account_admin", msg)
	}
}

// TestKeysEnvironment: keys create --environment, keys list --environment
// and verify --environment against a real server with configured
// prefixes.
func TestKeysEnvironment(t *testing.T) {
	path := writeConfig(t, "peppers:\n  1: \""+testPepperHex+"\"\nkey_prefixes:\n  root: ovk_root_\n  account_admin: ovk_acct_\n  user: ovk_user_\n")
	s := startServer(t, map[string]string{"KEYWARD_CONFIG": path})
	if !strings.HasPrefix(s.rootKey, "ovk_root_") {
		t.Fatalf("the bootstrap root key starts %q, want ovk_root_", apikey.Start(s.rootKey))
	}
	var acme keyward.Account
	s.okJSON(t, s.rootKey, &acme, "accounts", "create", "--name", "acme")
	var test, live keyward.CreatedKey
	s.okJSON(t, s.rootKey, &test, "keys", "create", "--account", acme.ID, "--role", "account_admin", "--environment", "test")
	s.okJSON(t, s.rootKey, &live, "keys", "create", "--account", acme.ID, "--role", "account_admin")
	if test.Environment != "test" || !strings.HasPrefix(test.Secret, "ovk_test_acct_") || live.Environment != "live" || !strings.HasPrefix(live.Secret, "ovk_acct_") {
		t.Fatalf("created %s %q and %s %q", test.Environment, test.Start, live.Environment, live.Start)
	}
	var list keyward.KeyList
	s.okJSON(t, s.rootKey, &list, "keys", "list", "--environment", "test")
	if len(list.Items) != 1 || list.Items[0].ID != test.ID {
		t.Errorf("keys list --environment test = %d keys, want only %s", len(list.Items), test.ID)
	}
	if out := s.ok(t, s.rootKey, "keys", "get", test.ID); !strings.Contains(out, "environment:") || !strings.Contains(out, "test") {
		t.Errorf("keys get does not show the environment:\n%s", out)
	}
	s.ok(t, s.rootKey, "verify", test.Secret, "--environment", "test")
	if msg := s.fails(t, ExitKeyInvalid, s.rootKey, "verify", test.Secret, "--environment", "live"); !strings.Contains(msg, "WRONG_ENVIRONMENT") {
		t.Errorf("verify of a test key for live: %q", msg)
	}
	if msg := s.fails(t, ExitUsage, s.rootKey, "keys", "create", "--role", "root", "--environment", "staging"); !strings.Contains(msg, "key_prefixes.environments") {
		t.Errorf("an unconfigured environment: %q", msg)
	}
}
