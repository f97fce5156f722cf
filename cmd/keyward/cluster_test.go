package main

// End-to-end tests of keyward on PostgreSQL (and Redis) with the real
// binary: two instances sharing a store, and outages of the store and of
// the invalidation bus cut with keywardtest.Proxy. They synchronise on
// observable state, polling with deadlines.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/keywardtest"
)

// propagation bounds how long a change on one instance may take to reach
// another through the bus; far below the 30s cache TTL, so passing proves
// the bus delivered.
const propagation = 5 * time.Second

// cluster is the shared configuration of instances in one test: a fresh
// PostgreSQL schema, one pepper and, optionally, Redis.
type cluster struct {
	storeURL string // with the test's search_path
	pepper   string
	redisURL string
	channel  string
}

// newCluster creates a schema for the test (dropped at its end).
func newCluster(t *testing.T, withRedis bool) *cluster {
	t.Helper()
	requireBinary(t)
	pg := keywardtest.PostgresURL(t)
	b := make([]byte, 32)
	rand.Read(b)
	schema := "kw_e2e_" + hex.EncodeToString(b[:6])
	c := &cluster{
		storeURL: withParam(t, pg, "search_path", schema),
		pepper:   "hex:" + hex.EncodeToString(b),
		channel:  schema, // per test: tests share a database and a Redis
	}
	if withRedis {
		c.redisURL = keywardtest.RedisURL(t)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, pg)
		if err != nil {
			t.Logf("dropping schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Logf("dropping schema %s: %v", schema, err)
		}
	})
	return c
}

func withParam(t *testing.T, raw, key, value string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// viaProxy returns raw with its host:port replaced by a proxy's.
func viaProxy(t *testing.T, raw, defaultPort string) (string, *keywardtest.Proxy) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	target := u.Host
	if u.Port() == "" {
		target = net.JoinHostPort(u.Hostname(), defaultPort)
	}
	p := keywardtest.NewProxy(t, target)
	u.Host = p.Addr()
	return u.String(), p
}

// env is the environment of an instance of c; extra overrides it.
func (c *cluster) env(extra ...string) []string {
	env := []string{
		"KEYWARD_STORE=" + c.storeURL,
		"KEYWARD_PEPPER=" + c.pepper,
		"KEYWARD_MASTER_KEYS=1:" + c.pepper,
		"KEYWARD_BUS_CHANNEL=" + c.channel,
	}
	if c.redisURL != "" {
		env = append(env, "KEYWARD_REDIS_URL="+c.redisURL)
	}
	return baseEnv(append(env, extra...)...)
}

