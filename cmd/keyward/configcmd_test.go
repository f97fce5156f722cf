package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/verify"
)

// TestConfigFilePermissionsExitCode: config check refuses a config file
// holding peppers that others can read with the configuration exit code
// (the refusal itself is tested in internal/config).
// effectiveConfig decodes what config check -o json prints.
type effectiveConfig struct {
	Listen                string                 `json:"listen"`
	Data                  string                 `json:"data"`
	Database              string                 `json:"database"`
	Peppers               map[int]keyward.Secret `json:"peppers"`
	PepperSource          string                 `json:"pepper_source"`
	PepperCurrent         int                    `json:"pepper_current_version"`
	CacheTTL              string                 `json:"cache_ttl"`
	MaxStale              string                 `json:"max_stale"`
	CacheMaxBytes         int64                  `json:"cache_max_bytes"`
	Store                 string                 `json:"store"`
	StoreReplicas         []string               `json:"store_replicas"`
	Redis                 string                 `json:"redis"`
	BusChannel            string                 `json:"bus_channel"`
	BusDownCacheTTL       string                 `json:"bus_down_cache_ttl"`
	LogLevel              string                 `json:"log_level"`
	LogFormat             string                 `json:"log_format"`
	ShutdownTimeout       string                 `json:"shutdown_timeout"`
	GatewayListen         string                 `json:"gateway_listen"`
	TrustedProxies        []string               `json:"trusted_proxies"`
	WWWAuthenticateScheme string                 `json:"www_authenticate_scheme"`
	WWWAuthenticateRealm  string                 `json:"www_authenticate_realm"`
	AgentHeaders          []string               `json:"agent_headers"`
	GatewayRoutes         int                    `json:"gateway_routes"`
	Keystore              string                 `json:"keystore"`
	DevMode               bool                   `json:"dev_mode"`
	AdminAPIKey           keyward.Secret         `json:"admin_api_key,omitempty"`
	Sources               map[string]string      `json:"sources"`
}

func TestConfigFilePermissionsExitCode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "keyward.yaml")
	withPeppers := "peppers:\n  1: \"" + testPepperHex + "\"\n"
	// The exit code is the configuration one.
	os.WriteFile(path, []byte(withPeppers), 0o644)
	os.Chmod(path, 0o644) // past the umask
	r := runCLI(t, map[string]string{"KEYWARD_CONFIG": path, "KEYWARD_DATA": filepath.Join(dir, "data")}, "config", "check")
	if msg := checkFails(t, r, ExitConfig, []string{"config", "check"}); !strings.Contains(msg, "chmod 600 "+path) {
		t.Errorf("config check on a 0644 config file with peppers: %q", msg)
	}
}

