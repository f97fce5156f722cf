package providertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/provider"
)

// N8nReadyTimeout bounds the wait for a started n8n to finish its
// migrations (a fresh start takes about 8 s).
const N8nReadyTimeout = 120 * time.Second

// N8n is a running n8n with its owner set up, started by StartN8n for one
// test.
type N8n struct {
	// URL is n8n's base URL, such as http://127.0.0.1:41234, without a
	// trailing slash.
	URL string
	// Email and Password are the owner's.
	Email    string
	Password string
}

// Connection returns the provider connection of n's owner, with timeout
// (provider.DefaultTimeout when 0).
func (n *N8n) Connection(timeout time.Duration) provider.Connection {
	return provider.Connection{BaseURL: n.URL, Username: n.Email, Password: keyward.Secret(n.Password), Timeout: timeout}
}

// N8nBinary returns the n8n command provisioned by e2e/provision under
// $KEYWARD_E2E_CACHE (default $HOME/.cache/keyward-e2e). When it is absent
// the test is skipped with a message saying how to provision it, or fails
// when CI is true.
func N8nBinary(t testing.TB) string {
	t.Helper()
	cache := cacheDir(t, n8nMissing)
	bin := filepath.Join(cache, "n8n", "node_modules", ".bin", "n8n")
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() {
		n8nMissing(t, "no n8n command at "+bin)
	}
	if _, err := exec.LookPath("node"); err != nil {
		n8nMissing(t, "node is not on PATH (n8n needs Node.js >= 20.19)")
	}
	return bin
}

func n8nMissing(t testing.TB, why string) {
	t.Helper()
	missing(t, "n8n", why, "provision it with e2e/provision n8n (installs n8n 2.8.4 with npm into $KEYWARD_E2E_CACHE, default $HOME/.cache/keyward-e2e; about 5 minutes and 2.3 GB)")
}

// StartN8n starts a fresh n8n on a free loopback port, its data (SQLite)
// in t.TempDir(), offline (no diagnostics, version notifications or
// templates) and with NODE_ENV=production, so that its login limit (5 per
// minute per email) applies as in a deployment. It waits until n8n has
// finished its migrations (GET /healthz/readiness is 200 and GET
// /rest/login is 401: n8n answers HTTP before, and an owner set up then is
// lost), sets up the owner, and stops n8n and its task runner when the
// test ends. Without a provisioned n8n the test is skipped (see
// N8nBinary). n8n's log is printed if the test fails.
func StartN8n(t testing.TB) *N8n {
	t.Helper()
	bin := N8nBinary(t)
	work := t.TempDir()
	logPath := filepath.Join(work, "n8n.log")
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("n8n log (%s):\n%s", logPath, tail(b, 60))
		}
	})

	// A free port may be taken between finding it and n8n binding it:
	// try again with others.
	var n *N8n
	for attempt := 1; ; attempt++ {
		var err error
		n, err = startN8n(t, bin, work, logPath)
		if err == nil {
			break
		}
		b, _ := os.ReadFile(logPath)
		if attempt < 3 && bytes.Contains(b, []byte("EADDRINUSE")) {
			continue
		}
		t.Fatalf("starting n8n: %v", err)
	}
	n.setupOwner(t)
	return n
}

// startN8n starts n8n in its own process group and returns once it has
// finished its migrations, or with an error when it exits or does not
// get there in time.
func startN8n(t testing.TB, bin, work, logPath string) (*N8n, error) {
	t.Helper()
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	// n8n's task broker listens too (5679 by default, which another
	// n8n may hold).
	brokerPort, err := freePort()
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "start")
	cmd.Dir = work // n8n reads a .env from its working directory
	cmd.Env = n8nEnv(work, port, brokerPort)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, so that its children (the task runner)
	// are stopped with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("%s: %w", bin, err)
	}
	pgid := cmd.Process.Pid
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		logFile.Close()
		close(exited)
	}()
	stop := func() {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
		}
		// Whatever is left of the group (n8n itself if it ignored
		// SIGTERM, a task runner it did not stop).
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-exited
	}

	n := &N8n{URL: "http://127.0.0.1:" + strconv.Itoa(port)}
	if err := n8nWaitReady(n.URL, exited); err != nil {
		stop()
		if errors.Is(err, errN8nExited) {
			err = fmt.Errorf("%w (%v); see its log above", err, waitErr)
		}
		return nil, err
	}
	t.Cleanup(stop)
	return n, nil
}

// n8nEnv is the environment of a test n8n: the test's, without any
// setting of n8n's or its database's that would point it elsewhere.
func n8nEnv(work string, port, brokerPort int) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "N8N_") || strings.HasPrefix(name, "DB_") ||
			strings.HasPrefix(name, "EXECUTIONS_") || strings.HasPrefix(name, "QUEUE_") ||
			name == "NODE_ENV" || name == "WEBHOOK_URL" || name == "E2E_TESTS" {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"N8N_USER_FOLDER="+work,
		"N8N_PORT="+strconv.Itoa(port),
		"N8N_LISTEN_ADDRESS=127.0.0.1",
		"N8N_HOST=127.0.0.1",
		"N8N_PROTOCOL=http",
		"N8N_SECURE_COOKIE=false",
		"DB_TYPE=sqlite",
		"NODE_ENV=production",
		"N8N_RUNNERS_BROKER_PORT="+strconv.Itoa(brokerPort),
		"N8N_RUNNERS_BROKER_LISTEN_ADDRESS=127.0.0.1",
		// Offline: nothing that calls n8n's servers.
		"N8N_DIAGNOSTICS_ENABLED=false",
		"N8N_PERSONALIZATION_ENABLED=false",
		"N8N_VERSION_NOTIFICATIONS_ENABLED=false",
		"N8N_TEMPLATES_ENABLED=false",
		"N8N_DYNAMIC_BANNERS_ENABLED=false",
		"N8N_LICENSE_AUTO_RENEW_ENABLED=false",
		"N8N_AI_ENABLED=false",
	)
}

var errN8nExited = errors.New("n8n exited before it was ready")

// n8nWaitReady polls until GET /healthz/readiness answers 200 and GET
// /rest/login answers 401 (its routes are up: no session), n8n exits, or
// N8nReadyTimeout passes.
func n8nWaitReady(base string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), N8nReadyTimeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	client := &http.Client{Timeout: 2 * time.Second}
	status := func(path string) int {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		resp, err := client.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for {
		if status("/healthz/readiness") == http.StatusOK && status("/rest/login") == http.StatusUnauthorized {
			return nil
		}
		select {
		case <-exited:
			return errN8nExited
		case <-ctx.Done():
			return fmt.Errorf("n8n at %s did not become ready (GET /healthz/readiness 200 and GET /rest/login 401) within %s", base, N8nReadyTimeout)
		case <-tick.C:
		}
	}
}

// setupOwner sets up n's owner with POST /rest/owner/setup.
func (n *N8n) setupOwner(t testing.TB) {
	t.Helper()
	// n8n wants 8 to 64 characters with a digit and an upper-case letter.
	n.Email, n.Password = "owner@example.test", "Pw1-"+randomHex(20)
	body, _ := json.Marshal(map[string]string{
		"email": n.Email, "firstName": "Keyward", "lastName": "Owner", "password": n.Password,
	})
	resp, err := http.Post(n.URL+"/rest/owner/setup", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("n8n owner setup: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		t.Fatalf("n8n owner setup: POST /rest/owner/setup answered %d: %s", resp.StatusCode, b.String())
	}
}
