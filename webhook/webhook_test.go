package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/verify"
	"github.com/keyward/keyward/webhook"
	"github.com/keyward/keyward/webhook/signature"
)

// receiver is a webhook endpoint that answers with the statuses queued in
// replies (then 204) and verifies every request's signature with a
// verifier written from the Standard Webhooks spec, not package signature.
type receiver struct {
	t      *testing.T
	secret string
	srv    *httptest.Server

	mu      sync.Mutex
	replies []func(http.ResponseWriter)
	got     []received
}

type received struct {
	id   string
	body webhook.Payload
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := verifyFromSpec(r.secret, req.Header, body); err != nil {
		r.t.Errorf("delivery fails the spec's verification: %v", err)
	}
	var p webhook.Payload
	if err := json.Unmarshal(body, &p); err != nil {
		r.t.Errorf("delivery body %q: %v", body, err)
	}
	r.got = append(r.got, received{id: req.Header.Get("webhook-id"), body: p})
	if len(r.replies) > 0 {
		reply := r.replies[0]
		r.replies = r.replies[1:]
		reply(w)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) reply(f ...func(http.ResponseWriter)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.replies = append(r.replies, f...)
}

func (r *receiver) received() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

func status(code int, headers ...string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.WriteHeader(code)
	}
}

// verifyFromSpec checks a delivery as the spec describes: the signature is
// "v1," + base64(HMAC-SHA256(base64-decoded secret after "whsec_",
// id + "." + timestamp + "." + body)).
func verifyFromSpec(secret string, h http.Header, body []byte) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(h.Get("webhook-id") + "." + h.Get("webhook-timestamp") + "."))
	m.Write(body)
	want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return nil
		}
	}
	return &keyward.Error{Code: keyward.EUNAUTHORIZED, Message: "no signature matches " + want}
}

// env is a store with one endpoint at a receiver, and a sender with an
// injected clock that allows loopback.
type env struct {
	store  keyward.Store
	ring   *keyring.Keyring
	now    time.Time
	sender *webhook.Sender
	rcv    *receiver
	ep     *keyward.WebhookEndpoint
}

func newEnv(t *testing.T, cfg webhook.Config) *env {
	t.Helper()
	e := &env{store: keywardtest.NewSQLiteStore(t), ring: keywardtest.NewKeyring(t), now: keywardtest.Now(), rcv: newReceiver(t)}
	secret, err := signature.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	e.rcv.secret = secret.Reveal()
	e.ep = &keyward.WebhookEndpoint{ID: apikey.NewID("whe"), URL: e.rcv.srv.URL + "/hook", CreatedAt: e.now, UpdatedAt: e.now}
	if e.ep.SecretVersion, e.ep.SealedSecret, err = e.ring.Seal([]byte(secret), keyward.WebhookSecretAD(e.ep.ID)); err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateWebhookEndpoint(t.Context(), keyward.Change{}, e.ep); err != nil {
		t.Fatal(err)
	}
	cfg.Store, cfg.Opener, cfg.Now = e.store, e.ring, func() time.Time { return e.now }
	if cfg.Guard.Allow == nil {
		cfg.Guard.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	}
	if e.sender, err = webhook.New(cfg); err != nil {
		t.Fatal(err)
	}
	return e
}

// announce writes an event to the outbox.
func (e *env) announce(t *testing.T, typ string) *keyward.Event {
	t.Helper()
	ev := &keyward.Event{ID: apikey.NewID("msg"), Type: typ, Time: e.now, Data: json.RawMessage(`{"key_id":"key_1"}`)}
	if err := e.store.AppendEvents(t.Context(), []*keyward.Event{ev}); err != nil {
		t.Fatal(err)
	}
	return ev
}

func (e *env) run(t *testing.T) int {
	t.Helper()
	n, err := e.sender.RunOnce(t.Context())
	if err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	return n
}

func (e *env) delivery(t *testing.T) *keyward.WebhookDelivery {
	t.Helper()
	ds, _, err := e.store.WebhookDeliveries(t.Context(), e.ep.ID, keyward.Page{})
	if err != nil || len(ds) != 1 {
		t.Fatalf("delivery log = %v, %v; want one delivery", ds, err)
	}
	return ds[0]
}

