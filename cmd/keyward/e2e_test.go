package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/keywardtest"
)

// keywardBinary is the keyward binary TestMain builds once for the
// end-to-end tests; binary is its path, "" when they cannot run
// (requireBinary says why).
var (
	keywardBinary *keywardtest.Binary
	binary        string
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(func() int {
		keywardBinary = keywardtest.BuildBinary()
		defer keywardBinary.Remove()
		binary = keywardBinary.Path
		return m.Run()
	}())
}

func requireBinary(t *testing.T) {
	t.Helper()
	keywardBinary.Require(t)
}

// baseEnv is the test process's environment without KEYWARD_ variables,
// plus env.
func baseEnv(env ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KEYWARD_") {
			out = append(out, kv)
		}
	}
	return append(out, env...)
}

// proc is a running "keyward serve".
type proc struct {
	cmd    *exec.Cmd
	stdout *keywardtest.Lines
	stderr *keywardtest.Lines // JSON log lines
	url    string
	done   chan error
}

// startBinary runs "keyward serve" on port 0, with args added, and waits
// for its "listening" log line, which carries the address it bound.
func startBinary(t *testing.T, data string, args ...string) *proc {
	t.Helper()
	return startBinaryWith(t, data, baseEnv(), args...)
}

// startBinaryWith is startBinary with the environment env.
func startBinaryWith(t *testing.T, data string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{stdout: keywardtest.NewLines(), stderr: keywardtest.NewLines(), done: make(chan error, 1)}
	args = append([]string{"serve", "--listen", "127.0.0.1:0", "--data", data, "--log-format", "json", "--log-level", "debug"}, args...)
	p.cmd = exec.Command(binary, args...)
	p.cmd.Env = env
	p.cmd.Dir = t.TempDir()
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	line := p.stderr.WaitLine(t, `the "listening" log line`, nil, func(l string) bool {
		return strings.Contains(l, `"msg":"listening"`)
	})
	var rec struct{ Addr string }
	if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Addr == "" {
		t.Fatalf("cannot read the address from %q: %v", line, err)
	}
	p.url = "http://" + rec.Addr
	return p
}

// stop sends SIGTERM and requires a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("serve did not exit cleanly after SIGTERM: %v\n%s", err, p.stderr)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("serve did not exit after SIGTERM:\n%s", p.stderr)
	}
	if !strings.Contains(p.stderr.String(), `"msg":"keyward stopped"`) {
		t.Errorf("no clean stop logged:\n%s", p.stderr)
	}
}

