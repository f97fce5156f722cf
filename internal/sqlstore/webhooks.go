package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/keyward/keyward"
)

const selectEndpoint = `SELECT id, account_id, url, description, events, secret, secret_version, disabled,
	disabled_reason, created_by, created_at, updated_at FROM webhook_endpoints`

// CreateWebhookEndpoint inserts e. ENOTFOUND if its account does not exist,
// ECONFLICT if the id is taken.
func (s *Store) CreateWebhookEndpoint(ctx context.Context, ch keyward.Change, e *keyward.WebhookEndpoint) error {
	events, err := json.Marshal(nonNil(e.Events))
	if err != nil {
		return s.errorf("create webhook endpoint %s: %w", e.ID, err)
	}
	err = s.write(ctx, ch, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO webhook_endpoints (id, account_id, url, description, events,
			secret, secret_version, disabled, disabled_reason, created_by, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.ID, nullString(e.AccountID), e.URL, e.Description, string(events), e.SealedSecret, e.SecretVersion,
			e.Disabled, e.DisabledReason, e.CreatedBy, FormatTime(e.CreatedAt), FormatTime(e.UpdatedAt))
		return s.dbError(err, Conflicts{
			PK: fmt.Sprintf("webhook endpoint %s already exists", e.ID),
			FK: fmt.Sprintf("account %s not found", e.AccountID),
		})
	})
	if err != nil {
		return s.errorf("create webhook endpoint %s: %w", e.ID, err)
	}
	return nil
}

// WebhookEndpoint returns the endpoint with id. ENOTFOUND if none.
func (s *Store) WebhookEndpoint(ctx context.Context, id string) (*keyward.WebhookEndpoint, error) {
	e, err := s.endpointTx(ctx, s.r, id)
	if err != nil {
		return nil, s.errorf("webhook endpoint %s: %w", id, err)
	}
	return e, nil
}

func (s *Store) endpointTx(ctx context.Context, q querier, id string) (*keyward.WebhookEndpoint, error) {
	e, err := scanEndpoint(q.QueryRowContext(ctx, s.locked(q, selectEndpoint+" WHERE id = ?", ""), id))
	return e, s.rowError(err, "webhook endpoint", id)
}

// WebhookEndpoints lists the endpoints matching f by id.
func (s *Store) WebhookEndpoints(ctx context.Context, f keyward.WebhookEndpointFilter, p keyward.Page) ([]*keyward.WebhookEndpoint, string, error) {
	query, args := selectEndpoint+" WHERE 1=1", []any(nil)
	if f.AccountID != "" {
		query += " AND account_id = ?"
		args = append(args, f.AccountID)
	}
	return listPage(ctx, s, "list webhook endpoints", query, args, "id", ascending, p, scanEndpoint, func(e *keyward.WebhookEndpoint) string { return e.ID })
}