func TestDeliverySignedAndLogged(t *testing.T) {
	e := newEnv(t, webhook.Config{})
	ev := e.announce(t, keyward.EventKeyRevoked)
	if n := e.run(t); n != 1 {
		t.Fatalf("RunOnce made %d attempts, want 1", n)
	}
	got := e.rcv.received()
	if len(got) != 1 || got[0].id != ev.ID || got[0].body.Type != keyward.EventKeyRevoked ||
		!got[0].body.Timestamp.Equal(ev.Time) || string(got[0].body.Data) != string(ev.Data) {
		t.Fatalf("received %+v, want event %s with its type, time and data", got, ev.ID)
	}
	d := e.delivery(t)
	if d.State != keyward.DeliveryDelivered || d.Attempts != 1 || d.LastStatus != http.StatusNoContent {
		t.Fatalf("delivery = %+v, want delivered after 1 attempt with 204", d)
	}
	if n := e.run(t); n != 0 || len(e.rcv.received()) != 1 {
		t.Fatalf("a delivered event was sent again: %d attempts", n)
	}
}

func TestRetryHonoursRetryAfterThenBacksOff(t *testing.T) {
	base := time.Minute
	e := newEnv(t, webhook.Config{Settings: webhook.Settings{RetryBase: base, RetryMax: time.Hour}})
	e.rcv.reply(status(http.StatusServiceUnavailable, "Retry-After", "120"), status(http.StatusInternalServerError))
	e.announce(t, keyward.EventKeyCreated)
	start := e.now

	e.run(t)
	d := e.delivery(t)
	if d.State != keyward.DeliveryPending || d.Attempts != 1 || d.LastStatus != 503 || !d.NextAttemptAt.Equal(start.Add(120*time.Second)) {
		t.Fatalf("after a 503 with Retry-After: 120: %+v, want pending, next attempt at +120s", d)
	}
	e.now = start.Add(119 * time.Second)
	if n := e.run(t); n != 0 {
		t.Fatalf("%d attempts before Retry-After passed", n)
	}
	e.now = start.Add(120 * time.Second)
	e.run(t)
	d = e.delivery(t)
	// The second failure has no Retry-After: backoff after 2 attempts is
	// 2*base, jittered to between base and 2*base.
	wait := d.NextAttemptAt.Sub(e.now)
	if d.State != keyward.DeliveryPending || d.Attempts != 2 || d.LastStatus != 500 || wait < base || wait > 2*base {
		t.Fatalf("after a 500: %+v (next in %s), want pending, next in [%s, %s]", d, wait, base, 2*base)
	}
	e.now = d.NextAttemptAt
	e.run(t)
	if d = e.delivery(t); d.State != keyward.DeliveryDelivered || d.Attempts != 3 {
		t.Fatalf("third attempt: %+v, want delivered", d)
	}
	got := e.rcv.received()
	if len(got) != 3 || got[0].id != got[2].id {
		t.Fatalf("received %d requests; every attempt must carry the same webhook-id", len(got))
	}
}

