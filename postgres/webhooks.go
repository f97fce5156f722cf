package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keyward/keyward"
)

const selectEndpoint = `SELECT id, COALESCE(account_id, ''), url, description, events, secret, secret_version,
	disabled, disabled_reason, created_by, created_at, updated_at FROM webhook_endpoints`

// CreateWebhookEndpoint inserts e. ENOTFOUND if its account does not exist,
// ECONFLICT if the id is taken.
func (s *Store) CreateWebhookEndpoint(ctx context.Context, ch keyward.Change, e *keyward.WebhookEndpoint) error {
	err := s.write(ctx, ch, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO webhook_endpoints (id, account_id, url, description, events, secret,
			secret_version, disabled, disabled_reason, created_by, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			e.ID, nullString(e.AccountID), e.URL, e.Description, eventList(e.Events), e.SealedSecret, e.SecretVersion,
			e.Disabled, e.DisabledReason, e.CreatedBy, e.CreatedAt, e.UpdatedAt)
		return s.dbError(err, conflicts{
			"webhook_endpoints_pkey":            fmt.Sprintf("webhook endpoint %s already exists", e.ID),
			"webhook_endpoints_account_id_fkey": fmt.Sprintf("account %s not found", e.AccountID),
		})
	})
	if err != nil {
		return fmt.Errorf("postgres: create webhook endpoint %s: %w", e.ID, err)
	}
	return nil
}

// eventList is how an endpoint's event filter is stored: a JSON array,
// [] for all.
func eventList(events []string) string {
	if len(events) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(events) // strings: never fails
	return string(b)
}

// WebhookEndpoint returns the endpoint with id. ENOTFOUND if none.
func (s *Store) WebhookEndpoint(ctx context.Context, id string) (*keyward.WebhookEndpoint, error) {
	e, err := s.endpoint(ctx, s.pool, id, "")
	if err != nil {
		return nil, fmt.Errorf("postgres: webhook endpoint %s: %w", id, err)
	}
	return e, nil
}

// endpoint reads an endpoint; lock is "" or a locking clause.
func (s *Store) endpoint(ctx context.Context, q querier, id, lock string) (*keyward.WebhookEndpoint, error) {
	e, err := scanEndpoint(q.QueryRow(ctx, selectEndpoint+" WHERE id = $1 "+lock, id))
	return e, s.rowError(err, "webhook endpoint", id)
}

// WebhookEndpoints lists the endpoints matching f by id.
func (s *Store) WebhookEndpoints(ctx context.Context, f keyward.WebhookEndpointFilter, p keyward.Page) ([]*keyward.WebhookEndpoint, string, error) {
	query, args := selectEndpoint+" WHERE true", []any(nil)
	if f.AccountID != "" {
		args = append(args, f.AccountID)
		query += " AND account_id = $1"
	}
	query, args = pageQuery(query, "id", ascending, args, p)
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: list webhook endpoints: %w", s.dbError(err, nil))
	}
	endpoints, err := collect(rows, scanEndpoint)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: list webhook endpoints: %w", s.dbError(err, nil))
	}
	endpoints, next := page(endpoints, p, func(e *keyward.WebhookEndpoint) string { return e.ID })
	return endpoints, next, nil
}

