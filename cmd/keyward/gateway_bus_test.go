package main

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/client"
)

// TestGatewayJoinsInvalidationBus: a gateway verifying in process against
// the shared store hears revocations made through serve at once, not after
// its cache TTL (ten minutes here, so only the bus can explain a refusal).
func TestGatewayJoinsInvalidationBus(t *testing.T) {
	c := newCluster(t, true)
	env := map[string]string{
		"KEYWARD_STORE":       c.storeURL,
		"KEYWARD_PEPPER":      c.pepper,
		"KEYWARD_MASTER_KEYS": "1:" + c.pepper,
		"KEYWARD_BUS_CHANNEL": c.channel,
		"KEYWARD_REDIS_URL":   c.redisURL,
		"KEYWARD_CACHE_TTL":   "10m",
	}
	s := startServer(t, env)
	up := newEchoUpstream(t)
	g := startGateway(t, env, "--upstream", up.URL, "--data", filepath.Join(t.TempDir(), "gw"))

	admin := client.New(s.url, keyward.Secret(s.rootKey))
	a, err := admin.CreateAccount(t.Context(), keyward.AccountCreate{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	k := newKey(t, admin, a.ID)
	if code, body := get(t, g.url+"/x", "Authorization", "Bearer "+k.Secret); code != 200 {
		t.Fatalf("fresh key through the gateway: %d %s", code, body)
	}
	if _, err := admin.RevokeKey(t.Context(), k.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the gateway refusing a key revoked through serve", func() string {
		if code, _ := get(t, g.url+"/x", "Authorization", "Bearer "+k.Secret); code != 401 {
			return fmt.Sprint(code)
		}
		return ""
	})
}
