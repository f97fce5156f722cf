package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

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
