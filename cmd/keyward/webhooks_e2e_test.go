package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/webhook/signature"
)

// hookReceiver counts the deliveries it accepted by webhook-id, after
// checking each signature.
type hookReceiver struct {
	t      *testing.T
	secret []byte

	mu    sync.Mutex
	count map[string]int
	types map[string]string
	fresh chan struct{} // closed and replaced on each delivery
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := signature.Verify(h.secret, r.Header, body, time.Now(), 0); err != nil {
		h.t.Errorf("delivery with a bad signature: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	id := r.Header.Get(signature.HeaderID)
	h.count[id]++
	h.types[id] = string(body)
	close(h.fresh)
	h.fresh = make(chan struct{})
	w.WriteHeader(http.StatusNoContent)
}

// TestWebhooksSurviveRestart announces events while the receiver is down,
// kills the server with the deliveries pending, brings the receiver up and
// restarts the server: each event arrives, once per webhook-id.
func TestWebhooksSurviveRestart(t *testing.T) {
	requireBinary(t)
	data := filepath.Join(t.TempDir(), "data")
	config := filepath.Join(t.TempDir(), "keyward.yaml")
	if err := os.WriteFile(config, []byte(`webhooks:
  allow_networks: [127.0.0.0/8]
  poll_interval: 20ms
  retry_base: 50ms
  retry_max: 200ms
  timeout: 2s
  max_attempts: 10000
`), 0o600); err != nil {
		t.Fatal(err)
	}
	// The receiver's address, taken and let go: nothing listens there yet,
	// so deliveries are refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	p := startBinary(t, data, "--config", config)
	root := strings.TrimPrefix(p.stdout.WaitLine(t, "the root key line", nil, func(l string) bool { return strings.HasPrefix(l, "root key: ") }), "root key: ")
	var created keyward.CreatedWebhookEndpoint
	binaryJSON(t, p.url, root, &created, "webhooks", "create", "--url", "http://"+addr+"/hook",
		"--event", keyward.EventKeyCreated, "--event", keyward.EventKeyRevoked)
	secret, err := signature.ParseSecret(created.Secret)
	if err != nil {
		t.Fatalf("created secret: %v", err)
	}
	var acc keyward.Account
	binaryJSON(t, p.url, root, &acc, "accounts", "create", "--name", "acme")
	var keys [3]keyward.CreatedKey
	for i := range keys {
		binaryJSON(t, p.url, root, &keys[i], "keys", "create", "--account", acc.ID, "--role", "account_admin", "--name", fmt.Sprint("k", i))
	}
	runBinaryOK(t, p.url, root, "keys", "revoke", keys[0].ID)
	const events = 4 // three key.created, one key.revoked

	// Every delivery has been tried and refused at least once.
	waitDeliveries(t, p.url, root, created.Endpoint.ID, func(ds []*keyward.WebhookDelivery) bool {
		if len(ds) != events {
			return false
		}
		for _, d := range ds {
			if d.State != keyward.DeliveryPending || d.Attempts == 0 || d.LastError == "" {
				return false
			}
		}
		return true
	})
	p.cmd.Process.Kill()
	<-p.done

	h := &hookReceiver{t: t, secret: secret, count: map[string]int{}, types: map[string]string{}, fresh: make(chan struct{})}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("taking the receiver's address back: %v", err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	p = startBinary(t, data, "--config", config)
	ds := waitDeliveries(t, p.url, root, created.Endpoint.ID, func(ds []*keyward.WebhookDelivery) bool {
		for _, d := range ds {
			if d.State != keyward.DeliveryDelivered {
				return false
			}
		}
		return len(ds) == events
	})
	p.stop(t)

	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.count) != events {
		t.Fatalf("receiver got %d distinct webhook-ids, want %d: %v", len(h.count), events, h.count)
	}
	revoked := 0
	for _, d := range ds {
		if n := h.count[d.EventID]; n != 1 {
			t.Errorf("event %s (%s) received %d times, want exactly once", d.EventID, d.EventType, n)
		}
		if d.EventType == keyward.EventKeyRevoked {
			revoked++
			if !strings.Contains(h.types[d.EventID], keys[0].ID) {
				t.Errorf("key.revoked body %s does not name the revoked key %s", h.types[d.EventID], keys[0].ID)
			}
		}
	}
	if revoked != 1 {
		t.Errorf("%d key.revoked deliveries, want 1", revoked)
	}
}

// waitDeliveries polls an endpoint's delivery log through the CLI until
// done accepts it, and returns it.
func waitDeliveries(t *testing.T, url, apiKey, endpointID string, done func([]*keyward.WebhookDelivery) bool) []*keyward.WebhookDelivery {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		var l keyward.WebhookDeliveryList
		binaryJSON(t, url, apiKey, &l, "webhooks", "deliveries", endpointID)
		if done(l.Items) {
			return l.Items
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery log never reached the expected state: %+v", l.Items)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func runBinaryOK(t *testing.T, url, apiKey string, args ...string) {
	t.Helper()
	if r := runBinary(t, url, apiKey, args...); r.code != 0 {
		t.Fatalf("keyward %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
	}
}
