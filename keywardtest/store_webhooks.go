package keywardtest

import (
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// newEndpoint returns an endpoint of account (global for "") receiving
// events (all when none).
func newEndpoint(account string, events ...string) *keyward.WebhookEndpoint {
	return &keyward.WebhookEndpoint{
		ID: apikey.NewID("whe"), AccountID: account, URL: "https://hooks.example.com/" + account,
		Events: events, SealedSecret: []byte("sealed"), SecretVersion: 1,
		CreatedBy: "key_x", CreatedAt: fixedTime, UpdatedAt: fixedTime,
	}
}

// newEvent returns an event of type typ concerning account.
func newEvent(typ, account string) *keyward.Event {
	return &keyward.Event{ID: apikey.NewID("msg"), Type: typ, Time: fixedTime, AccountID: account,
		Data: json.RawMessage(`{"key_id":"key_1"}`)}
}

func testWebhooks(t *testing.T, open func(*testing.T) keyward.Store) {
	t.Run("endpoints are created, read, listed, updated and deleted", func(t *testing.T) {
		f := newFixture(t, open)
		a, b := f.account("acme"), f.account("globex")
		ea, eb, eg := newEndpoint(a.ID, keyward.EventKeyRevoked), newEndpoint(b.ID), newEndpoint("")
		for _, e := range []*keyward.WebhookEndpoint{ea, eb, eg} {
			must(t, f.s.CreateWebhookEndpoint(f.ctx, keyward.Change{}, e))
		}
		wantCode(t, f.s.CreateWebhookEndpoint(f.ctx, keyward.Change{}, ea), keyward.ECONFLICT)
		wantCode(t, f.s.CreateWebhookEndpoint(f.ctx, keyward.Change{}, newEndpoint("acc_missing")), keyward.ENOTFOUND)

		got, err := f.s.WebhookEndpoint(f.ctx, ea.ID)
		must(t, err)
		if got.URL != ea.URL || got.AccountID != a.ID || !slices.Equal(got.Events, ea.Events) ||
			string(got.SealedSecret) != "sealed" || got.SecretVersion != 1 || !got.CreatedAt.Equal(fixedTime) {
			t.Fatalf("WebhookEndpoint = %+v, want %+v", got, ea)
		}
		list, _, err := f.s.WebhookEndpoints(f.ctx, keyward.WebhookEndpointFilter{AccountID: a.ID}, keyward.Page{})
		must(t, err)
		if len(list) != 1 || list[0].ID != ea.ID {
			t.Fatalf("endpoints of %s = %v, want only %s", a.ID, list, ea.ID)
		}
		all := pageWalk(t, 2, func(p keyward.Page) ([]*keyward.WebhookEndpoint, string, error) {
			return f.s.WebhookEndpoints(f.ctx, keyward.WebhookEndpointFilter{}, p)
		}, func(e *keyward.WebhookEndpoint) string { return e.ID })
		wantIDs(t, all, sorted(ea.ID, eb.ID, eg.ID)...)

		later := fixedTime.Add(time.Hour)
		up, err := f.s.UpdateWebhookEndpoint(f.ctx, keyward.Change{}, ea.ID, func(e *keyward.WebhookEndpoint) error {
			e.Events, e.Disabled, e.DisabledReason, e.UpdatedAt = nil, true, "paused", later
			return nil
		})
		must(t, err)
		if len(up.Events) != 0 || !up.Disabled || up.DisabledReason != "paused" || !up.UpdatedAt.Equal(later) {
			t.Fatalf("updated endpoint = %+v", up)
		}
		_, err = f.s.UpdateWebhookEndpoint(f.ctx, keyward.Change{}, ea.ID, func(e *keyward.WebhookEndpoint) error {
			e.AccountID = b.ID
			return nil
		})
		wantCode(t, err, keyward.EINVALID)
		_, err = f.s.UpdateWebhookEndpoint(f.ctx, keyward.Change{}, ea.ID, func(*keyward.WebhookEndpoint) error { return errAbort })
		if err == nil {
			t.Fatal("UpdateWebhookEndpoint ignored fn's error")
		}
		del, err := f.s.DeleteWebhookEndpoint(f.ctx, keyward.Change{}, ea.ID)
		must(t, err)
		if del.ID != ea.ID {
			t.Fatalf("DeleteWebhookEndpoint returned %s, want %s", del.ID, ea.ID)
		}
		_, err = f.s.WebhookEndpoint(f.ctx, ea.ID)
		wantCode(t, err, keyward.ENOTFOUND)
		_, err = f.s.DeleteWebhookEndpoint(f.ctx, keyward.Change{}, ea.ID)
		wantCode(t, err, keyward.ENOTFOUND)
	})

	t.Run("events commit with their change and only with it", func(t *testing.T) {
		f := newFixture(t, open)
		ep := newEndpoint("")
		must(t, f.s.CreateWebhookEndpoint(f.ctx, keyward.Change{}, ep))
		a := &keyward.Account{ID: apikey.NewID("acc"), Name: "acme", CreatedAt: fixedTime, UpdatedAt: fixedTime}
		ok := newEvent(keyward.EventKeyCreated, a.ID)
		must(t, f.s.CreateAccount(f.ctx, keyward.Change{Events: []*keyward.Event{ok}}, a))

		dup := &keyward.Account{ID: apikey.NewID("acc"), Name: "acme", CreatedAt: fixedTime, UpdatedAt: fixedTime}
		lost := newEvent(keyward.EventKeyCreated, dup.ID)
		wantCode(t, f.s.CreateAccount(f.ctx, keyward.Change{Events: []*keyward.Event{lost}}, dup), keyward.ECONFLICT)

		bad := newEvent("key.exploded", a.ID)
		other := &keyward.Account{ID: apikey.NewID("acc"), Name: "other", CreatedAt: fixedTime, UpdatedAt: fixedTime}
		wantCode(t, f.s.CreateAccount(f.ctx, keyward.Change{Events: []*keyward.Event{bad}}, other), keyward.EINVALID)
		_, err := f.s.Account(f.ctx, other.ID)
		wantCode(t, err, keyward.ENOTFOUND)

		n, err := f.s.DispatchEvents(f.ctx, fixedTime, 100)
		must(t, err)
		if n != 1 {
			t.Fatalf("DispatchEvents = %d, want 1: only the committed change's event", n)
		}
		ds := deliveries(t, f, ep.ID)
		if len(ds) != 1 || ds[0].EventID != ok.ID || ds[0].EventType != keyward.EventKeyCreated || ds[0].State != keyward.DeliveryPending {
			t.Fatalf("deliveries = %+v, want one pending of %s", ds, ok.ID)
		}
		wantCode(t, f.s.AppendEvents(f.ctx, []*keyward.Event{newEvent(keyward.EventQuotaExhausted, a.ID), bad}), keyward.EINVALID)
		if n, err = f.s.DispatchEvents(f.ctx, fixedTime, 100); err != nil || n != 0 {
			t.Fatalf("DispatchEvents after a refused AppendEvents = %d, %v; want 0: the batch is all or nothing", n, err)
		}
	})

	t.Run("dispatch reaches each endpoint that wants an event once", func(t *testing.T) {
		f := newFixture(t, open)
		a, b := f.account("acme"), f.account("globex")
		revokes, allA, allB, global := newEndpoint(a.ID, keyward.EventKeyRevoked), newEndpoint(a.ID), newEndpoint(b.ID), newEndpoint("")
		for _, e := range []*keyward.WebhookEndpoint{revokes, allA, allB, global} {
			must(t, f.s.CreateWebhookEndpoint(f.ctx, keyward.Change{}, e))
		}
		revoked, created, ofB, blocked := newEvent(keyward.EventKeyRevoked, a.ID), newEvent(keyward.EventKeyCreated, a.ID),
			newEvent(keyward.EventKeyCreated, b.ID), newEvent(keyward.EventIPBlocked, "")
		must(t, f.s.AppendEvents(f.ctx, []*keyward.Event{revoked, created, ofB, blocked}))
		n, err := f.s.DispatchEvents(f.ctx, fixedTime, 3)
		must(t, err)
		if n != 3 {
			t.Fatalf("DispatchEvents(limit 3) = %d, want 3", n)
		}
		if n, err = f.s.DispatchEvents(f.ctx, fixedTime, 3); err != nil || n != 1 {
			t.Fatalf("second DispatchEvents = %d, %v; want the 1 left", n, err)
		}
		if n, err = f.s.DispatchEvents(f.ctx, fixedTime, 3); err != nil || n != 0 {
			t.Fatalf("third DispatchEvents = %d, %v; want 0", n, err)
		}
		for _, c := range []struct {
			ep   *keyward.WebhookEndpoint
			want []string
		}{
			{revokes, []string{revoked.ID}},
			{allA, []string{revoked.ID, created.ID}},
			{allB, []string{ofB.ID}},
			{global, []string{revoked.ID, created.ID, ofB.ID, blocked.ID}},
		} {
			var got []string
			for _, d := range deliveries(t, f, c.ep.ID) {
				got = append(got, d.EventID)
			}
			wantIDs(t, sorted(got...), sorted(c.want...)...)
		}
	})

	t.Run("claims lease deliveries and outcomes are logged", func(t *testing.T) {
		f := newFixture(t, open)
		ep, off := newEndpoint(""), newEndpoint("")
		off.Disabled = true
		must(t, f.s.CreateWebhookEndpoint(f.ctx, keyward.Change{}, ep))
		must(t, f.s.CreateWebhookEndpoint(f.ctx, keyward.Change{}, off))
		ev := newEvent(keyward.EventKeyRevoked, "")
		must(t, f.s.AppendEvents(f.ctx, []*keyward.Event{ev}))
		_, err := f.s.DispatchEvents(f.ctx, fixedTime, 10)
		must(t, err)

		lease := time.Minute
		got, err := f.s.ClaimDeliveries(f.ctx, fixedTime, lease, 10)
		must(t, err)
		if len(got) != 1 || got[0].EndpointID != ep.ID {
			t.Fatalf("claimed %+v, want the one delivery to the enabled endpoint", got)
		}
		d := got[0]
		if d.Event == nil || d.Event.ID != ev.ID || d.Event.Type != ev.Type || string(d.Event.Data) != string(ev.Data) ||
			!d.Event.Time.Equal(fixedTime) || d.Endpoint == nil || d.Endpoint.URL != ep.URL ||
			string(d.Endpoint.SealedSecret) != "sealed" || d.Endpoint.SecretVersion != 1 {
			t.Fatalf("claimed delivery lacks its event or endpoint: %+v %+v %+v", d, d.Event, d.Endpoint)
		}
		if again, err := f.s.ClaimDeliveries(f.ctx, fixedTime.Add(lease-time.Second), lease, 10); err != nil || len(again) != 0 {
			t.Fatalf("claim within the lease = %d deliveries, %v; want none", len(again), err)
		}
		expired, err := f.s.ClaimDeliveries(f.ctx, fixedTime.Add(lease), lease, 10)
		must(t, err)
		if len(expired) != 1 {
			t.Fatalf("claim after the lease = %d deliveries, want the 1 whose sender died", len(expired))
		}

		if !d.LeaseUntil.Equal(fixedTime.Add(lease)) || !expired[0].LeaseUntil.Equal(fixedTime.Add(2*lease)) {
			t.Fatalf("leases until %v and %v, want %v and %v", d.LeaseUntil, expired[0].LeaseUntil, fixedTime.Add(lease), fixedTime.Add(2*lease))
		}
		// The first claim's sender comes back late: its lease was taken
		// over, so its outcome is refused and changes nothing.
		t1 := fixedTime.Add(2 * lease)
		retry := t1.Add(time.Hour)
		late := keyward.DeliveryOutcome{EventID: ev.ID, EndpointID: ep.ID, LeaseUntil: d.LeaseUntil, Time: t1,
			Status: 200, State: keyward.DeliveryDelivered, NextAttemptAt: t1}
		wantCode(t, f.s.FinishDelivery(f.ctx, late), keyward.ENOTFOUND)
		must(t, f.s.FinishDelivery(f.ctx, keyward.DeliveryOutcome{EventID: ev.ID, EndpointID: ep.ID, LeaseUntil: expired[0].LeaseUntil, Time: t1,
			Duration: time.Second, Status: 503, Error: "503 Service Unavailable", State: keyward.DeliveryPending, NextAttemptAt: retry}))
		if early, err := f.s.ClaimDeliveries(f.ctx, retry.Add(-time.Second), lease, 10); err != nil || len(early) != 0 {
			t.Fatalf("claim before the retry time = %d, %v; want none", len(early), err)
		}
		due, err := f.s.ClaimDeliveries(f.ctx, retry, lease, 10)
		if err != nil || len(due) != 1 {
			t.Fatalf("claim at the retry time = %d, %v; want 1 (a finish releases the lease)", len(due), err)
		}
		must(t, f.s.FinishDelivery(f.ctx, keyward.DeliveryOutcome{EventID: ev.ID, EndpointID: ep.ID, LeaseUntil: due[0].LeaseUntil, Time: retry,
			Status: 410, Error: "410 Gone", State: keyward.DeliveryFailed, NextAttemptAt: retry, DisableEndpoint: "410 Gone"}))
		ds := deliveries(t, f, ep.ID)
		if len(ds) != 1 || ds[0].State != keyward.DeliveryFailed || ds[0].Attempts != 2 || ds[0].LastStatus != 410 || ds[0].LastError != "410 Gone" {
			t.Fatalf("delivery log = %+v, want one failed delivery after 2 attempts, last 410", ds)
		}
		gone, err := f.s.WebhookEndpoint(f.ctx, ep.ID)
		must(t, err)
		if !gone.Disabled || gone.DisabledReason != "410 Gone" {
			t.Fatalf("endpoint after 410 = disabled %v (%q), want disabled", gone.Disabled, gone.DisabledReason)
		}
		if left, err := f.s.ClaimDeliveries(f.ctx, retry.Add(24*time.Hour), lease, 10); err != nil || len(left) != 0 {
			t.Fatalf("claim with no enabled endpoint = %d, %v; want none", len(left), err)
		}
		_, err = f.s.DeleteWebhookEndpoint(f.ctx, keyward.Change{}, ep.ID)
		must(t, err)
		wantCode(t, f.s.FinishDelivery(f.ctx, keyward.DeliveryOutcome{EventID: ev.ID, EndpointID: ep.ID, LeaseUntil: due[0].LeaseUntil,
			Time: retry, State: keyward.DeliveryDelivered, NextAttemptAt: retry}), keyward.ENOTFOUND)
	})

	t.Run("a finished delivery is sent again once, its attempts counting on", func(t *testing.T) {
		f := newFixture(t, open)
		ep := newEndpoint("")
		must(t, f.s.CreateWebhookEndpoint(f.ctx, keyward.Change{}, ep))
		ev := newEvent(keyward.EventKeyRevoked, "")
		must(t, f.s.AppendEvents(f.ctx, []*keyward.Event{ev}))
		_, err := f.s.DispatchEvents(f.ctx, fixedTime, 10)
		must(t, err)
		_, err = f.s.RetryDelivery(f.ctx, keyward.Change{}, ep.ID, ev.ID, fixedTime)
		wantCode(t, err, keyward.ECONFLICT) // pending
		_, err = f.s.RetryDelivery(f.ctx, keyward.Change{}, ep.ID, "msg_nosuch", fixedTime)
		wantCode(t, err, keyward.ENOTFOUND)
		claimed, err := f.s.ClaimDeliveries(f.ctx, fixedTime, time.Minute, 10)
		must(t, err)
		must(t, f.s.FinishDelivery(f.ctx, keyward.DeliveryOutcome{EventID: ev.ID, EndpointID: ep.ID, LeaseUntil: claimed[0].LeaseUntil, Time: fixedTime,
			Status: 500, Error: "500", State: keyward.DeliveryFailed, NextAttemptAt: fixedTime}))
		later := fixedTime.Add(time.Hour)
		d, err := f.s.RetryDelivery(f.ctx, f.audited("webhook.retry_delivery"), ep.ID, ev.ID, later)
		if err != nil || d.State != keyward.DeliveryPending || !d.NextAttemptAt.Equal(later) || d.Attempts != 1 || d.EventType != ev.Type {
			t.Fatalf("RetryDelivery = %+v, %v", d, err)
		}
		f.wantAuditChain(1)
		again, err := f.s.ClaimDeliveries(f.ctx, later, time.Minute, 10)
		if err != nil || len(again) != 1 {
			t.Fatalf("claim after the retry = %d, %v", len(again), err)
		}
		must(t, f.s.FinishDelivery(f.ctx, keyward.DeliveryOutcome{EventID: ev.ID, EndpointID: ep.ID, LeaseUntil: again[0].LeaseUntil, Time: later,
			Status: 204, State: keyward.DeliveryDelivered, NextAttemptAt: later}))
		if ds := deliveries(t, f, ep.ID); ds[0].State != keyward.DeliveryDelivered || ds[0].Attempts != 2 {
			t.Fatalf("delivery log = %+v", ds[0])
		}
	})
	t.Run("retention deletes finished events only", func(t *testing.T) {
		f := newFixture(t, open)
		ep := newEndpoint("")
		must(t, f.s.CreateWebhookEndpoint(f.ctx, keyward.Change{}, ep))
		old := func() *keyward.Event { return newEvent(keyward.EventKeyCreated, "") }
		delivered, failed, pending, undispatched := old(), old(), old(), old()
		recent := newEvent(keyward.EventKeyCreated, "")
		recent.Time = fixedTime.Add(48 * time.Hour)
		must(t, f.s.AppendEvents(f.ctx, []*keyward.Event{delivered, failed, pending, recent}))
		_, err := f.s.DispatchEvents(f.ctx, fixedTime, 100)
		must(t, err)
		must(t, f.s.AppendEvents(f.ctx, []*keyward.Event{undispatched}))
		claimed, err := f.s.ClaimDeliveries(f.ctx, fixedTime, time.Hour, 100)
		must(t, err)
		finish := map[string]keyward.DeliveryState{delivered.ID: keyward.DeliveryDelivered, failed.ID: keyward.DeliveryFailed, recent.ID: keyward.DeliveryDelivered}
		for _, d := range claimed {
			if state, ok := finish[d.EventID]; ok {
				must(t, f.s.FinishDelivery(f.ctx, keyward.DeliveryOutcome{EventID: d.EventID, EndpointID: ep.ID, LeaseUntil: d.LeaseUntil,
					Time: fixedTime, Status: 200, State: state, NextAttemptAt: fixedTime}))
			}
		}
		n, err := f.s.DeleteWebhookEventsBefore(f.ctx, fixedTime.Add(24*time.Hour))
		must(t, err)
		if n != 2 {
			t.Fatalf("DeleteWebhookEventsBefore = %d, want 2 (the delivered and the failed event)", n)
		}
		var left []string
		for _, d := range deliveries(t, f, ep.ID) {
			left = append(left, d.EventID)
		}
		wantIDs(t, sorted(left...), sorted(pending.ID, recent.ID)...)
		if n, err := f.s.DispatchEvents(f.ctx, fixedTime, 100); err != nil || n != 1 {
			t.Fatalf("the undispatched event: DispatchEvents = %d, %v; want it kept and dispatched", n, err)
		}
	})

	t.Run("concurrent claims never hand out a delivery twice", func(t *testing.T) {
		f := newFixture(t, open)
		ep := newEndpoint("")
		must(t, f.s.CreateWebhookEndpoint(f.ctx, keyward.Change{}, ep))
		const events = 40
		batch := make([]*keyward.Event, events)
		for i := range batch {
			batch[i] = newEvent(keyward.EventKeyCreated, "")
		}
		must(t, f.s.AppendEvents(f.ctx, batch))
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			seen   = map[string]int{}
			errs   = make(chan error, 8)
			worker = func() {
				defer wg.Done()
				for {
					if _, err := f.s.DispatchEvents(f.ctx, fixedTime, 7); err != nil {
						errs <- err
						return
					}
					got, err := f.s.ClaimDeliveries(f.ctx, fixedTime, time.Hour, 3)
					if err != nil {
						errs <- err
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, d := range got {
						seen[d.EventID]++
					}
					mu.Unlock()
				}
			}
		)
		for range 4 {
			wg.Add(1)
			go worker()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		// A worker stops when it claims nothing; the others may have held
		// the last events then, so finish what is left.
		for {
			n, err := f.s.DispatchEvents(f.ctx, fixedTime, events)
			must(t, err)
			got, err := f.s.ClaimDeliveries(f.ctx, fixedTime, time.Hour, events)
			must(t, err)
			for _, d := range got {
				seen[d.EventID]++
			}
			if n == 0 && len(got) == 0 {
				break
			}
		}
		if len(seen) != events {
			t.Fatalf("%d distinct deliveries claimed, want %d", len(seen), events)
		}
		for id, n := range seen {
			if n != 1 {
				t.Fatalf("delivery of %s claimed %d times, want once", id, n)
			}
		}
	})
}

// deliveries returns the whole delivery log of an endpoint.
func deliveries(t *testing.T, f *fixture, endpointID string) []*keyward.WebhookDelivery {
	t.Helper()
	ds, next, err := f.s.WebhookDeliveries(f.ctx, endpointID, keyward.Page{Limit: keyward.MaxPageLimit})
	must(t, err)
	if next != "" {
		t.Fatalf("more than %d deliveries", keyward.MaxPageLimit)
	}
	return ds
}
