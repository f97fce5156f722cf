package config

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/abuse"
	"github.com/spf13/pflag"
)

var (
	testPepperBytes = []byte("0123456789abcdef0123456789abcdef")
	testPepperHex   = "hex:" + hex.EncodeToString(testPepperBytes)
)

func TestParseConfigDefaults(t *testing.T) {
	c, err := ParseConfig(strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if c.Listen != "127.0.0.1:8080" || c.Data != "./keyward-data" || c.CacheTTL != d.CacheTTL || c.LogLevel != "info" || c.LogFormat != "text" || c.ShutdownTimeout != d.ShutdownTimeout {
		t.Errorf("defaults = %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestParseConfigFile(t *testing.T) {
	c, err := ParseConfig(strings.NewReader(`
listen: 0.0.0.0:9000
data: /var/lib/keyward
peppers:
  1: "` + testPepperHex + `"
  2: "base64:` + base64.StdEncoding.EncodeToString(testPepperBytes) + `"
cache_ttl: 30s
log_level: debug
log_format: json
shutdown_timeout: 1m
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "0.0.0.0:9000" || c.Data != "/var/lib/keyward" || c.CacheTTL != 30*time.Second ||
		c.LogLevel != "debug" || c.LogFormat != "json" || c.ShutdownTimeout != time.Minute || len(c.Peppers) != 2 {
		t.Errorf("parsed = %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
	raw, err := c.LoadPeppers(slog.New(slog.DiscardHandler), false)
	if err != nil {
		t.Fatal(err)
	}
	if raw[1].Reveal() != string(testPepperBytes) || raw[2].Reveal() != string(testPepperBytes) {
		t.Error("peppers not decoded")
	}
}

func TestParseConfigRejectsUnknownKeys(t *testing.T) {
	_, err := ParseConfig(strings.NewReader("listen: 127.0.0.1:1\nlisten_addr: 0.0.0.0:1\n"))
	if err == nil || !strings.Contains(err.Error(), "listen_addr") || !strings.Contains(err.Error(), "not a keyward setting") {
		t.Errorf("err = %v, want it to name listen_addr as unknown", err)
	}
	if err != nil && strings.Contains(err.Error(), "\n") {
		t.Errorf("error is not one line: %q", err)
	}
}

// load runs Load with a config file holding yaml, env and args.
func load(t *testing.T, yaml string, env map[string]string, args ...string) (*Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.String("config", "", "")
	AddFlags(fs, "listen", "data", "pepper-file", "cache-ttl", "cache-max-bytes", "log-level", "log-format", "shutdown-timeout")
	if yaml != "" {
		path := filepath.Join(t.TempDir(), "keyward.yaml")
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append([]string{"--config", path}, args...)
	}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return Load(mapEnv(env), fs)
}

func TestParseConfigErrorsDoNotQuoteValues(t *testing.T) {
	_, err := ParseConfig(strings.NewReader("peppers: \"hex:abcdef0123\"\n"))
	if err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "hex:") || strings.Contains(err.Error(), "abc") {
		t.Errorf("error quotes the value: %v", err)
	}
}

func TestConfigPrecedence(t *testing.T) {
	yaml := "listen: 127.0.0.1:1001\nlog_level: warn\ncache_ttl: 10s\nlog_format: json\n"
	env := map[string]string{"KEYWARD_LOG_LEVEL": "error", "KEYWARD_CACHE_TTL": "20s"}
	c, err := load(t, yaml, env, "--cache-ttl", "30s")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		setting, got, want, source string
	}{
		{"listen", c.Listen, "127.0.0.1:1001", "file "},             // file only
		{"log_format", c.LogFormat, "json", "file "},                // file only
		{"log_level", c.LogLevel, "error", "env KEYWARD_LOG_LEVEL"}, // env beats file
		{"cache_ttl", c.CacheTTL.String(), "30s", "flag --cache-ttl"},
		{"data", c.Data, "./keyward-data", "default"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.setting, tt.got, tt.want)
		}
		if src := c.Source(tt.setting); !strings.HasPrefix(src, tt.source) {
			t.Errorf("source of %s = %q, want %q...", tt.setting, src, tt.source)
		}
	}
}

func TestConfigFileFromEnvAndMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.yaml")
	os.WriteFile(path, []byte("log_level: debug\n"), 0o600)
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.String("config", "", "")
	c, err := Load(mapEnv(map[string]string{"KEYWARD_CONFIG": path}), fs)
	if err != nil || c.LogLevel != "debug" {
		t.Fatalf("KEYWARD_CONFIG: %v, %+v", err, c)
	}
	_, err = Load(mapEnv(map[string]string{"KEYWARD_CONFIG": path + ".missing"}), fs)
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing config file: err = %v", err)
	}
}

func TestPepperPrecedence(t *testing.T) {
	other := "hex:" + strings.Repeat("ab", 32)
	yaml := "peppers:\n  1: \"" + testPepperHex + "\"\n"

	c, err := load(t, yaml, map[string]string{"KEYWARD_PEPPERS": "1:" + testPepperHex + ",2:" + other})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Peppers) != 2 || c.Source("peppers") != "env KEYWARD_PEPPERS" {
		t.Errorf("env KEYWARD_PEPPERS did not replace the file's peppers: %d, %s", len(c.Peppers), c.Source("peppers"))
	}

	pf := filepath.Join(t.TempDir(), "pepper")
	os.WriteFile(pf, []byte("1:"+testPepperHex+"\n"), 0o600)
	c, err = load(t, yaml, map[string]string{"KEYWARD_PEPPER": other}, "--pepper-file", pf)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Peppers) != 0 || c.PepperFile != pf {
		t.Errorf("--pepper-file did not win: %+v", c)
	}

	_, err = load(t, "", map[string]string{"KEYWARD_PEPPER": other, "KEYWARD_PEPPERS": "1:" + other})
	if err == nil || !strings.Contains(err.Error(), "KEYWARD_PEPPER") {
		t.Errorf("both pepper variables: err = %v", err)
	}
}

func TestValidateNamesSettingAndFix(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		setting string
		fix     string
	}{
		{"listen without port", func(c *Config) { c.Listen = "localhost" }, "listen", "host:port"},
		{"listen bad port", func(c *Config) { c.Listen = "127.0.0.1:99999" }, "listen", "0 to 65535"},
		{"empty data", func(c *Config) { c.Data = " " }, "data", "name the data directory"},
		{"short pepper", func(c *Config) { c.Peppers = map[int]keyward.Secret{1: "hex:00112233"} }, "peppers", "at least 32"},
		{"pepper without encoding", func(c *Config) { c.Peppers = map[int]keyward.Secret{1: "correct horse battery staple and more words"} }, "peppers", "hex:VALUE"},
		{"pepper bad hex", func(c *Config) { c.Peppers = map[int]keyward.Secret{1: "hex:zz"} }, "peppers", "openssl rand"},
		{"pepper version 0", func(c *Config) { c.Peppers = map[int]keyward.Secret{0: keyward.Secret(testPepperHex)} }, "peppers", "positive"},
		{"pepper and pepper file", func(c *Config) {
			c.Peppers = map[int]keyward.Secret{1: keyward.Secret(testPepperHex)}
			c.PepperFile = "/x"
		}, "peppers", "keep one"},
		{"zero cache ttl", func(c *Config) { c.CacheTTL = 0 }, "cache_ttl", "between"},
		{"tiny cache", func(c *Config) { c.CacheMaxBytes = 4096 }, "cache_max_bytes", "at least 1MiB"},
		{"long cache ttl", func(c *Config) { c.CacheTTL = 24 * time.Hour }, "cache_ttl", "revoked"},
		{"unknown log level", func(c *Config) { c.LogLevel = "verbose" }, "log_level", "debug, info, warn or error"},
		{"unknown log format", func(c *Config) { c.LogFormat = "xml" }, "log_format", "text or json"},
		{"zero shutdown timeout", func(c *Config) { c.ShutdownTimeout = 0 }, "shutdown_timeout", "above 0"},
		{"unknown rate limit engine", func(c *Config) { c.RateLimitEngine = "memcached" }, "rate_limit_engine", "use local or redis"},
		{"redis limits without redis", func(c *Config) { c.RateLimitEngine = "redis" }, "rate_limit_engine", "set redis"},
		{"redis credits without redis", func(c *Config) { c.CreditLedger = "redis" }, "credit_ledger", "or use store"},
		{"short brute-force window", func(c *Config) { c.Abuse.BruteForce.Window = 500 * time.Millisecond }, "abuse", "BruteForce.Window"},
		{"bad allow list", func(c *Config) { c.Abuse.AllowList = []string{"10.0.0.0/99"} }, "abuse", "allow_list"},
		{"unknown action", func(c *Config) { c.Abuse.IPSpread.Action = "block_ip" }, "abuse", "IPSpread.Action"},
		{"replicas without PostgreSQL", func(c *Config) { c.StoreReplicas = []string{"postgres://r.internal/k"} }, "store_replicas", "set store to the primary's URL"},
		{"replica not PostgreSQL", func(c *Config) {
			c.Store, c.StoreReplicas = "postgres://p.internal/k", []string{"postgres://r.internal/k", "mysql://r2.internal/k"}
		}, "store_replicas", "entry 2: a URL with scheme \"mysql\" is not a PostgreSQL URL"},
		{"replica is the store", func(c *Config) {
			c.Store, c.StoreReplicas = "postgres://p.internal/k", []string{"postgres://p.internal/k"}
		}, "store_replicas", "list only read replicas"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(c)
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.setting+": ") || !strings.Contains(msg, tt.fix) {
				t.Errorf("error %q does not name %s and the fix %q", msg, tt.setting, tt.fix)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			for _, p := range c.Peppers {
				if strings.Contains(msg, strings.TrimPrefix(p.Reveal(), "hex:")) {
					t.Errorf("error quotes the pepper: %q", msg)
				}
			}
		})
	}
}

// TestStoreReplicas: replicas of a PostgreSQL store are accepted, read
// comma-separated from the environment, and shown without their passwords.
func TestStoreReplicas(t *testing.T) {
	c := Default()
	s := settingByKey(t, "store_replicas")
	if err := s.set(c, "postgres://k:hunter2@r1.internal/k, postgres://r2.internal/k"); err != nil {
		t.Fatal(err)
	}
	if len(c.StoreReplicas) != 2 || c.StoreReplicas[1] != "postgres://r2.internal/k" {
		t.Fatalf("StoreReplicas = %q, want the two URLs", c.StoreReplicas)
	}
	if got := (Shown{Value: s.value(c)}).Text(); strings.Contains(got, "hunter2") || !strings.Contains(got, "r1.internal") {
		t.Errorf("shown as %q: want the replicas without the password", got)
	}
	c.Store = "postgres://p.internal/k"
	if err := c.Validate(); err != nil && strings.Contains(err.Error(), "store_replicas") {
		t.Errorf("Validate refused replicas of a PostgreSQL store: %v", err)
	}
}

// settingByKey returns the setting of key.
func settingByKey(t *testing.T, key string) setting {
	t.Helper()
	for _, s := range settings {
		if s.key == key {
			return s
		}
	}
	t.Fatalf("no setting %q", key)
	return setting{}
}

func TestAbuseConfig(t *testing.T) {
	c, err := ParseConfig(strings.NewReader(`
abuse:
  block_for: 1h
  allow_list: [10.0.0.0/8]
  brute_force: {threshold: 5, window: 30s}
  usage_spike: {enabled: false}
  revoked_key_use: {action: block_ip}
`))
	if err != nil {
		t.Fatal(err)
	}
	ac, err := c.DetectorConfig()
	if err != nil {
		t.Fatal(err)
	}
	if ac.BlockFor != time.Hour || len(ac.AllowList) != 1 || ac.AllowList[0].String() != "10.0.0.0/8" {
		t.Errorf("block_for %v, allow_list %v", ac.BlockFor, ac.AllowList)
	}
	if !ac.BruteForce.Enabled || ac.BruteForce.Threshold != 5 || ac.BruteForce.Window != 30*time.Second {
		t.Errorf("brute force = %+v, want enabled, 5 in 30s", ac.BruteForce)
	}
	if ac.UsageSpike.Enabled || !ac.IPSpread.Enabled || ac.RevokedKeyUse.Action != keyward.AnomalyActionBlockIP {
		t.Errorf("usage spike enabled %v, ip spread enabled %v, revoked key action %q", ac.UsageSpike.Enabled, ac.IPSpread.Enabled, ac.RevokedKeyUse.Action)
	}
	c.Abuse.Disabled = true
	if ac, _ = c.DetectorConfig(); ac.BruteForce.Enabled || ac.IPSpread.Enabled || ac.FailureBurst.Enabled {
		t.Error("abuse.disabled left a rule on")
	}

	// Each rule has only its own settings: brute force has no factor.
	_, err = ParseConfig(strings.NewReader("abuse:\n  brute_force: {threshold: 5, factor: 2}\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2: abuse.brute_force.factor is not a keyward setting") {
		t.Errorf("a setting of another rule: err = %v", err)
	}
	// An explicit zero keeps the default, as an unset setting does.
	c, err = ParseConfig(strings.NewReader("abuse:\n  ip_spread: {factor: 0, windows: 6}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if ac, err = c.DetectorConfig(); err != nil || ac.IPSpread.Factor != abuse.DefaultIPSpreadFactor || ac.IPSpread.Windows != 6 || !ac.IPSpread.Enabled {
		t.Errorf("ip_spread = %+v, %v; want the default factor, 6 windows, enabled", ac.IPSpread, err)
	}
}

func TestValidateReportsEverySetting(t *testing.T) {
	c := Default()
	c.LogLevel, c.LogFormat, c.Listen = "loud", "xml", "nope"
	var ce *Error
	err := c.Validate()
	if !errors.As(err, &ce) || len(ce.Errors) != 3 {
		t.Fatalf("err = %v, want 3 setting errors", err)
	}
}

func TestEnvAndFlagErrorsNameTheSource(t *testing.T) {
	_, err := load(t, "", map[string]string{"KEYWARD_CACHE_TTL": "soon"})
	if err == nil || !strings.Contains(err.Error(), "cache_ttl") || !strings.Contains(err.Error(), "KEYWARD_CACHE_TTL") {
		t.Errorf("err = %v", err)
	}
	_, err = load(t, "", nil, "--log-level", "chatty")
	if err == nil || !strings.Contains(err.Error(), "log_level") || !strings.Contains(err.Error(), "--log-level") {
		t.Errorf("err = %v", err)
	}
}

func TestPepperList(t *testing.T) {
	b64 := "base64:" + base64.RawURLEncoding.EncodeToString(testPepperBytes)
	p, err := ParsePepperList([]string{"# comment", "", "1:" + testPepperHex, " 3:" + b64 + " "}, "pepper_file")
	if err != nil || len(p) != 2 || p[3] != keyward.Secret(b64) {
		t.Fatalf("ParsePepperList = %v, %v", p, err)
	}
	if p, err := ParsePepperList([]string{testPepperHex}, "peppers"); err != nil || p[1] != keyward.Secret(testPepperHex) {
		t.Errorf("a lone unversioned pepper is version 1: %v, %v", p, err)
	}
	for _, bad := range [][]string{
		{testPepperHex, testPepperHex},               // two without versions
		{"1:" + testPepperHex, "1:" + testPepperHex}, // duplicate
		{"-1:" + testPepperHex},
		{"# nothing"},
	} {
		if _, err := ParsePepperList(bad, "peppers"); err == nil {
			t.Errorf("ParsePepperList(%q) accepted", bad)
		} else if strings.Contains(err.Error(), hex.EncodeToString(testPepperBytes)) {
			t.Errorf("error quotes the pepper: %v", err)
		}
	}
}

func TestGeneratedPepperFile(t *testing.T) {
	c := Default()
	c.Data = filepath.Join(t.TempDir(), "data")
	if err := c.PrepareDataDir(true); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	first, err := c.LoadPeppers(log, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 1 || len(first[1].Reveal()) != GeneratedPepperLen {
		t.Fatalf("generated peppers = %d", len(first))
	}
	fi, err := os.Stat(c.DefaultPepperPath())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("pepper file: %v, mode %v", err, fi.Mode())
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "generated") {
		t.Errorf("no warning logged: %s", logs.String())
	}
	if strings.Contains(logs.String(), hex.EncodeToString([]byte(first[1].Reveal()))) {
		t.Error("the log holds the pepper")
	}
	logs.Reset()
	again, err := c.LoadPeppers(log, true)
	if err != nil || again[1] != first[1] {
		t.Fatalf("second load did not reuse the pepper: %v", err)
	}
	if logs.Len() != 0 {
		t.Errorf("second load logged: %s", logs.String())
	}

	// A pepper file others can read is refused, saying how to fix it.
	os.Chmod(c.DefaultPepperPath(), 0o644)
	_, err = c.LoadPeppers(log, true)
	if err == nil || !strings.Contains(err.Error(), "chmod 600 "+c.DefaultPepperPath()) {
		t.Errorf("loose pepper file: err = %v", err)
	}
}

func TestPepperFileSetting(t *testing.T) {
	dir := t.TempDir()
	c := Default()
	c.Data = dir
	c.PepperFile = filepath.Join(dir, "missing")
	if _, err := c.LoadPeppers(slog.New(slog.DiscardHandler), true); err == nil || !strings.Contains(err.Error(), "pepper_file") {
		t.Errorf("missing pepper_file: err = %v", err)
	}
	if _, err := os.Stat(c.PepperFile); err == nil {
		t.Error("a configured pepper_file was generated")
	}
	c.PepperFile = filepath.Join(dir, "short")
	os.WriteFile(c.PepperFile, []byte("1:hex:0011\n"), 0o600)
	if _, err := c.LoadPeppers(slog.New(slog.DiscardHandler), true); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Errorf("short pepper in file: err = %v", err)
	}
	c.PepperFile = filepath.Join(dir, "loose")
	os.WriteFile(c.PepperFile, []byte("1:"+testPepperHex+"\n"), 0o640)
	if _, err := c.LoadPeppers(slog.New(slog.DiscardHandler), true); err == nil || !strings.Contains(err.Error(), "chmod 600 "+c.PepperFile) {
		t.Errorf("group-readable pepper_file: err = %v", err)
	}
}

func TestConfigFilePermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	dir := t.TempDir()
	loadFile := func(content string, mode os.FileMode, env map[string]string) error {
		path := filepath.Join(dir, "keyward.yaml")
		os.Remove(path)
		if err := os.WriteFile(path, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(path, mode) // past the umask
		fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
		fs.String("config", "", "")
		if err := fs.Parse([]string{"--config", path}); err != nil {
			t.Fatal(err)
		}
		_, err := Load(mapEnv(env), fs)
		return err
	}
	path := filepath.Join(dir, "keyward.yaml")
	withPeppers := "peppers:\n  1: \"" + testPepperHex + "\"\n"
	// A config file holding peppers that group or others can read is
	// refused, naming the file and the fix, even when the environment
	// overrides its peppers.
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		for _, env := range []map[string]string{nil, {"KEYWARD_PEPPER": testPepperHex}} {
			err := loadFile(withPeppers, mode, env)
			if err == nil || !strings.Contains(err.Error(), "config: file "+path) || !strings.Contains(err.Error(), "chmod 600 "+path) {
				t.Errorf("peppers in a %04o config file: err = %v", mode, err)
			}
			if err != nil && strings.Contains(err.Error(), hex.EncodeToString(testPepperBytes)) {
				t.Errorf("error shows the pepper: %v", err)
			}
		}
	}
	for _, mode := range []os.FileMode{0o600, 0o400} {
		if err := loadFile(withPeppers, mode, nil); err != nil {
			t.Errorf("peppers in a %04o config file: %v", mode, err)
		}
	}
	// Without peppers a config file may be readable by others.
	if err := loadFile("log_level: debug\n", 0o644, nil); err != nil {
		t.Errorf("config file without peppers, 0644: %v", err)
	}
}

func TestDataDirPermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	// A data directory group or others can reach at all is refused, naming
	// the setting and the fix (fail closed).
	for _, mode := range []os.FileMode{0o777, 0o755, 0o750, 0o710, 0o701} {
		c := Default()
		c.Data = t.TempDir()
		if err := os.Chmod(c.Data, mode); err != nil {
			t.Fatal(err)
		}
		for _, create := range []bool{true, false} {
			err := c.PrepareDataDir(create)
			if err == nil || !strings.HasPrefix(err.Error(), "invalid configuration: data: ") || !strings.Contains(err.Error(), "chmod 700 "+c.Data) {
				t.Errorf("data dir mode %04o (create %v): err = %v", mode, create, err)
			}
		}
	}
	c := Default()
	c.Data = t.TempDir()
	os.Chmod(c.Data, 0o700)
	if err := c.PrepareDataDir(true); err != nil {
		t.Errorf("data dir mode 0700: %v", err)
	}
	// keyward creates a missing data directory with mode 0700.
	c.Data = filepath.Join(t.TempDir(), "new", "data")
	if err := c.PrepareDataDir(true); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(c.Data); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("created data dir: %v, mode %v", err, fi.Mode())
	}
}

// mapEnv is a getenv over env.
func mapEnv(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// TestParseConfigFileMistakes: a mistake in the file is named by line and
// setting, every one of them, without the value.
func TestParseConfigFileMistakes(t *testing.T) {
	_, err := ParseConfig(strings.NewReader("listen: 127.0.0.1:1\ncache_ttl: soon\nabuse:\n  brute_forse: {}\nlisten: 127.0.0.1:2\ngateway:\n  routes:\n    - upstream: [\"hex:abcdef0123\"]\n"))
	for _, want := range []string{
		"line 2: cache_ttl must be a duration such as 30s",
		"line 4: abuse.brute_forse is not a keyward setting",
		"line 5: listen is set twice: keep one",
		"line 8: gateway.routes[0].upstream must be a string",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to say %q", err, want)
		}
	}
	if err != nil && (strings.Contains(err.Error(), "abcdef") || strings.Contains(err.Error(), "soon") || strings.Contains(err.Error(), "\n")) {
		t.Errorf("error quotes a value or spans lines: %q", err)
	}
}

// TestCacheMaxBytes: cache_max_bytes takes bytes or a unit, from the file,
// the environment or a flag; zero (unset) is the engine's default.
func TestCacheMaxBytes(t *testing.T) {
	c, err := load(t, "cache_max_bytes: 2GiB\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.CacheMaxBytes != 2<<30 {
		t.Errorf("cache_max_bytes: 2GiB = %d", c.CacheMaxBytes)
	}
	c, err = load(t, "", map[string]string{"KEYWARD_CACHE_MAX_BYTES": "500000000"}, "--cache-max-bytes", "1.5GB")
	if err != nil {
		t.Fatal(err)
	}
	if c.CacheMaxBytes != 1_500_000_000 || !strings.HasPrefix(c.Source("cache_max_bytes"), "flag --cache-max-bytes") {
		t.Errorf("cache_max_bytes = %d from %s, want 1500000000 from the flag", c.CacheMaxBytes, c.Source("cache_max_bytes"))
	}
	if Default().CacheMaxBytes != 0 {
		t.Error("cache_max_bytes has a default of its own: the engine derives it")
	}
	if _, err := load(t, "cache_max_bytes: lots\n", nil); err == nil || !strings.Contains(err.Error(), "512MiB") {
		t.Errorf("cache_max_bytes: lots: %v, want an error naming the form", err)
	}
}