// UpdateWebhookEndpoint loads the endpoint, applies fn and saves the result
// in one transaction. EINVALID if fn changes the id or account.
func (s *Store) UpdateWebhookEndpoint(ctx context.Context, ch keyward.Change, id string, fn func(*keyward.WebhookEndpoint) error) (*keyward.WebhookEndpoint, error) {
	var out *keyward.WebhookEndpoint
	err := s.write(ctx, ch, func(tx *Tx) error {
		e, err := s.endpointTx(ctx, tx, id)
		if err != nil {
			return err
		}
		account := e.AccountID
		if err := fn(e); err != nil {
			return err
		}
		if e.ID != id || e.AccountID != account {
			return keyward.Errorf(keyward.EINVALID, "the id and account of a webhook endpoint cannot change")
		}
		events, err := json.Marshal(nonNil(e.Events))
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE webhook_endpoints SET url = ?, description = ?, events = ?, secret = ?,
			secret_version = ?, disabled = ?, disabled_reason = ?, updated_at = ? WHERE id = ?`,
			e.URL, e.Description, string(events), e.SealedSecret, e.SecretVersion, e.Disabled, e.DisabledReason,
			FormatTime(e.UpdatedAt), id)
		if err != nil {
			return s.dbError(err, Conflicts{})
		}
		out, err = s.endpointTx(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, s.errorf("update webhook endpoint %s: %w", id, err)
	}
	return out, nil
}

// DeleteWebhookEndpoint deletes the endpoint with its deliveries and
// returns it.
func (s *Store) DeleteWebhookEndpoint(ctx context.Context, ch keyward.Change, id string) (*keyward.WebhookEndpoint, error) {
	var e *keyward.WebhookEndpoint
	err := s.write(ctx, ch, func(tx *Tx) error {
		var err error
		if e, err = s.endpointTx(ctx, tx, id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "DELETE FROM webhook_endpoints WHERE id = ?", id)
		return s.dbError(err, Conflicts{})
	})
	if err != nil {
		return nil, s.errorf("delete webhook endpoint %s: %w", id, err)
	}
	return e, nil
}

// AppendEvents writes events to the outbox in one transaction.
func (s *Store) AppendEvents(ctx context.Context, events []*keyward.Event) error {
	if len(events) == 0 {
		return nil
	}
	err := s.WriteUnaudited(ctx, func(tx *Tx) error { return insertEvents(ctx, tx, events) })
	if err != nil {
		return s.errorf("append events: %w", err)
	}
	return nil
}

// insertEvents writes events to the outbox in tx.
func insertEvents(ctx context.Context, tx *Tx, events []*keyward.Event) error {
	for _, e := range events {
		if err := e.Validate(); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO webhook_events (id, type, time, account_id, data) VALUES (?, ?, ?, ?, ?)",
			e.ID, e.Type, FormatTime(e.Time), e.AccountID, string(e.Data))
		if err != nil {
			return err
		}
	}
	return nil
}

// DeleteWebhookEventsBefore deletes finished events announced before
// before, with their deliveries and attempts (foreign keys cascade).
func (s *Store) DeleteWebhookEventsBefore(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.WriteUnaudited(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM webhook_events WHERE dispatched = TRUE AND time < ?
			AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = webhook_events.id AND d.state = 'pending')`,
			FormatTime(before))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, s.errorf("delete webhook events: %w", s.dbError(err, Conflicts{}))
	}
	return n, nil
}

