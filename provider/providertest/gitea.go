package providertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/provider"
)

// GiteaReadyTimeout bounds the wait for a started Gitea to answer.
const GiteaReadyTimeout = 60 * time.Second

// Gitea is a running Gitea, started by StartGitea for one test.
type Gitea struct {
	// URL is Gitea's base URL, such as http://127.0.0.1:41234, without a
	// trailing slash.
	URL string
	// Admin is the site admin, keyward-admin.
	Admin GiteaUser
	// User is a user who is not an admin, alice.
	User GiteaUser

	bin, config, work string
}

// GiteaUser is a Gitea user with its password.
type GiteaUser struct {
	Name     string
	Password string
	Email    string
}

// Connection returns the provider connection of user u (g.Admin for one
// that may manage every user's tokens), with timeout
// (provider.DefaultTimeout when 0).
func (g *Gitea) Connection(u GiteaUser, timeout time.Duration) provider.Connection {
	return provider.Connection{BaseURL: g.URL, Username: u.Name, Password: keyward.Secret(u.Password), Timeout: timeout}
}

// GiteaBinary returns the Gitea binary and its STATIC_ROOT_PATH provisioned
// by e2e/provision under $KEYWARD_E2E_CACHE (default
// $HOME/.cache/keyward-e2e). When they are absent the test is skipped with
// a message saying how to provision them, or fails when CI is true.
func GiteaBinary(t testing.TB) (bin, static string) {
	t.Helper()
	cache := cacheDir(t, giteaMissing)
	bin = filepath.Join(cache, "gitea", "gitea")
	static = filepath.Join(cache, "gitea", "static")
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		giteaMissing(t, "no Gitea binary at "+bin)
	}
	for _, sub := range []string{"templates", "options"} {
		if fi, err := os.Stat(filepath.Join(static, sub)); err != nil || !fi.IsDir() {
			giteaMissing(t, fmt.Sprintf("no %s/ in Gitea's STATIC_ROOT_PATH %s", sub, static))
		}
	}
	return bin, static
}

func giteaMissing(t testing.TB, why string) {
	t.Helper()
	missing(t, "Gitea", why, "provision it with e2e/provision gitea (builds Gitea into $KEYWARD_E2E_CACHE, default $HOME/.cache/keyward-e2e; about 2-5 minutes)")
}

// StartGitea starts a fresh Gitea on a free loopback port, its data in
// t.TempDir() (SQLite, install lock, offline, no registration), waits until
// GET /api/v1/version answers, creates the admin keyward-admin and the user
// alice, and kills it when the test ends. Without a provisioned Gitea the
// test is skipped (see GiteaBinary). Gitea's log is printed if the test
// fails.
func StartGitea(t testing.TB) *Gitea {
	t.Helper()
	bin, static := GiteaBinary(t)
	work := t.TempDir()
	logPath := filepath.Join(work, "gitea.log")
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("gitea log (%s):\n%s", logPath, tail(b, 60))
		}
	})

	// The free port may be taken between finding it and Gitea binding
	// it: try again with another.
	var g *Gitea
	for attempt := 1; ; attempt++ {
		var err error
		g, err = startGitea(t, bin, static, work, logPath)
		if err == nil {
			break
		}
		b, _ := os.ReadFile(logPath)
		if attempt < 3 && bytes.Contains(b, []byte("address already in use")) {
			continue
		}
		t.Fatalf("starting gitea: %v", err)
	}

	g.Admin = g.CreateUser(t, "keyward-admin", true)
	g.User = g.CreateUser(t, "alice", false)
	return g
}

// startGitea writes app.ini and starts Gitea, returning once it answers
// or with an error when it exits or does not answer in time.
func startGitea(t testing.TB, bin, static, work, logPath string) (*Gitea, error) {
	t.Helper()
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	g := &Gitea{
		URL:    "http://127.0.0.1:" + strconv.Itoa(port),
		bin:    bin,
		config: filepath.Join(work, "custom", "conf", "app.ini"),
		work:   work,
	}
	if err := os.MkdirAll(filepath.Dir(g.config), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(g.config, []byte(giteaConfig(work, static, port)), 0o600); err != nil {
		return nil, err
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, g.globalFlags("web")...)
	cmd.Dir = work
	cmd.Env = giteaEnv(work)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("%s: %w", bin, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		logFile.Close()
		close(exited)
	}()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}

	if err := giteaWaitReady(g.URL, exited); err != nil {
		stop()
		if errors.Is(err, errGiteaExited) {
			err = fmt.Errorf("%w (%v); see its log above", err, waitErr)
		}
		return nil, err
	}
	t.Cleanup(stop)
	return g, nil
}

