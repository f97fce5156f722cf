package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/admin"
	"github.com/keyward/keyward/credits"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/lifecycle"
	"github.com/keyward/keyward/usage"
	"github.com/keyward/keyward/verify"
	"github.com/keyward/keyward/webhook"
	"github.com/keyward/keyward/webhook/signature"
)

// TestSimulatedDay runs a day of key activity on one SQLite store with an
// injected clock, hour by hour: verifications, a key expiring, credits
// running out, a webhook receiver taken down and brought back, a leaked
// key reported. Then the audit log is exported and verified, a row is
// tampered with and the tampering found, and a usage report and its chart
// are produced.
func TestSimulatedDay(t *testing.T) {
	ctx := t.Context()
	var (
		mu  sync.Mutex
		now = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	quiet := slog.New(slog.DiscardHandler)
	store := keywardtest.NewSQLiteStore(t)
	ring := keywardtest.NewKeyring(t)
	ledger := credits.NewStoreLedger(store)
	agg := usage.New(store, usage.Config{Now: clock, Logger: quiet})
	loopback := webhook.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	sender, err := webhook.New(webhook.Config{Store: store, Opener: ring, Guard: loopback, Settings: webhook.Settings{RetryBase: time.Minute, RetryMax: time.Hour}, Now: clock, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	engine, err := verify.New(verify.Config{Store: store, Hasher: keywardtest.NewHasher(t), Credits: ledger,
		Signals: usage.Tee(agg, sender), Now: clock, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	svc := admin.New(admin.Config{Store: store, Hasher: keywardtest.NewHasher(t), Verifier: engine, Credits: ledger,
		Sealer: ring, WebhookGuard: loopback, Now: clock, Logger: quiet})
	jobs, err := lifecycle.New(lifecycle.Config{Store: store, Actions: svc.Jobs(), Credits: ledger, Now: clock, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	_, rootKey, err := svc.Keys.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	root := keyward.NewContextWithIdentity(ctx, keyward.IdentityOf(rootKey, ""))

	// The receiver: an address that refuses connections while it is down.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	hook, err := svc.Webhooks.CreateWebhookEndpoint(root, keyward.NewWebhookEndpoint{URL: "http://" + addr + "/hook"})
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := signature.ParseSecret(hook.Secret)
	var (
		rmu      sync.Mutex
		received = map[string]int{} // webhook-id: count
		types    = map[string]int{} // event type: count
	)
	receiver := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := signature.Verify(secret, r.Header, body, clock(), 0); err != nil {
			t.Errorf("bad signature: %v", err)
		}
		var p webhook.Payload
		json.Unmarshal(body, &p)
		rmu.Lock()
		received[r.Header.Get("webhook-id")]++
		types[p.Type]++
		rmu.Unlock()
	})}
	go receiver.Serve(ln)

	acc, err := svc.Tenancy.CreateAccount(root, keyward.AccountCreate{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	expires := now.Add(12 * time.Hour)
	mustKey := func(c keyward.KeyCreate) *keyward.CreatedKey {
		k, err := svc.Keys.CreateKey(root, c)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	admin := func(name string) keyward.KeyCreate {
		return keyward.KeyCreate{AccountID: acc.ID, Role: keyward.RoleAccountAdmin, Name: name}
	}
	leaked, backup := mustKey(admin("leaked")), mustKey(admin("backup"))
	short := admin("short")
	short.ExpiresAt = &expires
	shortLived := mustKey(short)
	meteredKey := admin("metered")
	meteredKey.Credits = &keyward.Credits{Remaining: 5}
	metered := mustKey(meteredKey)
	verifyAt := func(raw string) keyward.Decision {
		return engine.Verify(ctx, verify.Request{Key: raw}).Decision
	}

	live := leaked
	for hour := range 24 {
		for range 3 {
			if d := verifyAt(live.Secret); d != keyward.DecisionValid {
				t.Fatalf("hour %d: key %s: %s", hour, live.Name, d)
			}
		}
		verifyAt(keywardtest.BreakChecksum(backup.Secret))
		verifyAt(metered.Secret)
		if d := verifyAt(shortLived.Secret); (hour < 12) != (d == keyward.DecisionValid) {
			t.Fatalf("hour %d: short-lived key %s", hour, d)
		}
		switch hour {
		case 11:
			receiver.Close() // taken down: the key.expired of hour 12 fails and waits
		case 13:
			if ln, err = net.Listen("tcp", addr); err != nil {
				t.Fatalf("bringing the receiver back: %v", err)
			}
			receiver = &http.Server{Handler: receiver.Handler}
			go receiver.Serve(ln)
		case 15:
			res, err := svc.Abuse.ReportLeaks(root, keyward.LeakReport{Tokens: []keyward.LeakedToken{{Token: leaked.Secret, Source: "github"}}})
			if err != nil || res.Results[0].Status != keyward.LeakRevoked {
				t.Fatalf("leak report: %+v, %v", res, err)
			}
			if d := verifyAt(leaked.Secret); d != keyward.DecisionRevoked {
				t.Fatalf("leaked key after the report: %s, want REVOKED", d)
			}
			live = backup
		}
		if _, err := jobs.RunOnce(ctx); err != nil {
			t.Fatalf("hour %d: jobs: %v", hour, err)
		}
		if err := agg.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := sender.RunOnce(ctx); err != nil {
			t.Fatalf("hour %d: webhooks: %v", hour, err)
		}
		mu.Lock()
		now = now.Add(time.Hour)
		mu.Unlock()
	}
	receiver.Close()

	// Every event reached the receiver once, the ones announced while it
	// was down included.
	rmu.Lock()
	for id, n := range received {
		if n != 1 {
			t.Errorf("webhook-id %s received %d times, want once", id, n)
		}
	}
	for typ, want := range map[string]int{keyward.EventKeyCreated: 4, keyward.EventKeyExpired: 1,
		keyward.EventQuotaExhausted: 1, keyward.EventKeyLeaked: 1} {
		if types[typ] != want {
			t.Errorf("%s received %d times, want %d (all: %v)", typ, types[typ], want, types)
		}
	}
	rmu.Unlock()
	ds, err := svc.Webhooks.WebhookDeliveries(root, hook.Endpoint.ID, keyward.Page{Limit: keyward.MaxPageLimit})
	if err != nil {
		t.Fatal(err)
	}
	retried := false
	for _, d := range ds.Items {
		if d.State != keyward.DeliveryDelivered {
			t.Errorf("delivery %+v not delivered", d)
		}
		retried = retried || d.Attempts > 1
	}
	if !retried {
		t.Error("no delivery needed a retry: the receiver was never down when one was due")
	}

	// The audit log: exported, verified, tampered with, found out.
	var export bytes.Buffer
	for p := (keyward.Page{}); ; {
		l, err := svc.Audit.AuditEntries(root, keyward.AuditFilter{}, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range l.Items {
			b, _ := json.Marshal(e)
			export.Write(append(b, '\n'))
		}
		if p.After = l.Next; p.After == "" {
			break
		}
	}
	if !strings.Contains(export.String(), `"action":"key.leaked"`) || !strings.Contains(export.String(), `"system":"keyward"`) {
		t.Errorf("the audit export lacks the leak or the jobs' entries:\n%s", export.String())
	}
	if v, err := svc.Audit.VerifyAudit(root, nil); err != nil || !v.OK {
		t.Fatalf("audit verify of the day: %+v, %v", v, err)
	}
	db, err := sql.Open("sqlite", store.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "UPDATE audit_log SET target_id = 'key_someone_else' WHERE seq = 4"); err != nil {
		t.Fatal(err)
	}
	if v, err := svc.Audit.VerifyAudit(root, nil); err != nil || v.OK || v.FirstBad != 4 {
		t.Fatalf("audit verify after tampering with entry 4: %+v, %v", v, err)
	}

	// The usage report and its chart.
	if err := engine.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := agg.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := agg.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	report, err := svc.Audit.Usage(root, keyward.UsageFilter{AccountID: acc.ID, Granularity: keyward.UsageHour})
	if err != nil {
		t.Fatal(err)
	}
	valid := map[string]int64{}
	denied := int64(0)
	for _, r := range report.Items {
		if r.Code == keyward.DecisionValid {
			valid[r.KeyID] += r.Count
		} else {
			denied += r.Count
		}
	}
	if valid[leaked.ID] != 16*3 || valid[backup.ID] != 8*3 || valid[metered.ID] != 5 || valid[shortLived.ID] != 12 {
		t.Errorf("valid uses per key = %v, want leaked 48, backup 24, metered 5, short-lived 12", valid)
	}
	if denied == 0 {
		t.Errorf("no denied verifications counted for the account: %+v", report.Items)
	}
	chart := filepath.Join(t.TempDir(), "usage.svg")
	if err := writeChart(chart, report); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(chart); err != nil || !bytes.Contains(b, []byte("<svg")) {
		t.Fatalf("chart: %v, %.80s", err, b)
	}
}
