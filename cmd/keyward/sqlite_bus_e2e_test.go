package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/keywardtest"
)

// TestSQLiteGatewayHearsServe runs the real binary twice on one SQLite data
// directory, "keyward serve" and "keyward gateway --data", each with a cache
// TTL of ten minutes: a key revoked through serve is refused by the gateway
// within seconds, which only the SQLite bus (the polled invalidations
// table) can explain, while another key keeps passing. It logs how long the
// revocation took to arrive.
func TestSQLiteGatewayHearsServe(t *testing.T) {
	requireBinary(t)
	data := filepath.Join(t.TempDir(), "data")
	s := startBinary(t, data, "--cache-ttl", "10m")
	root := rootKey(t, s)

	up := newEchoUpstream(t)
	g := &proc{stdout: keywardtest.NewLines(), stderr: keywardtest.NewLines(), done: make(chan error, 1)}
	g.cmd = exec.Command(binary, "gateway", "--listen", "127.0.0.1:0", "--upstream", up.URL, "--data", data, "--cache-ttl", "10m", "--log-format", "json")
	g.cmd.Env = baseEnv()
	g.cmd.Dir = t.TempDir()
	g.cmd.Stdout, g.cmd.Stderr = g.stdout, g.stderr
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { g.done <- g.cmd.Wait() }()
	t.Cleanup(func() {
		if g.cmd.ProcessState == nil {
			g.cmd.Process.Kill()
			<-g.done
		}
		if t.Failed() {
			t.Logf("gateway log:\n%s", g.stderr)
		}
	})
	gw := gatewayURL(t, g)
	bus := g.stderr.WaitLine(t, "the gateway's bus", nil, func(l string) bool { return strings.Contains(l, `"msg":"invalidation bus"`) })
	var rec struct{ Bus string }
	if err := json.Unmarshal([]byte(bus), &rec); err != nil || !strings.HasPrefix(rec.Bus, "sqlite ") {
		t.Fatalf("the gateway's bus is %q, want the SQLite file's", rec.Bus)
	}
	g.stderr.WaitLine(t, "the gateway's subscription", nil, func(l string) bool { return strings.Contains(l, "listening for invalidations") })

	admin := client.New(s.url, keyward.Secret(root))
	acc, err := admin.CreateAccount(t.Context(), keyward.AccountCreate{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	revoked, kept := newKey(t, admin, acc.ID), newKey(t, admin, acc.ID)
	for _, k := range []*keyward.CreatedKey{revoked, kept} {
		if code, body := get(t, gw+"/x", "Authorization", "Bearer "+k.Secret); code != 200 {
			t.Fatalf("fresh key through the gateway: %d %s", code, body)
		}
	}
	if _, err := admin.RevokeKey(t.Context(), revoked.ID); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	eventually(t, 5*time.Second, "the gateway refusing a key revoked through serve", func() string {
		if code, _ := get(t, gw+"/x", "Authorization", "Bearer "+revoked.Secret); code != 401 {
			return fmt.Sprint(code)
		}
		return ""
	})
	t.Logf("the revocation reached the gateway in %v", time.Since(start))
	if code, body := get(t, gw+"/x", "Authorization", "Bearer "+kept.Secret); code != 200 {
		t.Errorf("a key that was not revoked, through the gateway: %d %s", code, body)
	}
	s.stop(t)
}