func TestGoneDisablesEndpointAndTheDeliveryWaits(t *testing.T) {
	e := newEnv(t, webhook.Config{})
	e.rcv.reply(status(http.StatusGone))
	ev := e.announce(t, keyward.EventKeyCreated)
	e.run(t)
	if d := e.delivery(t); d.State != keyward.DeliveryPending || d.LastStatus != http.StatusGone {
		t.Fatalf("after 410: %+v, want pending until the endpoint is enabled again", d)
	}
	ep, err := e.store.WebhookEndpoint(t.Context(), e.ep.ID)
	if err != nil || !ep.Disabled || !strings.Contains(ep.DisabledReason, "410") {
		t.Fatalf("endpoint after 410 = %+v, %v; want disabled naming 410", ep, err)
	}
	e.announce(t, keyward.EventKeyRevoked)
	e.now = e.now.Add(time.Hour)
	if n := e.run(t); n != 0 || len(e.rcv.received()) != 1 {
		t.Fatalf("a disabled endpoint got %d more attempts", n)
	}
	if _, err := e.store.UpdateWebhookEndpoint(t.Context(), keyward.Change{}, e.ep.ID, func(ep *keyward.WebhookEndpoint) error {
		ep.Disabled, ep.DisabledReason = false, ""
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n := e.run(t); n != 2 {
		t.Fatalf("enabled again: %d attempts, want the delivery that met the 410 and the one that waited", n)
	}
	if got := e.rcv.received(); len(got) != 3 || got[0].id != ev.ID || (got[1].id != ev.ID && got[2].id != ev.ID) {
		t.Fatalf("received %+v, want %s again after enabling", got, ev.ID)
	}
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	e := newEnv(t, webhook.Config{Settings: webhook.Settings{MaxAttempts: 2, RetryBase: time.Second}})
	e.rcv.reply(status(500), status(500), status(500))
	e.announce(t, keyward.EventKeyCreated)
	e.run(t)
	e.now = e.now.Add(time.Hour)
	e.run(t)
	if d := e.delivery(t); d.State != keyward.DeliveryFailed || d.Attempts != 2 {
		t.Fatalf("after MaxAttempts failures: %+v, want failed after 2", d)
	}
	e.now = e.now.Add(24 * time.Hour)
	if n := e.run(t); n != 0 {
		t.Fatalf("%d attempts after giving up", n)
	}
}

func TestRedirectsNotFollowed(t *testing.T) {
	e := newEnv(t, webhook.Config{})
	target := newReceiver(t)
	e.rcv.reply(status(http.StatusFound, "Location", target.srv.URL+"/elsewhere"))
	e.announce(t, keyward.EventKeyCreated)
	e.run(t)
	d := e.delivery(t)
	if d.State != keyward.DeliveryPending || d.LastStatus != http.StatusFound || !strings.Contains(d.LastError, "redirects are not followed") {
		t.Fatalf("after a redirect: %+v, want pending with an error saying redirects are not followed", d)
	}
	if n := len(target.received()); n != 0 {
		t.Fatalf("the redirect target got %d requests", n)
	}
}

func TestInternalAddressRefusedUnlessAllowed(t *testing.T) {
	// Allow only a network the receiver is not on: loopback is refused.
	e := newEnv(t, webhook.Config{Guard: webhook.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("10.9.8.0/24")}}})
	e.announce(t, keyward.EventKeyCreated)
	e.run(t)
	d := e.delivery(t)
	if d.State != keyward.DeliveryPending || d.LastStatus != 0 || !strings.Contains(d.LastError, "internal network") {
		t.Fatalf("delivery to loopback = %+v, want refused before connecting", d)
	}
	if n := len(e.rcv.received()); n != 0 {
		t.Fatalf("the loopback receiver got %d requests", n)
	}
}

func TestGuardCheckURL(t *testing.T) {
	var g webhook.Guard
	for _, u := range []string{
		"http://127.0.0.1/x", "http://localhost:8080/", "https://api.localhost/", "http://10.0.0.1/", "http://192.168.1.1/",
		"http://172.16.0.1/", "http://169.254.169.254/latest/meta-data", "http://[::1]/", "http://[::ffff:127.0.0.1]/",
		"http://[fd00::1]/", "http://100.64.0.1/", "http://0.0.0.0/", "http://[::]/", "http://224.0.0.1/",
		"http://[::7f00:1]/", "http://[2002:7f00:1::]/", "http://[2001:0:7f00:1::]/", "http://[fec0::1]/", "http://192.88.99.1/",
		"ftp://example.com/", "example.com/hook", "https://user:pw@example.com/", "https://example.com/#x",
	} {
		if err := g.CheckURL(u); keyward.ErrorCode(err) != keyward.EINVALID {
			t.Errorf("CheckURL(%q) = %v, want EINVALID", u, err)
		}
	}
	for _, u := range []string{"https://hooks.example.com/keyward", "http://8.8.8.8/", "https://[2606:4700::1111]/"} {
		if err := g.CheckURL(u); err != nil {
			t.Errorf("CheckURL(%q) = %v, want nil", u, err)
		}
	}
	allow := webhook.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	if err := allow.CheckURL("http://127.0.0.1:9000/hook"); err != nil {
		t.Errorf("allowed loopback refused: %v", err)
	}
}