// DispatchEvents fans undispatched events out to the endpoints that want
// them. The events are claimed (skipped if another instance holds them, or
// the writer is single), so instances never dispatch an event twice.
func (s *Store) DispatchEvents(ctx context.Context, now time.Time, limit int) (int, error) {
	n := 0
	err := s.WriteUnaudited(ctx, func(tx *Tx) error {
		events, err := queryRows(ctx, tx, s.claimed(tx, `SELECT id, type, time, account_id, data FROM webhook_events
			WHERE dispatched = FALSE ORDER BY id LIMIT ?`, ""), []any{limit}, scanEvent)
		if err != nil || len(events) == 0 {
			return err
		}
		endpoints, err := queryRows(ctx, tx, selectEndpoint, nil, scanEndpoint)
		if err != nil {
			return err
		}
		at := FormatTime(now)
		for _, ev := range events {
			for _, ep := range endpoints {
				if !ep.Wants(ev) {
					continue
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (event_id, endpoint_id, next_attempt_at, updated_at)
					VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`, ev.ID, ep.ID, at, at); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, "UPDATE webhook_events SET dispatched = TRUE WHERE id = ?", ev.ID); err != nil {
				return err
			}
		}
		n = len(events)
		return nil
	})
	if err != nil {
		return 0, s.errorf("dispatch events: %w", s.dbError(err, Conflicts{}))
	}
	return n, nil
}

// ClaimDeliveries leases up to limit due deliveries until now+lease.
func (s *Store) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*keyward.WebhookDelivery, error) {
	var out []*keyward.WebhookDelivery
	err := s.WriteUnaudited(ctx, func(tx *Tx) error {
		at := FormatTime(now)
		var err error
		out, err = queryRows(ctx, tx, s.claimed(tx, `SELECT `+deliveryColumns+`,
			e.time, e.account_id, e.data, p.url, p.secret, p.secret_version
			FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
			JOIN webhook_endpoints p ON p.id = d.endpoint_id
			WHERE d.state = 'pending' AND d.next_attempt_at <= ? AND (d.locked_until IS NULL OR d.locked_until <= ?) AND p.disabled = FALSE
			ORDER BY d.next_attempt_at, d.event_id LIMIT ?`, "d"), []any{at, at, limit}, scanClaimed)
		if err != nil {
			return err
		}
		leaseUntil := now.Add(lease).UTC().Truncate(time.Microsecond)
		until := FormatTime(leaseUntil)
		for _, d := range out {
			d.LeaseUntil = leaseUntil
			if _, err := tx.ExecContext(ctx, "UPDATE webhook_deliveries SET locked_until = ? WHERE event_id = ? AND endpoint_id = ?",
				until, d.EventID, d.EndpointID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, s.errorf("claim webhook deliveries: %w", s.dbError(err, Conflicts{}))
	}
	return out, nil
}

// FinishDelivery records an attempt and sets the delivery's state.
func (s *Store) FinishDelivery(ctx context.Context, o keyward.DeliveryOutcome) error {
	err := s.WriteUnaudited(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET state = ?, attempts = attempts + 1,
			next_attempt_at = ?, locked_until = `+s.d.NoTime()+`, last_status = ?, last_error = ?, updated_at = ?
			WHERE event_id = ? AND endpoint_id = ? AND state = 'pending' AND locked_until = ?`,
			string(o.State), FormatTime(o.NextAttemptAt), o.Status, o.Error, FormatTime(o.Time.Add(o.Duration)),
			o.EventID, o.EndpointID, FormatTime(o.LeaseUntil))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return keyward.Errorf(keyward.ENOTFOUND, "delivery of event %s to webhook endpoint %s not found under this lease: deleted, or taken over after the lease ran out", o.EventID, o.EndpointID)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_attempts (event_id, endpoint_id, attempt, time, status, error, duration_us)
			SELECT ?, ?, attempts, ?, ?, ?, ? FROM webhook_deliveries WHERE event_id = ? AND endpoint_id = ?`,
			o.EventID, o.EndpointID, FormatTime(o.Time), o.Status, o.Error, o.Duration.Microseconds(),
			o.EventID, o.EndpointID); err != nil {
			return err
		}
		if o.DisableEndpoint != "" {
			_, err = tx.ExecContext(ctx, "UPDATE webhook_endpoints SET disabled = TRUE, disabled_reason = ?, updated_at = ? WHERE id = ?",
				o.DisableEndpoint, FormatTime(o.Time), o.EndpointID)
		}
		return err
	})
	if err != nil {
		return s.errorf("finish webhook delivery: %w", s.dbError(err, Conflicts{}))
	}
	return nil
}

// WebhookDeliveries lists the deliveries to an endpoint, newest event
// first.
func (s *Store) WebhookDeliveries(ctx context.Context, endpointID string, p keyward.Page) ([]*keyward.WebhookDelivery, string, error) {
	query, args := `SELECT `+deliveryColumns+` FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
		WHERE d.endpoint_id = ?`, []any{endpointID}
	return listPage(ctx, s, "list webhook deliveries of "+endpointID, query, args, "d.event_id", newestFirst, p, func(r scanner) (*keyward.WebhookDelivery, error) { return scanDeliveryWith(r) }, func(d *keyward.WebhookDelivery) string { return d.EventID })
}

// RetryDelivery makes a finished delivery pending again, due at now.
func (s *Store) RetryDelivery(ctx context.Context, ch keyward.Change, endpointID, eventID string, now time.Time) (*keyward.WebhookDelivery, error) {
	var out *keyward.WebhookDelivery
	err := s.write(ctx, ch, func(tx *Tx) error {
		d, err := scanDeliveryWith(tx.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
			WHERE d.endpoint_id = ? AND d.event_id = ?`, endpointID, eventID))
		if err != nil {
			return s.rowError(err, "delivery of event", eventID+" to webhook endpoint "+endpointID)
		}
		if d.State == keyward.DeliveryPending {
			return keyward.Errorf(keyward.ECONFLICT, "the delivery of event %s is pending already: the sender attempts it at %s", eventID, d.NextAttemptAt.UTC().Format(time.RFC3339))
		}
		res, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = ?, locked_until = `+s.d.NoTime()+`, updated_at = ?
			WHERE endpoint_id = ? AND event_id = ? AND state <> 'pending'`, FormatTime(now), FormatTime(now), endpointID, eventID)
		if err != nil {
			return s.dbError(err, Conflicts{})
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return keyward.Errorf(keyward.ECONFLICT, "the delivery of event %s changed meanwhile: reload its log", eventID)
		}
		d.State, d.NextAttemptAt, d.UpdatedAt = keyward.DeliveryPending, now, now
		out = d
		return nil
	})
	if err != nil {
		return nil, s.errorf("retry webhook delivery: %w", err)
	}
	return out, nil
}

const deliveryColumns = `d.event_id, e.type, d.endpoint_id, d.state, d.attempts, d.next_attempt_at, d.last_status,
	d.last_error, d.updated_at`

// scanClaimed reads a delivery with its event and endpoint.
func scanClaimed(row scanner) (*keyward.WebhookDelivery, error) {
	var (
		evTime, account, data string
		ep                    keyward.WebhookEndpoint
	)
	d, err := scanDeliveryWith(row, &evTime, &account, &data, &ep.URL, &ep.SealedSecret, &ep.SecretVersion)
	if err != nil {
		return nil, err
	}
	t, err := parseTime(evTime)
	if err != nil {
		return nil, err
	}
	ep.ID = d.EndpointID
	d.Endpoint = &ep
	d.Event = &keyward.Event{ID: d.EventID, Type: d.EventType, Time: t, AccountID: account, Data: json.RawMessage(data)}
	return d, nil
}

// scanDeliveryWith reads the deliveryColumns, then extra.
func scanDeliveryWith(row scanner, extra ...any) (*keyward.WebhookDelivery, error) {
	var (
		d                keyward.WebhookDelivery
		state, next, upd string
	)
	dest := append([]any{&d.EventID, &d.EventType, &d.EndpointID, &state, &d.Attempts, &next, &d.LastStatus, &d.LastError, &upd}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	d.State = keyward.DeliveryState(state)
	var err error
	if d.NextAttemptAt, err = parseTime(next); err != nil {
		return nil, err
	}
	d.UpdatedAt, err = parseTime(upd)
	return &d, err
}

func scanEvent(row scanner) (*keyward.Event, error) {
	var (
		e       keyward.Event
		t, data string
	)
	if err := row.Scan(&e.ID, &e.Type, &t, &e.AccountID, &data); err != nil {
		return nil, err
	}
	e.Data = json.RawMessage(data)
	var err error
	e.Time, err = parseTime(t)
	return &e, err
}

func scanEndpoint(row scanner) (*keyward.WebhookEndpoint, error) {
	var (
		e               keyward.WebhookEndpoint
		account         sql.NullString
		events, created string
		updated         string
	)
	if err := row.Scan(&e.ID, &account, &e.URL, &e.Description, &events, &e.SealedSecret, &e.SecretVersion,
		&e.Disabled, &e.DisabledReason, &e.CreatedBy, &created, &updated); err != nil {
		return nil, err
	}
	e.AccountID = account.String
	if err := json.Unmarshal([]byte(events), &e.Events); err != nil {
		return nil, fmt.Errorf("webhook endpoint %s: stored events: %w", e.ID, err)
	}
	var err error
	if e.CreatedAt, err = parseTime(created); err != nil {
		return nil, err
	}
	e.UpdatedAt, err = parseTime(updated)
	return &e, err
}