// TestDefaultsFollowCacheTTL: a short cache_ttl alone is a valid
// configuration (it was refused because the default bus_down_cache_ttl
// exceeded it): bus_down_cache_ttl and max_stale follow cache_ttl unless
// set; set, they are checked against it, and the example an error gives is
// itself accepted.
func TestDefaultsFollowCacheTTL(t *testing.T) {
	env := map[string]string{"KEYWARD_PEPPER": testPepperHex, "KEYWARD_DATA": filepath.Join(t.TempDir(), "data")}
	effective := func(args ...string) effectiveConfig {
		t.Helper()
		r := runCLI(t, env, append([]string{"config", "check", "-o", "json"}, args...)...)
		if r.code != 0 {
			t.Fatalf("config check %v: exit %d, %s", args, r.code, r.stderr)
		}
		var eff effectiveConfig
		if err := json.Unmarshal([]byte(r.stdout), &eff); err != nil {
			t.Fatal(err)
		}
		return eff
	}
	for _, tc := range []struct {
		args              []string
		busDown, maxStale string
	}{
		{nil, "5s", "30s"},
		{[]string{"--cache-ttl", "3s"}, "3s", "3s"},
		{[]string{"--cache-ttl", "1m"}, "5s", "1m0s"},
		{[]string{"--cache-ttl", "3s", "--max-stale", "2m", "--bus-down-cache-ttl", "2s"}, "2s", "2m0s"},
	} {
		eff := effective(tc.args...)
		if eff.BusDownCacheTTL != tc.busDown || eff.MaxStale != tc.maxStale {
			t.Errorf("%v: bus_down_cache_ttl %s, max_stale %s; want %s, %s", tc.args, eff.BusDownCacheTTL, eff.MaxStale, tc.busDown, tc.maxStale)
		}
	}
	for _, tc := range []struct {
		setting string
		args    []string
	}{
		{"bus_down_cache_ttl", []string{"--cache-ttl", "3s", "--bus-down-cache-ttl", "5s"}},
		{"max_stale", []string{"--cache-ttl", "3s", "--max-stale", "2s"}},
		{"max_stale", []string{"--max-stale", "48h"}},
	} {
		r := runCLI(t, env, append([]string{"config", "check"}, tc.args...)...)
		msg := checkFails(t, r, ExitConfig, []string{"config", "check"})
		_, example, ok := strings.Cut(msg, "e.g. ")
		if !strings.Contains(msg, tc.setting+": ") || !ok {
			t.Errorf("%v: %q does not name %s with an example", tc.args, msg, tc.setting)
			continue
		}
		example = strings.Fields(example)[0]
		fixed := append(slices.Clone(tc.args[:len(tc.args)-1]), example)
		effective(fixed...) // the example is valid
	}
}

// TestConfigCheckShowsCacheMaxBytes: config check reports the bound the
// engine will use, set or derived.
func TestConfigCheckShowsCacheMaxBytes(t *testing.T) {
	env := map[string]string{"KEYWARD_PEPPER": testPepperHex, "KEYWARD_DATA": filepath.Join(t.TempDir(), "data")}
	for _, tc := range []struct {
		args []string
		want int64
	}{
		{nil, verify.DefaultMaxBytes()},
		{[]string{"--cache-max-bytes", "2GiB"}, 2 << 30},
	} {
		r := runCLI(t, env, append([]string{"config", "check", "-o", "json"}, tc.args...)...)
		if r.code != 0 {
			t.Fatalf("config check %v: exit %d, %s", tc.args, r.code, r.stderr)
		}
		var eff effectiveConfig
		if err := json.Unmarshal([]byte(r.stdout), &eff); err != nil {
			t.Fatal(err)
		}
		if eff.CacheMaxBytes != tc.want {
			t.Errorf("config check %v: cache_max_bytes %d, want %d", tc.args, eff.CacheMaxBytes, tc.want)
		}
	}
}

func TestConfigCheckShowsStoreReplicasWithoutPasswords(t *testing.T) {
	env := map[string]string{
		"KEYWARD_PEPPER":         testPepperHex,
		"KEYWARD_MASTER_KEYS":    "1:" + testPepperHex,
		"KEYWARD_STORE":          "postgres://keyward:primarypw@db.internal/keyward",
		"KEYWARD_STORE_REPLICAS": "postgres://keyward:replicapw@r1.internal/keyward,postgres://r2.internal/keyward",
	}
	r := runCLI(t, env, "config", "check", "-o", "json")
	if r.code != 0 {
		t.Fatalf("config check: exit %d, %s", r.code, r.stderr)
	}
	var eff effectiveConfig
	if err := json.Unmarshal([]byte(r.stdout), &eff); err != nil {
		t.Fatal(err)
	}
	want := []string{"postgres://keyward:xxxxx@r1.internal/keyward", "postgres://r2.internal/keyward"}
	if !slices.Equal(eff.StoreReplicas, want) {
		t.Errorf("store_replicas = %q, want %q", eff.StoreReplicas, want)
	}
	if strings.Contains(r.stdout, "replicapw") {
		t.Errorf("config check shows a replica's password:\n%s", r.stdout)
	}
}
