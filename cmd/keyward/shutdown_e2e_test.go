package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward/keywardtest"
)

// gatewayProc is a running "keyward gateway" binary.
type gatewayProc struct {
	cmd    *exec.Cmd
	stderr *keywardtest.Lines // JSON log lines
	url    string
	exited chan struct{}
	err    error // of Wait, once exited is closed
}

// startGatewayBinary runs "keyward gateway --listen 127.0.0.1:0 args..." and
// waits for its "gateway listening" log line.
func startGatewayBinary(t *testing.T, args ...string) *gatewayProc {
	t.Helper()
	requireBinary(t)
	g := &gatewayProc{stderr: keywardtest.NewLines(), exited: make(chan struct{})}
	args = append([]string{"gateway", "--listen", "127.0.0.1:0", "--log-format", "json"}, args...)
	g.cmd = exec.Command(binary, args...)
	g.cmd.Env = baseEnv()
	g.cmd.Dir = t.TempDir()
	g.cmd.Stderr = g.stderr
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { g.err = g.cmd.Wait(); close(g.exited) }()
	t.Cleanup(func() {
		select {
		case <-g.exited:
		default:
			g.cmd.Process.Kill()
			<-g.exited
		}
	})
	line := g.stderr.WaitLine(t, `the "gateway listening" log line`, g.exited, func(l string) bool {
		return strings.Contains(l, `"msg":"gateway listening"`)
	})
	var rec struct{ Addr string }
	if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Addr == "" {
		t.Fatalf("cannot read the address from %q: %v", line, err)
	}
	g.url = "http://" + rec.Addr
	return g
}

// exitAfterSIGTERM sends SIGTERM to p and returns its exit code.
func exitAfterSIGTERM(t *testing.T, p *exec.Cmd, exited <-chan struct{}, waitErr func() error, stderr *keywardtest.Lines) int {
	t.Helper()
	if err := p.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(waitTimeout):
		t.Fatalf("no exit after SIGTERM:\n%s", stderr)
	}
	var ee *exec.ExitError
	switch err := waitErr(); {
	case err == nil:
		return 0
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		return ee.ExitCode()
	default:
		t.Fatalf("process ended by %v, not an exit:\n%s", err, stderr)
		return -1
	}
}

// TestSIGTERMOnIdleServerExitsZero: serve and gateway, idle, exit 0 on
// SIGTERM, as docs/cli.md says.
func TestSIGTERMOnIdleServerExitsZero(t *testing.T) {
	t.Run("serve", func(t *testing.T) {
		requireBinary(t)
		p := startBinary(t, filepath.Join(t.TempDir(), "data"))
		exited := make(chan struct{})
		var err error
		go func() { err = <-p.done; close(exited) }()
		if code := exitAfterSIGTERM(t, p.cmd, exited, func() error { return err }, p.stderr); code != ExitOK {
			t.Fatalf("serve exited %d after SIGTERM, want 0:\n%s", code, p.stderr)
		}
	})
	t.Run("gateway", func(t *testing.T) {
		up := newEchoUpstream(t)
		g := startGatewayBinary(t, "--dev", "--upstream", up.URL)
		if code := exitAfterSIGTERM(t, g.cmd, g.exited, func() error { return g.err }, g.stderr); code != ExitOK {
			t.Fatalf("gateway exited %d after SIGTERM, want 0:\n%s", code, g.stderr)
		}
	})
}

// TestShutdownTimeoutCutsOffExits10: a request still in flight when
// shutdown_timeout runs out is cut off, and the gateway says so and exits
// ExitShutdown, not the 1 of an internal error.
func TestShutdownTimeoutCutsOffExits10(t *testing.T) {
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(up.Close)
	t.Cleanup(func() { close(release) })
	g := startGatewayBinary(t, "--dev", "--upstream", up.URL, "--shutdown-timeout", "1s")
	sent := make(chan error, 1)
	go func() {
		resp, err := http.Get(g.url + "/slow")
		if err == nil {
			resp.Body.Close()
		}
		sent <- err
	}()
	select {
	case <-arrived:
	case <-time.After(waitTimeout):
		t.Fatal("the request did not reach the upstream")
	}
	code := exitAfterSIGTERM(t, g.cmd, g.exited, func() error { return g.err }, g.stderr)
	if code != ExitShutdown {
		t.Fatalf("gateway exited %d with a request cut off, want %d:\n%s", code, ExitShutdown, g.stderr)
	}
	if !strings.Contains(g.stderr.String(), "raise shutdown_timeout") {
		t.Errorf("the error does not say what to do:\n%s", g.stderr)
	}
	if err := <-sent; err == nil {
		t.Error("the request in flight was answered, not cut off")
	}
}

// TestFailedFinalWriteExits10: serve stopped by SIGTERM while its store is
// gone cannot write the key usage it recorded; it says so and exits
// ExitShutdown, whatever the store's error (today's "unavailable" would be
// 8, another 1).
func TestFailedFinalWriteExits10(t *testing.T) {
	c := newCluster(t, false)
	var proxy *keywardtest.Proxy
	c.storeURL, proxy = viaProxy(t, c.storeURL, "5432")
	p := c.start(t, c.env("KEYWARD_SHUTDOWN_TIMEOUT=2s"))
	root := rootKey(t, p)
	// The verification records usage (last_used_at, usage counts) that
	// serve writes in batches, the last ones on the way out.
	if status, res, _ := verifyAt(t, p.url, root, root); status != http.StatusOK || !res.Valid {
		t.Fatalf("verify: %d %+v", status, res)
	}
	proxy.Cut()
	exited := make(chan struct{})
	var err error
	go func() { err = <-p.done; close(exited) }()
	code := exitAfterSIGTERM(t, p.cmd, exited, func() error { return err }, p.stderr)
	if code != ExitShutdown {
		t.Fatalf("serve exited %d after a failed final write, want %d:\n%s", code, ExitShutdown, p.stderr)
	}
	if !strings.Contains(p.stderr.String(), `"level":"ERROR"`) {
		t.Errorf("the failed write was not logged at error level:\n%s", p.stderr)
	}
}