var errGiteaExited = errors.New("gitea exited before it answered")

// giteaWaitReady polls GET /api/v1/version until it answers 200, Gitea
// exits, or GiteaReadyTimeout passes.
func giteaWaitReady(base string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), GiteaReadyTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/version", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return errGiteaExited
		case <-ctx.Done():
			return fmt.Errorf("gitea did not answer GET %s/api/v1/version within %s", base, GiteaReadyTimeout)
		case <-tick.C:
		}
	}
}

// CreateUser creates a Gitea user with a random password through
// `gitea admin user create`, a site admin when admin is true.
func (g *Gitea) CreateUser(t testing.TB, name string, admin bool) GiteaUser {
	t.Helper()
	u := GiteaUser{Name: name, Password: "Pw-" + randomHex(12), Email: name + "@example.test"}
	args := []string{"admin", "user", "create",
		"--username", u.Name, "--password", u.Password, "--email", u.Email,
		"--must-change-password=false"}
	if admin {
		args = append(args, "--admin")
	}
	cmd := exec.Command(g.bin, g.globalFlags(args...)...)
	cmd.Dir = g.work
	cmd.Env = giteaEnv(g.work)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gitea admin user create --username %s: %v\n%s", name, err, out)
	}
	return u
}

// globalFlags returns args after Gitea's flags that point it at g's
// config and work directory.
func (g *Gitea) globalFlags(args ...string) []string {
	return append(args, "--config", g.config, "--work-path", g.work, "--custom-path", filepath.Join(g.work, "custom"))
}

// giteaEnv is the environment of a Gitea command: the test's, without
// any GITEA_* setting that would point it elsewhere.
func giteaEnv(work string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GITEA_") {
			env = append(env, kv)
		}
	}
	return append(env, "GITEA_WORK_DIR="+work)
}

// giteaConfig is the app.ini of a test Gitea.
func giteaConfig(work, static string, port int) string {
	runUser := "git"
	if u, err := user.Current(); err == nil {
		runUser = u.Username
	}
	root := ""
	if os.Geteuid() == 0 {
		root = "I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = true\n"
	}
	return fmt.Sprintf(`APP_NAME = keyward-test
RUN_MODE = prod
RUN_USER = %[4]s
WORK_PATH = %[1]s
%[5]s
[server]
PROTOCOL = http
HTTP_ADDR = 127.0.0.1
HTTP_PORT = %[3]d
ROOT_URL = http://127.0.0.1:%[3]d/
DOMAIN = 127.0.0.1
OFFLINE_MODE = true
DISABLE_SSH = true
START_SSH_SERVER = false
STATIC_ROOT_PATH = %[2]s
APP_DATA_PATH = %[1]s/data
LFS_START_SERVER = false

[database]
DB_TYPE = sqlite3
PATH = %[1]s/data/gitea.db

[repository]
ROOT = %[1]s/repos

[security]
INSTALL_LOCK = true
SECRET_KEY = %[6]s
INTERNAL_TOKEN = %[7]s

[oauth2]
ENABLED = false

[service]
DISABLE_REGISTRATION = true
REQUIRE_SIGNIN_VIEW = false

[mailer]
ENABLED = false

[session]
PROVIDER = memory

[cache]
ADAPTER = memory

[indexer]
ISSUE_INDEXER_TYPE = db
REPO_INDEXER_ENABLED = false

[cron]
ENABLED = false

[cron.update_checker]
ENABLED = false

[actions]
ENABLED = false

[log]
MODE = console
LEVEL = warn
`, work, static, port, runUser, root, randomHex(32), randomHex(32))
}
