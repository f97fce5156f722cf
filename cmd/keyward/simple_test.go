package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/server"
	"github.com/keyward/keyward/keystore"
	"github.com/spf13/pflag"
)

// runStdin runs the CLI in process with stdin.
func runStdin(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	m := &Main{Getenv: mapEnv(nil), Stdin: strings.NewReader(stdin), Version: "test"}
	code := m.Run(context.Background(), args, &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func TestKeystoreHash(t *testing.T) {
	const tok = "static-token-!#$%&'*+-.^_|~"
	for _, in := range []string{tok, tok + "\n", tok + "\r\n"} {
		r := runStdin(t, in, "keystore", "hash")
		if r.code != ExitOK || r.stdout != keystore.Digest(tok)+"\n" || r.stderr != "" {
			t.Errorf("hash of %q = exit %d, %q, %q", in, r.code, r.stdout, r.stderr)
		}
	}
	for _, tt := range []struct{ in, want string }{
		{"", "no token on stdin"},
		{"\n", "no token on stdin"},
		{" " + tok, "white space"},
		{tok + " \n", "white space"},
		{tok + "\n\n", "more than one line"},
		{"a\tb", "control characters"},
		{strings.Repeat("x", keystore.MaxTokenLength+10), "longer than"},
	} {
		r := runStdin(t, tt.in, "keystore", "hash")
		line := checkFails(t, r, ExitUsage, []string{"keystore", "hash"})
		if !strings.Contains(line, tt.want) || r.stdout != "" {
			t.Errorf("hash of %q: %q, stdout %q; want %q", tt.in, line, r.stdout, tt.want)
		}
		if strings.TrimSpace(tt.in) != "" && strings.Contains(line, strings.TrimSpace(tt.in)) {
			t.Errorf("the error quotes the token: %q", line)
		}
	}
}

func TestKeystoreCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "keys.yaml")
	writeFile(t, good, "keys:\n  "+keystore.Digest("t1")+": {id: ci, role: user}\n  "+keystore.Digest("t2")+": {id: ops, role: root}\n")
	r := runCLI(t, nil, "keystore", "check", good)
	if r.code != ExitOK || r.stdout != good+": 2 keys: ci, ops\n" {
		t.Errorf("check = %+v", r)
	}
	empty := filepath.Join(dir, "empty.yaml")
	writeFile(t, empty, "keys: {}\n")
	line := checkFails(t, runCLI(t, nil, "keystore", "check", empty), ExitConfig, nil)
	for _, w := range []string{"keystore: keystore " + empty + ": line 1: keys is empty", "omit the keystore setting", "(yaml keystore, env KEYWARD_KEYSTORE, flag --keystore)"} {
		if !strings.Contains(line, w) {
			t.Errorf("check of an empty keystore: %q, want %q", line, w)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// loadSimple loads the config from env and args as the gateway would, then
// the simple modes.
func loadSimple(t *testing.T, env map[string]string, args ...string) (keyward.KeyVerifier, string, error) {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	config.AddFlags(fs, "listen", "keystore", "dev")
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(mapEnv(env), fs)
	if err != nil {
		return nil, "", err
	}
	var logs bytes.Buffer
	v, err := server.LoadSimpleModes(cfg, mapEnv(env), cfg.Listen, slog.New(slog.NewTextHandler(&logs, nil)))
	return v, logs.String(), err
}

func TestLoadSimpleModes(t *testing.T) {
	t.Chdir(t.TempDir()) // no ./keyward.yaml
	keys := filepath.Join(t.TempDir(), "keys.yaml")
	writeFile(t, keys, "keys:\n  "+keystore.Digest("static-token")+": {id: ci, role: user}\n")
	const legacy = "legacy-admin-key-0123456789"
	verify := func(t *testing.T, v keyward.KeyVerifier, key string) string {
		t.Helper()
		res, err := v.VerifyKey(context.Background(), keyward.VerifyRequest{Key: key})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Valid {
			return string(res.Code)
		}
		return res.Identity.KeyID
	}

	t.Run("nothing configured", func(t *testing.T) {
		v, _, err := loadSimple(t, nil)
		if v != nil || err != nil {
			t.Errorf("= %v, %v", v, err)
		}
	})
	t.Run("keystore and legacy key", func(t *testing.T) {
		v, logs, err := loadSimple(t, map[string]string{config.EnvAdminAPIKey: legacy}, "--keystore", keys)
		if err != nil {
			t.Fatal(err)
		}
		if got := verify(t, v, "static-token"); got != "ci" {
			t.Errorf("static token = %s", got)
		}
		if got := verify(t, v, legacy); got != keystore.LegacyKeyID {
			t.Errorf("legacy key = %s", got)
		}
		if got := verify(t, v, "other"); got != "NOT_FOUND" {
			t.Errorf("other key = %s", got)
		}
		if !strings.Contains(logs, "keystore loaded") || strings.Contains(logs, legacy) {
			t.Errorf("logs:\n%s", logs)
		}
	})
	t.Run("short legacy key warns", func(t *testing.T) {
		_, logs, err := loadSimple(t, map[string]string{config.EnvAdminAPIKey: "short"})
		if err != nil || !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "shorter than 16 characters") || strings.Contains(logs, "short ") {
			t.Errorf("err %v, logs:\n%s", err, logs)
		}
	})
	t.Run("dev mode on loopback", func(t *testing.T) {
		v, logs, err := loadSimple(t, map[string]string{"KEYWARD_DEV_MODE": "true"})
		if err != nil {
			t.Fatal(err)
		}
		if got := verify(t, v, ""); got != keystore.DevKeyID || !strings.Contains(logs, "DEV MODE") {
			t.Errorf("dev mode: %s, logs:\n%s", got, logs)
		}
	})

	for _, tt := range []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"dev mode on all interfaces", nil, []string{"--dev", "--listen", "0.0.0.0:8080"},
			[]string{"dev_mode: dev mode (dev_mode, --dev)", "loopback", "127.0.0.1:PORT", "(yaml dev_mode, env KEYWARD_DEV_MODE, flag --dev)"}},
		{"dev mode with the gateway on all interfaces", map[string]string{"KEYWARD_DEV_MODE": "true", "KEYWARD_GATEWAY_LISTEN": "0.0.0.0:9000"}, nil,
			[]string{"dev_mode:", `listen is "0.0.0.0:9000"`}},
		{"dev mode with empty host", map[string]string{"KEYWARD_DEV_MODE": "1", "KEYWARD_LISTEN": ":8080"}, nil, []string{"dev_mode:", "loopback"}},
		{"dev mode not a boolean", map[string]string{"KEYWARD_DEV_MODE": "yes please"}, nil, []string{"dev_mode: KEYWARD_DEV_MODE \"yes please\" is not a boolean"}},
		{"dev mode with keystore", nil, []string{"--dev", "--keystore", keys}, []string{"dev_mode: dev mode lets every request through, so keystore"}},
		{"dev mode with legacy key", map[string]string{config.EnvAdminAPIKey: legacy}, []string{"--dev"}, []string{"dev mode lets every request through, so KEYWARD_ADMIN_API_KEY"}},
		{"missing keystore", nil, []string{"--keystore", filepath.Join(t.TempDir(), "nope.yaml")}, []string{"keystore: file ", "nope.yaml does not exist: create it", "unset keystore"}},
		{"blank keystore", map[string]string{"KEYWARD_KEYSTORE": " "}, nil, []string{"keystore: is blank"}},
		{"legacy key with a newline", map[string]string{config.EnvAdminAPIKey: legacy + "\n"}, nil, []string{"KEYWARD_ADMIN_API_KEY: the legacy admin key cannot be presented"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v, _, err := loadSimple(t, tt.env, tt.args...)
			if err == nil || v != nil {
				t.Fatalf("= %v, %v", v, err)
			}
			if _, ok := err.(*config.Error); !ok {
				t.Errorf("error is %T, want *config.Error", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), legacy) {
				t.Errorf("error reveals the legacy key: %v", err)
			}
		})
	}
}