// UpdateWebhookEndpoint loads the endpoint, applies fn and saves the result
// in one transaction. EINVALID if fn changes the id or account.
func (s *Store) UpdateWebhookEndpoint(ctx context.Context, ch keyward.Change, id string, fn func(*keyward.WebhookEndpoint) error) (*keyward.WebhookEndpoint, error) {
	var out *keyward.WebhookEndpoint
	err := s.write(ctx, ch, func(tx pgx.Tx) error {
		e, err := s.endpoint(ctx, tx, id, "FOR UPDATE")
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
		out, err = scanEndpoint(tx.QueryRow(ctx, `UPDATE webhook_endpoints SET url = $1, description = $2, events = $3,
			secret = $4, secret_version = $5, disabled = $6, disabled_reason = $7, updated_at = $8 WHERE id = $9
			RETURNING id, COALESCE(account_id, ''), url, description, events, secret, secret_version, disabled,
			disabled_reason, created_by, created_at, updated_at`,
			e.URL, e.Description, eventList(e.Events), e.SealedSecret, e.SecretVersion, e.Disabled, e.DisabledReason,
			e.UpdatedAt, id))
		return s.dbError(err, nil)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: update webhook endpoint %s: %w", id, err)
	}
	return out, nil
}

// DeleteWebhookEndpoint deletes the endpoint with its deliveries and
// returns it.
func (s *Store) DeleteWebhookEndpoint(ctx context.Context, ch keyward.Change, id string) (*keyward.WebhookEndpoint, error) {
	var e *keyward.WebhookEndpoint
	err := s.write(ctx, ch, func(tx pgx.Tx) error {
		var err error
		e, err = scanEndpoint(tx.QueryRow(ctx, `DELETE FROM webhook_endpoints WHERE id = $1
			RETURNING id, COALESCE(account_id, ''), url, description, events, secret, secret_version, disabled,
			disabled_reason, created_by, created_at, updated_at`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return keyward.Errorf(keyward.ENOTFOUND, "webhook endpoint %s not found", id)
		}
		return s.dbError(err, nil)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: delete webhook endpoint %s: %w", id, err)
	}
	return e, nil
}

// AppendEvents writes events to the outbox in one transaction.
func (s *Store) AppendEvents(ctx context.Context, events []*keyward.Event) error {
	if len(events) == 0 {
		return nil
	}
	if err := s.inTx(ctx, func(tx pgx.Tx) error { return s.insertEvents(ctx, tx, events) }); err != nil {
		return fmt.Errorf("postgres: append events: %w", err)
	}
	return nil
}

// insertEvents writes events to the outbox in tx.
func (s *Store) insertEvents(ctx context.Context, tx pgx.Tx, events []*keyward.Event) error {
	for _, e := range events {
		if err := e.Validate(); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO webhook_events (id, type, time, account_id, data) VALUES ($1, $2, $3, $4, $5)",
			e.ID, e.Type, e.Time, e.AccountID, string(e.Data))
		if err != nil {
			return s.dbError(err, conflicts{"webhook_events_pkey": fmt.Sprintf("event %s already exists", e.ID)})
		}
	}
	return nil
}

// DeleteWebhookEventsBefore deletes finished events announced before
// before, with their deliveries and attempts (foreign keys cascade).
func (s *Store) DeleteWebhookEventsBefore(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM webhook_events e WHERE e.dispatched AND e.time < $1
		AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id AND d.state = 'pending')`, before)
	if err != nil {
		return 0, fmt.Errorf("postgres: delete webhook events: %w", s.dbError(err, nil))
	}
	return tag.RowsAffected(), nil
}

// DispatchEvents fans undispatched events out to the endpoints that want
// them. The events are locked with SKIP LOCKED, so instances dispatching at
// the same time take different events.
func (s *Store) DispatchEvents(ctx context.Context, now time.Time, limit int) (int, error) {
	n := 0
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, type, time, account_id, data FROM webhook_events
			WHERE NOT dispatched ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`, limit)
		if err != nil {
			return s.dbError(err, nil)
		}
		events, err := collect(rows, scanEvent)
		if err != nil || len(events) == 0 {
			return s.dbError(err, nil)
		}
		if rows, err = tx.Query(ctx, selectEndpoint); err != nil {
			return s.dbError(err, nil)
		}
		endpoints, err := collect(rows, scanEndpoint)
		if err != nil {
			return s.dbError(err, nil)
		}
		ids := make([]string, len(events))
		var evIDs, epIDs []string
		for i, ev := range events {
			ids[i] = ev.ID
			for _, ep := range endpoints {
				if ep.Wants(ev) {
					evIDs, epIDs = append(evIDs, ev.ID), append(epIDs, ep.ID)
				}
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO webhook_deliveries (event_id, endpoint_id, next_attempt_at, updated_at)
			SELECT ev, ep, $3, $3 FROM unnest($1::text[], $2::text[]) AS t(ev, ep) ON CONFLICT DO NOTHING`,
			evIDs, epIDs, now); err != nil {
			return s.dbError(err, nil)
		}
		if _, err := tx.Exec(ctx, "UPDATE webhook_events SET dispatched = true WHERE id = ANY($1)", ids); err != nil {
			return s.dbError(err, nil)
		}
		n = len(events)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: dispatch events: %w", err)
	}
	return n, nil
}

// ClaimDeliveries leases up to limit due deliveries until now+lease. Rows
// another instance is claiming are skipped, not waited for.
func (s *Store) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*keyward.WebhookDelivery, error) {
	var out []*keyward.WebhookDelivery
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+deliveryColumns+`, e.time, e.account_id, e.data, p.url, p.secret, p.secret_version
			FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
			JOIN webhook_endpoints p ON p.id = d.endpoint_id
			WHERE d.state = 'pending' AND d.next_attempt_at <= $1 AND (d.locked_until IS NULL OR d.locked_until <= $1)
				AND NOT p.disabled
			ORDER BY d.next_attempt_at, d.event_id LIMIT $2 FOR UPDATE OF d SKIP LOCKED`, now, limit)
		if err != nil {
			return s.dbError(err, nil)
		}
		if out, err = collect(rows, scanClaimed); err != nil {
			return s.dbError(err, nil)
		}
		leaseUntil := now.Add(lease).UTC().Truncate(time.Microsecond)
		evIDs, epIDs := make([]string, len(out)), make([]string, len(out))
		for i, d := range out {
			evIDs[i], epIDs[i] = d.EventID, d.EndpointID
			d.LeaseUntil = leaseUntil
		}
		_, err = tx.Exec(ctx, `UPDATE webhook_deliveries d SET locked_until = $3
			FROM unnest($1::text[], $2::text[]) AS t(ev, ep) WHERE d.event_id = t.ev AND d.endpoint_id = t.ep`,
			evIDs, epIDs, leaseUntil)
		return s.dbError(err, nil)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: claim webhook deliveries: %w", err)
	}
	return out, nil
}

// FinishDelivery records an attempt and sets the delivery's state.
func (s *Store) FinishDelivery(ctx context.Context, o keyward.DeliveryOutcome) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var attempt int
		err := tx.QueryRow(ctx, `UPDATE webhook_deliveries SET state = $1, attempts = attempts + 1, next_attempt_at = $2,
			locked_until = NULL, last_status = $3, last_error = $4, updated_at = $5
			WHERE event_id = $6 AND endpoint_id = $7 AND state = 'pending' AND locked_until = $8 RETURNING attempts`,
			string(o.State), o.NextAttemptAt, o.Status, o.Error, o.Time.Add(o.Duration), o.EventID, o.EndpointID,
			o.LeaseUntil).Scan(&attempt)
		if errors.Is(err, pgx.ErrNoRows) {
			return keyward.Errorf(keyward.ENOTFOUND, "delivery of event %s to webhook endpoint %s not found under this lease: deleted, or taken over after the lease ran out", o.EventID, o.EndpointID)
		}
		if err != nil {
			return s.dbError(err, nil)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO webhook_attempts (event_id, endpoint_id, attempt, time, status, error, duration_us)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, o.EventID, o.EndpointID, attempt, o.Time, o.Status, o.Error,
			o.Duration.Microseconds()); err != nil {
			return s.dbError(err, nil)
		}
		if o.DisableEndpoint != "" {
			_, err = tx.Exec(ctx, "UPDATE webhook_endpoints SET disabled = true, disabled_reason = $1, updated_at = $2 WHERE id = $3",
				o.DisableEndpoint, o.Time, o.EndpointID)
		}
		return s.dbError(err, nil)
	})
	if err != nil {
		return fmt.Errorf("postgres: finish webhook delivery: %w", err)
	}
	return nil
}

// WebhookDeliveries lists the deliveries to an endpoint, newest event
// first.
func (s *Store) WebhookDeliveries(ctx context.Context, endpointID string, p keyward.Page) ([]*keyward.WebhookDelivery, string, error) {
	query := `SELECT ` + deliveryColumns + ` FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
		WHERE d.endpoint_id = $1`
	query, args := pageQuery(query, "d.event_id", newestFirst, []any{endpointID}, p)
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: list webhook deliveries of %s: %w", endpointID, s.dbError(err, nil))
	}
	deliveries, err := collect(rows, func(r pgx.Row) (*keyward.WebhookDelivery, error) { return scanDeliveryWith(r) })
	if err != nil {
		return nil, "", fmt.Errorf("postgres: list webhook deliveries of %s: %w", endpointID, s.dbError(err, nil))
	}
	deliveries, next := page(deliveries, p, func(d *keyward.WebhookDelivery) string { return d.EventID })
	return deliveries, next, nil
}

const deliveryColumns = `d.event_id, e.type, d.endpoint_id, d.state, d.attempts, d.next_attempt_at, d.last_status,
	d.last_error, d.updated_at`

// scanDeliveryWith reads the deliveryColumns, then extra.
func scanDeliveryWith(row pgx.Row, extra ...any) (*keyward.WebhookDelivery, error) {
	var (
		d     keyward.WebhookDelivery
		state string
	)
	dest := append([]any{&d.EventID, &d.EventType, &d.EndpointID, &state, &d.Attempts, &d.NextAttemptAt,
		&d.LastStatus, &d.LastError, &d.UpdatedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	d.State = keyward.DeliveryState(state)
	d.NextAttemptAt, d.UpdatedAt = d.NextAttemptAt.UTC(), d.UpdatedAt.UTC()
	return &d, nil
}

// scanClaimed reads a delivery with its event and endpoint.
func scanClaimed(row pgx.Row) (*keyward.WebhookDelivery, error) {
	var (
		ev   keyward.Event
		data []byte
		ep   keyward.WebhookEndpoint
	)
	d, err := scanDeliveryWith(row, &ev.Time, &ev.AccountID, &data, &ep.URL, &ep.SealedSecret, &ep.SecretVersion)
	if err != nil {
		return nil, err
	}
	ev.ID, ev.Type, ev.Time, ev.Data = d.EventID, d.EventType, ev.Time.UTC(), data
	ep.ID = d.EndpointID
	d.Event, d.Endpoint = &ev, &ep
	return d, nil
}

func scanEvent(row pgx.Row) (*keyward.Event, error) {
	var (
		e    keyward.Event
		data []byte
	)
	if err := row.Scan(&e.ID, &e.Type, &e.Time, &e.AccountID, &data); err != nil {
		return nil, err
	}
	e.Time, e.Data = e.Time.UTC(), data
	return &e, nil
}

func scanEndpoint(row pgx.Row) (*keyward.WebhookEndpoint, error) {
	var (
		e      keyward.WebhookEndpoint
		events []byte
	)
	if err := row.Scan(&e.ID, &e.AccountID, &e.URL, &e.Description, &events, &e.SealedSecret, &e.SecretVersion,
		&e.Disabled, &e.DisabledReason, &e.CreatedBy, &e.CreatedAt, &e.UpdatedAt); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(events, &e.Events); err != nil {
		return nil, fmt.Errorf("webhook endpoint %s: stored events: %w", e.ID, err)
	}
	e.CreatedAt, e.UpdatedAt = e.CreatedAt.UTC(), e.UpdatedAt.UTC()
	return &e, nil
}