// runBinary runs the CLI binary against url with apiKey.
func runBinary(t *testing.T, url, apiKey string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = baseEnv("KEYWARD_URL="+url, "KEYWARD_API_KEY="+apiKey)
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func binaryJSON(t *testing.T, url, apiKey string, out any, args ...string) {
	t.Helper()
	r := runBinary(t, url, apiKey, append(args, "-o", "json")...)
	if r.code != 0 {
		t.Fatalf("keyward %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	if err := json.Unmarshal([]byte(r.stdout), out); err != nil {
		t.Fatalf("keyward %s: %v\n%s", strings.Join(args, " "), err, r.stdout)
	}
}

// verifyHTTP calls POST /v1/keys/verify as a service would, with curl's
// equivalent of a plain JSON request.
func verifyHTTP(t *testing.T, url, callerKey, key string, perms ...string) keyward.VerifyResult {
	t.Helper()
	body, _ := json.Marshal(keyward.VerifyRequest{Key: key, Permissions: perms})
	req, _ := http.NewRequest("POST", url+"/v1/keys/verify", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+callerKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res keyward.VerifyResult
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&res) != nil {
		t.Fatalf("verify: HTTP %s", resp.Status)
	}
	return res
}

func TestEndToEnd(t *testing.T) {
	requireBinary(t)
	data := filepath.Join(t.TempDir(), "data")

	// First start: the root key is printed once, on its own line.
	p := startBinary(t, data)
	line := p.stdout.WaitLine(t, "the root key line", nil, func(l string) bool { return strings.HasPrefix(l, "root key: ") })
	root := strings.TrimPrefix(line, "root key: ")
	if prefix, ok := apikey.Parse(root); !ok || prefix != apikey.PrefixRoot {
		t.Fatalf("root key line %q", line)
	}
	resp, err := http.Get(p.url + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %v %v", resp, err)
	}
	resp.Body.Close()

	// Accounts, users and keys of each tier with the CLI binary.
	var acc keyward.Account
	var usr keyward.User
	var admin, user keyward.CreatedKey
	binaryJSON(t, p.url, root, &acc, "accounts", "create", "--name", "acme")
	binaryJSON(t, p.url, root, &usr, "users", "create", "--account", acc.ID, "--name", "alice")
	binaryJSON(t, p.url, root, &admin, "keys", "create", "--account", acc.ID, "--role", "account_admin",
		"--permission", "keys:verify", "--permission", "memories:read")
	binaryJSON(t, p.url, admin.Secret, &user, "keys", "create", "--account", acc.ID, "--user", usr.ID,
		"--permission", "memories:read")

	// Verify over HTTP with the admin key, as a service would.
	if res := verifyHTTP(t, p.url, admin.Secret, user.Secret, "memories:read"); !res.Valid || res.KeyID != user.ID {
		t.Fatalf("verify user key = %+v", res)
	}
	if res := verifyHTTP(t, p.url, root, admin.Secret); !res.Valid {
		t.Fatalf("verify admin key = %+v", res)
	}
	r := runBinary(t, p.url, admin.Secret, "verify", "kw_user_bogus")
	if r.code != ExitKeyInvalid || !strings.Contains(r.stdout, "MALFORMED") {
		t.Errorf("verify bogus: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = runBinary(t, p.url, "", "whoami")
	checkFails(t, r, ExitUnauthorized, []string{"whoami"})

	// SIGTERM: clean exit; the usage batch is flushed on the way out.
	p.stop(t)
	first := p

	// Restart: no root key printed, keys still verify, last_used_at kept.
	p = startBinary(t, data)
	if res := verifyHTTP(t, p.url, admin.Secret, user.Secret); !res.Valid {
		t.Errorf("after restart, user key = %s", res.Code)
	}
	var k keyward.Key
	binaryJSON(t, p.url, root, &k, "keys", "get", user.ID)
	if k.LastUsedAt == nil {
		t.Errorf("last_used_at of the verified key was not flushed at shutdown: %+v", k)
	}
	p.stop(t)
	if strings.Contains(p.stdout.String(), "root key") {
		t.Errorf("second start printed the root key: %q", p.stdout)
	}

	// Offline bootstrap refuses a store that has a root key.
	r = runBinary(t, "", "", "bootstrap", "--data", data)
	if msg := checkFails(t, r, ExitConflict, []string{"bootstrap"}); !strings.Contains(msg, "already exists") || r.stdout != "" {
		t.Errorf("bootstrap on a bootstrapped store: %q %q", msg, r.stdout)
	}

	// Neither run logged a key or the generated pepper.
	pepperText, err := os.ReadFile(filepath.Join(data, "pepper"))
	if err != nil {
		t.Fatal(err)
	}
	peppers, err := config.ParsePepperList(strings.Split(string(pepperText), "\n"), "pepper")
	if err != nil {
		t.Fatal(err)
	}
	pepper, err := config.DecodePepper(peppers[1])
	if err != nil || len(pepper) != config.GeneratedPepperLen {
		t.Fatalf("cannot read the generated pepper: %v", err)
	}
	forms := map[string]string{}
	for _, f := range pepperForms(pepper) {
		forms[f] = "the pepper"
	}
	for _, s := range []string{root, admin.Secret, user.Secret} {
		for _, f := range keyForms(s) {
			forms[f] = "a raw key"
		}
	}
	assertNoSecrets(t, "first run's log", first.stderr.String(), forms)
	assertNoSecrets(t, "second run's log", p.stderr.String(), forms)
}

func TestEndToEndBootstrap(t *testing.T) {
	requireBinary(t)
	data := filepath.Join(t.TempDir(), "data")
	r := runBinary(t, "", "", "bootstrap", "--data", data)
	key := strings.TrimSpace(r.stdout)
	if _, ok := apikey.Parse(key); r.code != 0 || !ok {
		t.Fatalf("bootstrap: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	fi, err := os.Stat(filepath.Join(data, "pepper"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("generated pepper: %v %v", err, fi)
	}
	p := startBinary(t, data)
	var id keyward.Identity
	binaryJSON(t, p.url, key, &id, "whoami")
	if id.Role != keyward.RoleRoot {
		t.Errorf("whoami = %+v", id)
	}
	p.stop(t)
	if p.stdout.String() != "" {
		t.Errorf("serve after bootstrap printed %q", p.stdout)
	}
}