func TestBackoff(t *testing.T) {
	base, max := 30*time.Second, time.Hour
	for _, c := range []struct {
		n    int
		want time.Duration
	}{{1, base}, {2, 2 * base}, {4, 8 * base}, {8, max}, {100, max}} {
		if lo := webhook.Backoff(base, max, c.n, 0); lo != c.want/2 {
			t.Errorf("Backoff(n=%d, r=0) = %s, want %s", c.n, lo, c.want/2)
		}
		if hi := webhook.Backoff(base, max, c.n, 0.999999); hi > c.want || hi < c.want*99/100 {
			t.Errorf("Backoff(n=%d, r≈1) = %s, want just under %s", c.n, hi, c.want)
		}
	}
}

func TestQuotaExhaustedSignalsBecomeEvents(t *testing.T) {
	e := newEnv(t, webhook.Config{})
	e.sender.Signal(keyward.Signal{Kind: keyward.SignalFailure, KeyID: "key_other", At: e.now})
	e.sender.Signal(keyward.Signal{Kind: keyward.SignalQuotaExhausted, KeyID: "key_1", AccountID: "acc_1", At: e.now})
	e.run(t)
	got := e.rcv.received()
	if len(got) != 1 || got[0].body.Type != keyward.EventQuotaExhausted {
		t.Fatalf("received %+v, want one quota.exhausted", got)
	}
	var data struct {
		KeyID     string `json:"key_id"`
		AccountID string `json:"account_id"`
	}
	if err := json.Unmarshal(got[0].body.Data, &data); err != nil || data.KeyID != "key_1" || data.AccountID != "acc_1" {
		t.Fatalf("quota.exhausted data = %s (%v)", got[0].body.Data, err)
	}
}

func TestPublicErrorHidesTheDetail(t *testing.T) {
	detail := map[string]error{
		"the endpoint's host name could not be resolved": &net.DNSError{Err: "no such host", Name: "hooks.corp", Server: "10.0.0.2:53"},
		"the endpoint did not answer in time":            &url.Error{Op: "Post", URL: "https://hooks.example.com", Err: context.DeadlineExceeded},
		"the TLS handshake with the endpoint failed":     &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}},
		"the endpoint could not be reached":              &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 443}, Err: syscall.ECONNREFUSED},
	}
	for want, err := range detail {
		stored := webhook.SendReason(err) + ": sending: " + err.Error()
		if got := webhook.PublicError(0, stored); got != want {
			t.Errorf("PublicError(0, %q) = %q, want %q", stored, got, want)
		}
	}
	for _, c := range []struct {
		status      int
		stored, out string
	}{
		{0, "", ""},
		{0, "dial tcp 10.0.0.7:443: connect: connection refused", "the attempt failed before the endpoint answered"},
		{503, "endpoint answered 503 Service Unavailable", "endpoint answered 503 Service Unavailable"},
		{302, `302 Found to "http://10.0.0.7/x": redirects are not followed; point the endpoint at the final URL`,
			"endpoint answered 302 Found: redirects are not followed; point the endpoint at the final URL"},
	} {
		if got := webhook.PublicError(c.status, c.stored); got != c.out {
			t.Errorf("PublicError(%d, %q) = %q, want %q", c.status, c.stored, got, c.out)
		}
	}
}

