package main

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/sqlite"
)

// TestUsageIsCountedAndReported verifies keys against a running server,
// stops it (its last counts are written on the way out), and reads the
// counts back through a second server with keyward report: table, CSV and
// an SVG chart.
func TestUsageIsCountedAndReported(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	env := map[string]string{"KEYWARD_DATA": data}
	s := startServer(t, env)
	root := s.rootKey
	var acme keyward.Account
	s.okJSON(t, root, &acme, "accounts", "create", "--name", "acme")
	var k keyward.CreatedKey
	s.okJSON(t, root, &k, "keys", "create", "--account", acme.ID, "--role", "account_admin")
	for range 3 {
		s.ok(t, root, "verify", k.Secret)
	}
	for range 2 {
		s.fails(t, ExitKeyInvalid, root, "verify", "kw_acct_notakeyatall")
	}
	s.stop(t)

	// The counts are in the store once the server has stopped.
	store, err := sqlite.Open(t.Context(), filepath.Join(data, "keyward.db"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := store.Usage(t.Context(), keyward.UsageFilter{Granularity: keyward.UsageMinute})
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[keyward.Decision]int64{}
	for _, r := range rows {
		if r.KeyID == k.ID || r.KeyID == "" { // the root key's own API calls count too
			counts[r.Code] += r.Count
		}
	}
	if counts[keyward.DecisionValid] != 3 || counts[keyward.DecisionMalformed] != 2 {
		t.Fatalf("usage counted %v for the key and for no key, want 3 VALID and 2 MALFORMED", counts)
	}

	s = startServer(t, env)
	out := s.ok(t, root, "report", "--granularity", "minute", "--key", k.ID)
	if !strings.Contains(out, k.ID) || !strings.Contains(out, "3") {
		t.Errorf("report table:\n%s", out)
	}
	chart := filepath.Join(t.TempDir(), "usage.svg")
	csvOut := s.ok(t, root, "report", "--granularity", "minute", "-o", "csv", "--chart", chart)
	recs, err := csv.NewReader(strings.NewReader(csvOut)).ReadAll()
	if err != nil || len(recs) < 3 || strings.Join(recs[0], ",") != "start,granularity,key_id,account_id,code,count" {
		t.Fatalf("report -o csv = %q (%v)", csvOut, err)
	}
	svg, err := os.ReadFile(chart)
	if err != nil || !strings.HasPrefix(string(svg), "<svg") || !strings.Contains(string(svg), `class="valid"`) || !strings.Contains(string(svg), `class="denied"`) {
		t.Errorf("chart = %.200s (%v)", svg, err)
	}
	var r keyward.UsageReport
	s.okJSON(t, root, &r, "report", "--granularity", "day", "--key", k.ID, "--since", time.Now().Add(-48*time.Hour).UTC().Format(time.RFC3339))
	var valid int64
	for _, row := range r.Items {
		if row.Code == keyward.DecisionValid {
			valid += row.Count
		}
	}
	if valid != 3 {
		t.Errorf("day report has %d VALID, want 3 (the current day is rolled up)", valid)
	}
	s.fails(t, ExitUsage, root, "report", "--granularity", "week")
	s.fails(t, ExitUsage, root, "whoami", "-o", "csv")
}
