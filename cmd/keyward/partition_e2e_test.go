package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/client"
)

// TestPartitionRedis and TestPartitionListenNotify cut one instance off
// from both its store and its bus with proxies that stall (the connections
// stay open, nothing flows, nothing tells either side), then revoke a key
// on the other instance. The cut-off instance keeps its cached answer at
// most max_stale after it last read the key, then answers 503 (forward-auth,
// as the gateway does, with Retry-After) rather than VALID for as long as
// the partition lasts; once the partition heals it knows the key is
// revoked.
//
// The two wait on real time (max_stale) and run in parallel with each
// other; only the first uses Redis, whose counters the package's other
// tests share, so they stay the package's only parallel tests.
func TestPartitionRedis(t *testing.T) {
	t.Parallel()
	testPartition(t, true)
}

func TestPartitionListenNotify(t *testing.T) {
	t.Parallel()
	testPartition(t, false)
}

func testPartition(t *testing.T, withRedis bool) {
	const maxStale = 6 * time.Second
	c := newCluster(t, withRedis)
	a := c.start(t, c.env())
	root := rootKey(t, a)

	storeURL, storeProxy := viaProxy(t, c.storeURL, "5432")
	env := []string{"KEYWARD_STORE=" + storeURL, "KEYWARD_CACHE_TTL=3s", "KEYWARD_MAX_STALE=" + maxStale.String()}
	stall, restore := storeProxy.Stall, storeProxy.Restore
	if withRedis {
		redisURL, redisProxy := viaProxy(t, c.redisURL, "6379")
		env = append(env, "KEYWARD_REDIS_URL="+redisURL)
		stall = func() { storeProxy.Stall(); redisProxy.Stall() }
		restore = func() { storeProxy.Restore(); redisProxy.Restore() }
	}
	// The key exists before B starts, so no invalidation of its creation
	// can reach B after B cached it: B's cache changes only by B's loads.
	ca := client.New(a.url, keyward.Secret(root))
	acc, err := ca.CreateAccount(t.Context(), keyward.AccountCreate{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	k := newKey(t, ca, acc.ID)
	b := c.start(t, c.env(env...))
	b.stderr.WaitLine(t, "the bus subscription", nil, func(l string) bool { return strings.Contains(l, "listening for invalidations") })
	forwardAuth := func() (int, string) {
		req, _ := http.NewRequest("GET", b.url+"/v1/forward-auth", nil)
		req.Header.Set("Authorization", "Bearer "+k.Secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("forward-auth on B: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	if s, _ := forwardAuth(); s != http.StatusOK {
		t.Fatalf("forward-auth on B before the partition: %d", s)
	}

	stall()
	if _, err := ca.RevokeKey(t.Context(), k.ID); err != nil {
		t.Fatal(err)
	}
	// Polled, not timed: the deadline is far above max_stale plus a
	// reload's timeout, and far below the 27 VALID answers over 62 s this
	// instance gave before the bound existed.
	eventually(t, maxStale+20*time.Second, "the cut-off instance refusing the revoked key with 503", func() string {
		s, retry := forwardAuth()
		if s != http.StatusServiceUnavailable || retry == "" {
			return fmt.Sprintf("HTTP %d, Retry-After %q", s, retry)
		}
		return ""
	})
	for range 3 {
		if s, _ := forwardAuth(); s == http.StatusOK {
			t.Fatalf("the revoked key passed forward-auth on the cut-off instance again")
		}
	}

	restore()
	// A liveness bound, not a timing. The statements the stall swallowed
	// hang until their deadlines; background jobs once had none, held the
	// whole connection pool for ever and kept B answering 503 after the
	// heal (lifecycle.JobTimeout, usage.FlushTimeout and
	// webhook.StoreTimeout bound them now, at 30 s).
	eventually(t, 60*time.Second, "the revoked key refused once the partition heals", func() string {
		if s, _ := forwardAuth(); s != http.StatusUnauthorized {
			return fmt.Sprint(s)
		}
		return ""
	})
	a.stop(t)
	b.stop(t)
}
