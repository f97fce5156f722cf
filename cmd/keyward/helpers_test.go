package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/keywardtest"
)

// waitTimeout bounds every wait for a server; tests never sleep.
const waitTimeout = 30 * time.Second

// testServer is an in-process "keyward serve" on port 0.
type testServer struct {
	url     string
	data    string
	rootKey string
	stdout  *keywardtest.Lines
	stderr  *keywardtest.Lines // the server's log
	cancel  context.CancelFunc
	done    chan int
}

// startServer runs "keyward serve" in process with env and extra args and
// returns once it accepts connections. It stops when the test ends.
func startServer(t *testing.T, env map[string]string, args ...string) *testServer {
	t.Helper()
	s := &testServer{data: filepath.Join(t.TempDir(), "data"), stdout: keywardtest.NewLines(), stderr: keywardtest.NewLines(), done: make(chan int, 1)}
	if d, ok := env["KEYWARD_DATA"]; ok {
		s.data = d
	}
	addr := make(chan string, 1)
	m := &Main{Getenv: mapEnv(env), Listening: func(a string) { addr <- a }, Version: "test"}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	argv := append([]string{"serve", "--listen", "127.0.0.1:0", "--data", s.data}, args...)
	go func() { s.done <- m.Run(ctx, argv, s.stdout, s.stderr) }()
	select {
	case a := <-addr:
		s.url = "http://" + a
	case code := <-s.done:
		cancel()
		t.Fatalf("serve exited with %d before listening; stderr:\n%s", code, s.stderr)
	case <-time.After(waitTimeout):
		cancel()
		t.Fatalf("serve did not listen in time; stderr:\n%s", s.stderr)
	}
	// serve prints the root key before it listens.
	for _, line := range strings.Split(s.stdout.String(), "\n") {
		if k, ok := strings.CutPrefix(line, "root key: "); ok {
			s.rootKey = k
		}
	}
	t.Cleanup(func() { s.stop(t) })
	return s
}

// stop shuts the server down as SIGTERM would and checks it exits 0.
func (s *testServer) stop(t *testing.T) {
	t.Helper()
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case code := <-s.done:
		if code != 0 {
			t.Errorf("serve exited with %d; stderr:\n%s", code, s.stderr)
		}
	case <-time.After(waitTimeout):
		t.Errorf("serve did not stop in time")
	}
}

// result is the outcome of one CLI run.
type result struct {
	code   int
	stdout string
	stderr string
}

// cli runs the CLI in process against s with apiKey.
func (s *testServer) cli(t *testing.T, apiKey string, args ...string) result {
	t.Helper()
	return runCLI(t, map[string]string{"KEYWARD_URL": s.url, "KEYWARD_API_KEY": apiKey}, args...)
}

func runCLI(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	m := &Main{Getenv: mapEnv(env), Version: "test"}
	code := m.Run(context.Background(), args, &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// ok runs the CLI, requires success and returns stdout.
func (s *testServer) ok(t *testing.T, apiKey string, args ...string) string {
	t.Helper()
	r := s.cli(t, apiKey, args...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("keyward %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// okJSON runs the CLI with -o json and decodes stdout into out.
func (s *testServer) okJSON(t *testing.T, apiKey string, out any, args ...string) {
	t.Helper()
	stdout := s.ok(t, apiKey, append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(stdout), out); err != nil {
		t.Fatalf("keyward %s -o json: %v\n%s", strings.Join(args, " "), err, stdout)
	}
}

// fails runs the CLI, requires exit code and one error line, and returns
// that line.
func (s *testServer) fails(t *testing.T, code int, apiKey string, args ...string) string {
	t.Helper()
	return checkFails(t, s.cli(t, apiKey, args...), code, args)
}

func checkFails(t *testing.T, r result, code int, args []string) string {
	t.Helper()
	if r.code != code {
		t.Errorf("keyward %s: exit %d, want %d (stderr %q)", strings.Join(args, " "), r.code, code, r.stderr)
	}
	if !strings.HasPrefix(r.stderr, "keyward: ") || strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
		t.Errorf("keyward %s: stderr is not one \"keyward: \" line: %q", strings.Join(args, " "), r.stderr)
	}
	return strings.TrimSpace(r.stderr)
}

func mapEnv(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

var (
	testPepperBytes = []byte("0123456789abcdef0123456789abcdef")
	testPepperHex   = "hex:" + hex.EncodeToString(testPepperBytes)
)
