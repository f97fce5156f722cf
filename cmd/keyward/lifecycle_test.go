package main

import (
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/lifecycle"
)

func TestJobsRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // created private
	env := map[string]string{"KEYWARD_DATA": dir, "KEYWARD_LOG_LEVEL": "error"}
	r := runCLI(t, env, "jobs", "run", "-o", "json")
	if r.code != ExitOK {
		t.Fatalf("jobs run: exit %d, stderr %s", r.code, r.stderr)
	}
	var results []lifecycle.Result
	if err := json.Unmarshal([]byte(r.stdout), &results); err != nil {
		t.Fatalf("jobs run -o json: %v\n%s", err, r.stdout)
	}
	if len(results) != len(lifecycle.Jobs) {
		t.Fatalf("jobs run ran %d jobs, want %d: %s", len(results), len(lifecycle.Jobs), r.stdout)
	}
	for i, res := range results {
		if res.Job != lifecycle.Jobs[i] || !res.Ran {
			t.Errorf("result %d = %+v, want job %s run", i, res, lifecycle.Jobs[i])
		}
	}
	r = runCLI(t, env, "jobs", "run", "--job", "nightly")
	if r.code != ExitUsage || !strings.Contains(r.stderr, "use one of expiry, rotation, cleanup, refill") {
		t.Errorf("jobs run --job nightly: exit %d, stderr %s", r.code, r.stderr)
	}
	r = runCLI(t, env, "jobs", "run", "--job", "expiry")
	if r.code != ExitOK || !strings.Contains(r.stdout, "expiry") {
		t.Errorf("jobs run --job expiry: exit %d, stdout %s, stderr %s", r.code, r.stdout, r.stderr)
	}
}

// TestUsageRetention: the retention of the usage block (checked in
// internal/config) reaches the aggregator: a start applies it at once.
func TestUsageRetention(t *testing.T) {
	old := keyward.UsageRow{Granularity: keyward.UsageMinute, Start: time.Now().Add(-5 * time.Hour), KeyID: "key_1", Code: keyward.DecisionValid, Count: 1}
	for _, c := range []struct {
		retention time.Duration
		kept      bool
	}{{0, true}, {3 * time.Hour, false}} {
		store := keywardtest.NewSQLiteStore(t)
		if err := store.AddUsage(t.Context(), []keyward.UsageRow{old}); err != nil {
			t.Fatal(err)
		}
		_, stop := startUsage(store, config.Usage{MinuteRetention: c.retention}, slog.New(slog.DiscardHandler))
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		rows, err := store.Usage(t.Context(), keyward.UsageFilter{Granularity: keyward.UsageMinute})
		if err != nil {
			t.Fatal(err)
		}
		if (len(rows) == 1) != c.kept {
			t.Errorf("minute retention %s: %d minute rows of 5h ago left, want kept=%v", c.retention, len(rows), c.kept)
		}
	}
}