// TestRateLimitedCoalescedPerKeyAndWindow runs a flood of verifications of
// two keys through a real engine whose signals go to the sender: each key
// refused by its limit is announced once per window of the limit, however
// many calls the limit refuses.
func TestRateLimitedCoalescedPerKeyAndWindow(t *testing.T) {
	e := newEnv(t, webhook.Config{})
	h := keywardtest.NewHasher(t)
	acc := keywardtest.NewAccount(t, e.store, "acme")
	limit := keyward.RateLimit{Name: "per_minute", Limit: 2, Window: keyward.Duration(time.Minute)}
	k1 := keywardtest.NewKey(t, e.store, h, keyward.Key{Role: keyward.RoleAccountAdmin, AccountID: acc.ID, Name: "one", RateLimits: []keyward.RateLimit{limit}})
	k2 := keywardtest.NewKey(t, e.store, h, keyward.Key{Role: keyward.RoleAccountAdmin, AccountID: acc.ID, Name: "two", RateLimits: []keyward.RateLimit{limit}})
	engine, err := verify.New(verify.Config{Store: e.store, Hasher: h, Signals: e.sender, Now: func() time.Time { return e.now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Close(context.Background()) })
	flood := func(k *keyward.CreatedKey, n int) (limited int) {
		for range n {
			if engine.Verify(t.Context(), verify.Request{Key: k.Secret}).Decision == keyward.DecisionRateLimited {
				limited++
			}
		}
		return limited
	}
	limitedEvents := func() (keys []string) {
		for _, r := range e.rcv.received() {
			if r.body.Type != keyward.EventKeyRateLimited {
				continue
			}
			var data struct {
				KeyID     string            `json:"key_id"`
				AccountID string            `json:"account_id"`
				Limit     keyward.RateLimit `json:"limit"`
			}
			if err := json.Unmarshal(r.body.Data, &data); err != nil || data.AccountID != acc.ID || data.Limit != limit {
				t.Errorf("key.rate_limited data %s (%v), want the account and the limit %+v", r.body.Data, err, limit)
			}
			keys = append(keys, data.KeyID)
		}
		return keys
	}

	if n := flood(k1, 200); n != 198 {
		t.Fatalf("%d of 200 calls rate limited, want 198", n)
	}
	flood(k2, 10)
	e.run(t)
	if got := limitedEvents(); len(got) != 2 || !slices.Contains(got, k1.ID) || !slices.Contains(got, k2.ID) {
		t.Fatalf("key.rate_limited for %v, want one for each key", got)
	}
	// Within the window, more refusals announce nothing.
	e.now = e.now.Add(30 * time.Second)
	flood(k1, 50)
	e.run(t)
	if got := limitedEvents(); len(got) != 2 {
		t.Fatalf("key.rate_limited for %v after more refusals within the window, want no more", got)
	}
	// A window later, a refusal is announced again.
	e.now = e.now.Add(31 * time.Second)
	if n := flood(k1, 50); n == 0 {
		t.Fatal("no call refused a window later")
	}
	e.run(t)
	if got := limitedEvents(); len(got) != 3 || got[2] != k1.ID {
		t.Fatalf("key.rate_limited for %v a window later, want a third, for %s", got, k1.ID)
	}
	// A key that is not limited announces nothing.
	e.sender.Signal(keyward.Signal{Kind: keyward.SignalFailure, Decision: keyward.DecisionRevoked, KeyID: k2.ID, At: e.now})
	e.run(t)
	if got := limitedEvents(); len(got) != 3 {
		t.Fatalf("key.rate_limited for %v after a refusal of another kind", got)
	}
}

// TestRateLimitedMemoryBounded: the memory of announced keys is bounded;
// beyond it refusals are dropped and counted, and room comes back as
// windows end.
func TestRateLimitedMemoryBounded(t *testing.T) {
	e := newEnv(t, webhook.Config{})
	if _, err := e.store.DeleteWebhookEndpoint(t.Context(), keyward.Change{}, e.ep.ID); err != nil { // only the outbox is written
		t.Fatal(err)
	}
	limit := keyward.RateLimit{Name: "l", Limit: 1, Window: keyward.Duration(time.Minute)}
	signal := func(i int) {
		e.sender.Signal(keyward.Signal{Kind: keyward.SignalFailure, Decision: keyward.DecisionRateLimited,
			KeyID: fmt.Sprintf("key_%d", i), AccountID: "acc_1", At: e.now, Limit: limit})
	}
	for i := range webhook.MaxLimited + 10 {
		signal(i)
		if i%webhook.SignalQueue == webhook.SignalQueue-1 {
			e.run(t) // empties the queue
		}
	}
	e.run(t)
	if got := e.sender.Dropped(); got != 10 {
		t.Fatalf("dropped = %v, want the 10 beyond the bound", got)
	}
	e.now = e.now.Add(time.Minute)
	signal(webhook.MaxLimited + 20)
	e.run(t)
	if got := e.sender.Dropped(); got != 10 {
		t.Fatalf("dropped = %v after the windows ended, want no more", got)
	}
}
