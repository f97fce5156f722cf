package e2e

import (
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/keyward/keyward/apikey"
)

// gitleaksVersion is the gitleaks release .ci/run installs
// (TestCIInstallsTools keeps the two equal).
const gitleaksVersion = "v8.30.1"

// TestGitleaksFindsKeys runs the real gitleaks with the configuration
// keyward config scan-patterns --format gitleaks prints: it must report
// every key made with the configured prefixes under the rule of its own
// tier and environment, and none of the near-misses.
func TestGitleaksFindsKeys(t *testing.T) {
	requireBinary(t)
	gitleaks := requireTool(t, "gitleaks", "go install github.com/zricethezav/gitleaks/v8@"+gitleaksVersion,
		filepath.Join(gopathBin(), "gitleaks"))
	dir := t.TempDir()
	conf := filepath.Join(dir, "keyward.yaml")
	writeFile(t, conf, "key_prefixes:\n  root: ovk_root_\n  account_admin: ovk_acct_\n  user: ovk_user_\n  environments:\n    staging: stg\n")
	run := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(binary, append([]string{"config", "scan-patterns"}, args...)...)
		cmd.Env = env("KEYWARD_CONFIG="+conf, "KEYWARD_DATA="+filepath.Join(dir, "data"))
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("keyward config scan-patterns %v: %v", args, err)
		}
		return out
	}
	var patterns []apikey.Pattern
	if err := json.Unmarshal(run("-o", "json"), &patterns); err != nil {
		t.Fatal(err)
	}
	rules := filepath.Join(dir, "gitleaks.toml")
	writeFile(t, rules, string(run("--format", "gitleaks")))

	// One file per pattern with a key of it, and one of near-misses.
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o700); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{} // raw key -> rule id
	var misses strings.Builder
	for _, p := range patterns {
		s, err := apikey.Generate(p.Prefix)
		if err != nil {
			t.Fatal(err)
		}
		raw := s.Reveal()
		want[raw] = p.ID
		writeFile(t, filepath.Join(src, p.ID+".env"), "KEYWARD_API_KEY="+raw+"\n")
		misses.WriteString("short=" + raw[:len(raw)-1] + "\nlong=" + raw + "x\nglued=a" + raw + "\n")
	}
	writeFile(t, filepath.Join(src, "misses.txt"), misses.String())

	report := filepath.Join(dir, "report.json")
	cmd := exec.Command(gitleaks, "dir", "--no-banner", "--config", rules, "--report-format", "json", "--report-path", report, "--exit-code", "0", src)
	cmd.Env = env("HOME=" + dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gitleaks: %v\n%s", err, out)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var findings []struct {
		RuleID, Secret, File string
	}
	if err := json.Unmarshal(b, &findings); err != nil {
		t.Fatalf("gitleaks report: %v\n%s", err, b)
	}
	got := map[string]string{}
	for _, f := range findings {
		if !strings.HasPrefix(f.RuleID, "keyward-") {
			continue // gitleaks' default rules, which the configuration extends
		}
		if filepath.Base(f.File) == "misses.txt" {
			t.Errorf("rule %s reports the near-miss %q", f.RuleID, f.Secret)
			continue
		}
		if prev, ok := got[f.Secret]; ok {
			t.Errorf("key reported twice, by %s and %s", prev, f.RuleID)
		}
		got[f.Secret] = f.RuleID
	}
	for raw, id := range want {
		if got[raw] != id {
			t.Errorf("the %s key (%s) was reported by %q, want %s", id, apikey.Start(raw), got[raw], id)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d keys reported (%v), want %d", len(got), slices.Sorted(maps.Values(got)), len(want))
	}
}