// start runs "keyward serve" with env and waits for it to listen.
func (c *cluster) start(t *testing.T, env []string) *proc {
	t.Helper()
	p := &proc{stdout: keywardtest.NewLines(), stderr: keywardtest.NewLines(), done: make(chan error, 1)}
	data := filepath.Join(t.TempDir(), "data")
	p.cmd = exec.Command(binary, "serve", "--listen", "127.0.0.1:0", "--data", data, "--log-format", "json")
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
		if t.Failed() {
			t.Logf("log of %s:\n%s", p.url, p.stderr)
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

// rootKey waits for the root key line of the first instance.
func rootKey(t *testing.T, p *proc) string {
	t.Helper()
	line := p.stdout.WaitLine(t, "the root key line", nil, func(l string) bool { return strings.HasPrefix(l, "root key: ") })
	return strings.TrimPrefix(line, "root key: ")
}

// verifyAt calls POST /v1/keys/verify on base as caller and returns the
// HTTP status, the result (on 200) and the problem code (otherwise).
func verifyAt(t *testing.T, base, caller, key string) (int, keyward.VerifyResult, string) {
	t.Helper()
	body, _ := json.Marshal(keyward.VerifyRequest{Key: key})
	req, _ := http.NewRequest("POST", base+"/v1/keys/verify", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+caller)
	req.Header.Set("Content-Type", "application/json")
	status, b := do(t, req)
	var res keyward.VerifyResult
	var problem struct{ Code string }
	if status == http.StatusOK {
		if err := json.Unmarshal(b, &res); err != nil {
			t.Fatalf("verify: %v: %s", err, b)
		}
	} else {
		json.Unmarshal(b, &problem)
	}
	return status, res, problem.Code
}

// decision is verifyAt's decision, "HTTP nnn code" when it is not 200.
func decision(t *testing.T, base, caller, key string) string {
	t.Helper()
	status, res, code := verifyAt(t, base, caller, key)
	if status != http.StatusOK {
		return fmt.Sprintf("HTTP %d %s", status, code)
	}
	return string(res.Code)
}

func do(t *testing.T, req *http.Request) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(req.Context(), 15*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// eventually polls cond every 20ms until it returns "" or within elapses,
// then fails with the last answer.
func eventually(t *testing.T, within time.Duration, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := cond()
		if got == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last: %s", what, within, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wantDecision is a condition for eventually.
func wantDecision(t *testing.T, base, caller, key string, want keyward.Decision) func() string {
	return func() string {
		if got := decision(t, base, caller, key); got != string(want) {
			return got
		}
		return ""
	}
}

func newKey(t *testing.T, c *client.Client, accountID string) *keyward.CreatedKey {
	t.Helper()
	k, err := c.CreateKey(t.Context(), keyward.KeyCreate{AccountID: accountID, Role: keyward.RoleAccountAdmin, Permissions: []string{"keys:verify"}})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestClusterRedis(t *testing.T) { testCluster(t, true) }

func TestClusterListenNotify(t *testing.T) { testCluster(t, false) }

// testCluster runs two instances on one PostgreSQL schema: changes made on
// A reach B's cache through the bus, well within the cache TTL.
func testCluster(t *testing.T, withRedis bool) {
	c := newCluster(t, withRedis)
	a := c.start(t, c.env())
	root := rootKey(t, a)
	b := c.start(t, c.env())
	wantBus := "postgres LISTEN/NOTIFY"
	if withRedis {
		wantBus = "redis pub/sub"
	}
	for _, p := range []*proc{a, b} {
		p.stderr.WaitLine(t, "the bus in use", nil, func(l string) bool { return strings.Contains(l, `"bus":"`+wantBus) })
		p.stderr.WaitLine(t, "the bus subscription", nil, func(l string) bool {
			return strings.Contains(l, "listening for invalidations")
		})
	}
	ca := client.New(a.url, keyward.Secret(root))
	acc, err := ca.CreateAccount(t.Context(), keyward.AccountCreate{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}

	// Created on A: verifies on B (a miss on B reads the store).
	k1 := newKey(t, ca, acc.ID)
	if got := decision(t, b.url, root, k1.Secret); got != string(keyward.DecisionValid) {
		t.Fatalf("key created on A, on B: %s", got)
	}

	// Revoked on A: B, which has it cached, rejects it.
	if _, err := ca.RevokeKey(t.Context(), k1.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, propagation, "revoked on A, rejected by B", wantDecision(t, b.url, root, k1.Secret, keyward.DecisionRevoked))

	// Rotated on A with a 2s grace: on B the old key works until the grace
	// ends, the new one at once.
	k2 := newKey(t, ca, acc.ID)
	if got := decision(t, b.url, root, k2.Secret); got != string(keyward.DecisionValid) {
		t.Fatalf("k2 on B: %s", got)
	}
	const grace = 2 * time.Second
	rotated := time.Now()
	next, err := ca.RotateKey(t.Context(), k2.ID, keyward.KeyRotate{Grace: keyward.Duration(grace)})
	if err != nil {
		t.Fatal(err)
	}
	if got := decision(t, b.url, root, next.Secret); got != string(keyward.DecisionValid) {
		t.Fatalf("rotated key's successor on B: %s", got)
	}
	var ended time.Time
	eventually(t, grace+propagation, "the old key rejected on B after the grace", func() string {
		got := decision(t, b.url, root, k2.Secret)
		if got == string(keyward.DecisionValid) {
			return got
		}
		if ended.IsZero() {
			ended = time.Now()
		}
		if got != string(keyward.DecisionRevoked) && got != string(keyward.DecisionExpired) {
			t.Fatalf("old key on B after rotation: %s", got)
		}
		return ""
	})
	if early := grace - ended.Sub(rotated); early > 200*time.Millisecond {
		t.Errorf("the old key was rejected on B %s before its grace ended", early)
	}
	if got := decision(t, b.url, root, next.Secret); got != string(keyward.DecisionValid) {
		t.Errorf("successor on B after the grace: %s", got)
	}

	// An account deleted on A takes its keys with it on B.
	if err := ca.DeleteAccount(t.Context(), acc.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, propagation, "the deleted account's key rejected by B", wantDecision(t, b.url, root, next.Secret, keyward.DecisionNotFound))

	a.stop(t)
	b.stop(t)
}

// TestClusterStoreOutage cuts the connection to PostgreSQL under a running
// instance: cached keys keep verifying, everything else answers 503, and
// the instance recovers by itself.
func TestClusterStoreOutage(t *testing.T) {
	c := newCluster(t, false)
	proxied, proxy := viaProxy(t, c.storeURL, "5432")
	// The LISTEN/NOTIFY bus goes through the proxy as well: keep the cache
	// TTL long while it is down, so the warm key outlives the test.
	p := c.start(t, c.env("KEYWARD_STORE="+proxied, "KEYWARD_CACHE_TTL=2m", "KEYWARD_BUS_DOWN_CACHE_TTL=2m"))
	root := rootKey(t, p)
	cl := client.New(p.url, keyward.Secret(root))
	acc, err := cl.CreateAccount(t.Context(), keyward.AccountCreate{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	k1 := newKey(t, cl, acc.ID)
	if got := decision(t, p.url, root, k1.Secret); got != string(keyward.DecisionValid) {
		t.Fatalf("warming the cache with K1: %s", got)
	}
	// A well-formed key this instance has never seen: a miss.
	unknown, err := apikey.Generate(apikey.DefaultPrefix(keyward.RoleAccountAdmin, ""))
	if err != nil {
		t.Fatal(err)
	}
	fwdStatus := func(key string) int {
		req, _ := http.NewRequest("GET", p.url+"/v1/forward-auth", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		s, _ := do(t, req)
		return s
	}
	readyz := func() int {
		req, _ := http.NewRequest("GET", p.url+"/readyz", nil)
		s, _ := do(t, req)
		return s
	}
	k1Forward := fwdStatus(k1.Secret)
	if k1Forward != http.StatusOK {
		t.Fatalf("forward-auth with K1 before the outage: %d", k1Forward)
	}

	proxy.Cut()
	eventually(t, propagation, "/readyz not ready", func() string {
		if s := readyz(); s != http.StatusServiceUnavailable {
			return fmt.Sprint(s)
		}
		return ""
	})
	if got := decision(t, p.url, root, k1.Secret); got != string(keyward.DecisionValid) {
		t.Errorf("cached K1 with the store down: %s", got)
	}
	if s := fwdStatus(k1.Secret); s != http.StatusOK {
		t.Errorf("forward-auth with cached K1, store down: %d", s)
	}
	status, res, code := verifyAt(t, p.url, root, unknown.Reveal())
	if status != http.StatusOK || res.Valid || res.Code != keyward.DecisionUnavailable {
		t.Errorf("uncached key with the store down: HTTP %d, problem %q, %+v; want 200 with code UNAVAILABLE", status, code, res)
	}
	if s := fwdStatus(unknown.Reveal()); s != http.StatusServiceUnavailable {
		t.Errorf("forward-auth with an uncached key, store down: %d, want 503", s)
	}
	req, _ := http.NewRequest("POST", p.url+"/v1/accounts", strings.NewReader(`{"name":"during-outage"}`))
	req.Header.Set("Authorization", "Bearer "+root)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var problem struct{ Code, Detail string }
	json.Unmarshal(body, &problem)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Content-Type") != "application/problem+json" || problem.Code != keyward.EUNAVAILABLE {
		t.Errorf("admin write with the store down: HTTP %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	select {
	case err := <-p.done:
		t.Fatalf("serve exited during the store outage: %v", err)
	default:
	}

	proxy.Restore()
	eventually(t, 15*time.Second, "/readyz ready again", func() string {
		if s := readyz(); s != http.StatusOK {
			return fmt.Sprint(s)
		}
		return ""
	})
	eventually(t, propagation, "the uncached key answered again", wantDecision(t, p.url, root, unknown.Reveal(), keyward.DecisionNotFound))
	if _, err := cl.CreateAccount(t.Context(), keyward.AccountCreate{Name: "after-outage"}); err != nil {
		t.Errorf("admin write after the outage: %v", err)
	}
	if got := decision(t, p.url, root, k1.Secret); got != string(keyward.DecisionValid) {
		t.Errorf("K1 after the outage: %s", got)
	}
	p.stop(t)
}

// TestClusterRedisOutage cuts the connection to Redis: the instance keeps
// serving on a shorter cache TTL, warns once, exports the bus state, and
// recovers (dropping its cache) when Redis is back.
func TestClusterRedisOutage(t *testing.T) {
	c := newCluster(t, true)
	proxied, proxy := viaProxy(t, c.redisURL, "6379")
	p := c.start(t, c.env("KEYWARD_REDIS_URL="+proxied, "KEYWARD_BUS_DOWN_CACHE_TTL=3s"))
	root := rootKey(t, p)
	p.stderr.WaitLine(t, "the bus subscription", nil, func(l string) bool { return strings.Contains(l, "listening for invalidations") })
	busUp := func(want string) func() string {
		return func() string {
			req, _ := http.NewRequest("GET", p.url+"/metrics", nil)
			_, b := do(t, req)
			for _, l := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(l, "keyward_invalidation_bus_up "); ok {
					if v != want {
						return "keyward_invalidation_bus_up " + v
					}
					return ""
				}
			}
			return "no keyward_invalidation_bus_up in /metrics"
		}
	}
	eventually(t, propagation, "bus up", busUp("1"))
	cl := client.New(p.url, keyward.Secret(root))
	acc, err := cl.CreateAccount(t.Context(), keyward.AccountCreate{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	k1 := newKey(t, cl, acc.ID)

	proxy.Cut()
	eventually(t, 15*time.Second, "bus down in /metrics", busUp("0"))
	down := p.stderr.WaitLine(t, "the bus-down warning", nil, func(l string) bool { return strings.Contains(l, "invalidation bus is down") })
	if !strings.Contains(down, `"cache_ttl":"3s"`) && !strings.Contains(down, `"cache_ttl":3000000000`) {
		t.Errorf("bus-down warning does not give the shorter cache TTL: %s", down)
	}
	// Still serving, reads and writes, while Redis is down.
	for range 5 {
		if got := decision(t, p.url, root, k1.Secret); got != string(keyward.DecisionValid) {
			t.Fatalf("K1 with Redis down: %s", got)
		}
	}
	if _, err := cl.CreateAccount(t.Context(), keyward.AccountCreate{Name: "during-outage"}); err != nil {
		t.Errorf("admin write with Redis down: %v", err)
	}

	proxy.Restore()
	eventually(t, 15*time.Second, "bus up again in /metrics", busUp("1"))
	p.stderr.WaitLine(t, "the bus-back log", nil, func(l string) bool { return strings.Contains(l, "invalidation bus is back") })
	if n := strings.Count(p.stderr.String(), "invalidation bus is down"); n != 1 {
		t.Errorf("the bus-down warning was logged %d times, want once", n)
	}
	if got := metric(t, p.url, "keyward_invalidation_bus_reconnects_total"); got != "1" {
		t.Errorf("keyward_invalidation_bus_reconnects_total = %s, want 1 (each reconnect drops the cache)", got)
	}
	if got := decision(t, p.url, root, k1.Secret); got != string(keyward.DecisionValid) {
		t.Errorf("K1 after Redis is back: %s", got)
	}
	p.stop(t)
}

// metric returns the value of an unlabelled metric from /metrics.
func metric(t *testing.T, base, name string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/metrics", nil)
	_, b := do(t, req)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			return v
		}
	}
	return "(missing)"
}
