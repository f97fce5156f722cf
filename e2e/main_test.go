package e2e

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/keywardtest"
)

// waitTimeout bounds every wait for a process: to listen, to log a line,
// to exit.
const waitTimeout = 30 * time.Second

// caddyVersion is the Caddy release .ci/run installs (TestCIInstallsTools
// keeps the two equal).
const caddyVersion = "v2.11.9"

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

// requireTool returns the path of a proxy's binary: in PATH, or in one of
// extra (where an installer puts it but PATH may not reach). Without it
// the test skips with install, or fails when CI=true (CI installs it).
func requireTool(t *testing.T, name, install string, extra ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, p := range extra {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	msg := fmt.Sprintf("%s is not installed: %s (.ci/run installs it)", name, install)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// gopathBin is where go install puts binaries.
func gopathBin() string {
	if gp := os.Getenv("GOBIN"); gp != "" {
		return gp
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		return ""
	}
	gp, _, _ := strings.Cut(strings.TrimSpace(string(out)), string(os.PathListSeparator))
	return filepath.Join(gp, "bin")
}

// proc is a process a test started; it is stopped at cleanup.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stdout *keywardtest.Lines
	stderr *keywardtest.Lines
	exited chan struct{} // closed when the process has exited
	err    error         // Wait's result, once exited is closed
}

// start runs cmd with its output collected and stops it at cleanup with
// SIGTERM (then SIGKILL), logging its output when the test failed.
func start(t *testing.T, name string, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{name: name, cmd: cmd, stdout: keywardtest.NewLines(), stderr: keywardtest.NewLines(), exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("%s stdout:\n%s\n%s stderr:\n%s", name, p.stdout, name, p.stderr)
		}
	})
	return p
}

func (p *proc) stop(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(waitTimeout):
		t.Errorf("%s did not exit %s after SIGTERM: killed", p.name, waitTimeout)
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// waitListening polls addr until it accepts a connection, failing when the
// process exits first or after waitTimeout.
func (p *proc) waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not listen on %s after %s: %v\nstderr:\n%s", p.name, addr, waitTimeout, err, p.stderr)
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited (%v) before listening on %s; stderr:\n%s", p.name, p.err, addr, p.stderr)
		case <-tick.C:
		}
	}
}

// freeAddr returns a loopback address with a port that was free a moment
// ago, for a proxy that cannot listen on port 0 and report it.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// env is the test process's environment without KEYWARD_ variables, plus
// kv.
func env(kv ...string) []string {
	var out []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "KEYWARD_") {
			out = append(out, e)
		}
	}
	return append(out, kv...)
}

// server is a running "keyward serve".
type server struct {
	*proc
	addr string // host:port
	root string // the root key printed at the first start
}

// startKeyward runs "keyward serve" on port 0 with the configuration file
// config and a fresh data directory, and waits for its "listening" log
// line (the address) and its "root key: " line.
func startKeyward(t *testing.T, config string) *server {
	t.Helper()
	requireBinary(t)
	config, err := filepath.Abs(config)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "serve", "--listen", "127.0.0.1:0", "--data", filepath.Join(t.TempDir(), "data"),
		"--config", config, "--log-format", "json", "--log-level", "debug")
	cmd.Env = env()
	cmd.Dir = t.TempDir()
	s := &server{proc: start(t, "keyward", cmd)}
	line := s.stderr.WaitLine(t, `the "listening" log line`, s.exited, func(l string) bool {
		return strings.Contains(l, `"msg":"listening"`)
	})
	var rec struct{ Addr string }
	if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Addr == "" {
		t.Fatalf("cannot read the address from %q: %v", line, err)
	}
	s.addr = rec.Addr
	line = s.stdout.WaitLine(t, "the root key line", s.exited, func(l string) bool { return strings.HasPrefix(l, "root key: ") })
	s.root = strings.TrimPrefix(line, "root key: ")
	if prefix, ok := apikey.Parse(s.root); !ok || prefix != apikey.PrefixRoot {
		t.Fatalf("root key line %q", line)
	}
	return s
}

// tenant is what a test creates in keyward: an account, a user, and keys.
type tenant struct {
	account keyward.Account
	user    keyward.User
	reader  *keyward.CreatedKey // user key: memories:read
	admin   *keyward.CreatedKey // account admin key: memories:read, admin:write
	revoked *keyward.CreatedKey // user key, revoked
}

// newTenant creates the tenant through the Go client with the root key.
func newTenant(t *testing.T, s *server) *tenant {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c := client.New("http://"+s.addr, keyward.Secret(s.root))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	tn := &tenant{}
	acc, err := c.CreateAccount(ctx, keyward.AccountCreate{Name: "acme"})
	must(err)
	usr, err := c.CreateUser(ctx, acc.ID, keyward.UserCreate{Name: "alice"})
	must(err)
	tn.account, tn.user = *acc, *usr
	tn.reader, err = c.CreateKey(ctx, keyward.KeyCreate{AccountID: acc.ID, UserID: usr.ID, Role: keyward.RoleUser,
		Name: "reader", Permissions: []string{"memories:read"}})
	must(err)
	tn.admin, err = c.CreateKey(ctx, keyward.KeyCreate{AccountID: acc.ID, Role: keyward.RoleAccountAdmin,
		Name: "admin", Permissions: []string{"memories:read", "admin:write"}})
	must(err)
	tn.revoked, err = c.CreateKey(ctx, keyward.KeyCreate{AccountID: acc.ID, UserID: usr.ID, Role: keyward.RoleUser,
		Name: "revoked", Permissions: []string{"memories:read"}})
	must(err)
	_, err = c.RevokeKey(ctx, tn.revoked.ID)
	must(err)
	return tn
}
