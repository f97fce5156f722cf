package admin

import (
	"context"
	"slices"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/webhook"
	"github.com/keyward/keyward/webhook/signature"
)

// Webhooks manages webhook endpoints and reads their deliveries; package
// webhook delivers the events.
type Webhooks struct {
	recorder
	*writes // its own: endpoint changes reach no verification cache
	store   webhookStore
	guard   webhook.Guard
}

var _ keyward.WebhookService = (*Webhooks)(nil)

// webhookStore is what Webhooks reads and writes.
type webhookStore interface {
	CreateWebhookEndpoint(ctx context.Context, ch keyward.Change, e *keyward.WebhookEndpoint) error
	WebhookEndpoint(ctx context.Context, id string) (*keyward.WebhookEndpoint, error)
	WebhookEndpoints(ctx context.Context, f keyward.WebhookEndpointFilter, p keyward.Page) ([]*keyward.WebhookEndpoint, string, error)
	UpdateWebhookEndpoint(ctx context.Context, ch keyward.Change, id string, fn func(*keyward.WebhookEndpoint) error) (*keyward.WebhookEndpoint, error)
	DeleteWebhookEndpoint(ctx context.Context, ch keyward.Change, id string) (*keyward.WebhookEndpoint, error)
	WebhookDeliveries(ctx context.Context, endpointID string, p keyward.Page) ([]*keyward.WebhookDelivery, string, error)
	RetryDelivery(ctx context.Context, ch keyward.Change, endpointID, eventID string, now time.Time) (*keyward.WebhookDelivery, error)
}

// maxAccountWebhooks bounds the endpoints of one account: every event of
// the account is delivered to each.
const maxAccountWebhooks = 20

// maxURLLen bounds an endpoint URL.
const maxURLLen = 2048

// CreateWebhookEndpoint registers an endpoint and returns it with its
// signing secret, shown this once. Root may create global endpoints
// (receiving every event) and endpoints of any account; an account admin
// only endpoints of its own account; a user none.
func (s *Webhooks) CreateWebhookEndpoint(ctx context.Context, n keyward.NewWebhookEndpoint) (*keyward.CreatedWebhookEndpoint, error) {
	id, unlock, err := s.writer(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := scopeToAccount(id, &n.AccountID, "manage webhooks"); err != nil {
		return nil, err
	}
	if err := s.validateEndpoint(n.URL, n.Description, n.Events); err != nil {
		return nil, err
	}
	if n.AccountID != "" {
		existing, _, err := s.store.WebhookEndpoints(ctx, keyward.WebhookEndpointFilter{AccountID: n.AccountID}, keyward.Page{Limit: maxAccountWebhooks})
		if err != nil {
			return nil, err
		}
		if len(existing) >= maxAccountWebhooks {
			return nil, keyward.Errorf(keyward.ECONFLICT, "account %s has %d webhook endpoints, the most allowed: delete one first", n.AccountID, maxAccountWebhooks)
		}
	}
	now := s.utc()
	e := &keyward.WebhookEndpoint{
		ID: apikey.NewID("whe"), AccountID: n.AccountID, URL: n.URL, Description: n.Description,
		Events: append([]string{}, n.Events...), CreatedBy: id.KeyID, CreatedAt: now, UpdatedAt: now,
	}
	secret, err := s.newWebhookSecret(e)
	if err != nil {
		return nil, err
	}
	ch, err := s.audit(ctx, id, "webhook.create", "webhook_endpoint", e.ID, e.AccountID,
		map[string]any{"url": e.URL, "description": e.Description, "events": e.Events})
	if err != nil {
		return nil, err
	}
	if err := s.store.CreateWebhookEndpoint(ctx, ch, e); err != nil {
		return nil, err
	}
	return &keyward.CreatedWebhookEndpoint{Endpoint: e, Secret: secret.Reveal()}, nil
}

// newWebhookSecret generates a signing secret and seals it into e.
func (s *Webhooks) newWebhookSecret(e *keyward.WebhookEndpoint) (keyward.Secret, error) {
	if s.sealer == nil {
		return "", keyward.Errorf(keyward.EINTERNAL, "webhooks need master keys to keep their secrets: configure master_keys")
	}
	secret, err := signature.NewSecret()
	if err != nil {
		return "", err
	}
	if e.SecretVersion, e.SealedSecret, err = s.sealer.Seal([]byte(secret), keyward.WebhookSecretAD(e.ID)); err != nil {
		return "", keyward.WrapError(keyward.EINTERNAL, err, "admin: sealing the secret of webhook endpoint %s", e.ID)
	}
	return secret, nil
}

// validateEndpoint checks what a caller may set on an endpoint.
func (s *Webhooks) validateEndpoint(url, description string, events []string) error {
	if url == "" {
		return keyward.Errorf(keyward.EINVALID, "url is required: give the https URL that receives the events")
	}
	if len(url) > maxURLLen {
		return keyward.Errorf(keyward.EINVALID, "url is %d bytes long, more than %d", len(url), maxURLLen)
	}
	if err := s.guard.CheckURL(url); err != nil {
		return err
	}
	if err := validateName("description", description, false); err != nil {
		return err
	}
	for i, ev := range events {
		if !keyward.KnownEventType(ev) {
			return keyward.Errorf(keyward.EINVALID, "events: %q is not an event type: use one of %v, or none for all", ev, keyward.EventTypes)
		}
		if slices.Contains(events[:i], ev) {
			return keyward.Errorf(keyward.EINVALID, "events: %s is listed twice", ev)
		}
	}
	return nil
}

// webhookEndpoint returns the endpoint with id if the caller may manage it
// (ENOTFOUND otherwise, as for a missing one).
func (s *Webhooks) webhookEndpoint(ctx context.Context, id *keyward.Identity, endpointID string) (*keyward.WebhookEndpoint, error) {
	account := ""
	if err := scopeToAccount(id, &account, "manage webhooks"); err != nil {
		return nil, err
	}
	e, err := s.store.WebhookEndpoint(ctx, endpointID)
	if err != nil {
		return nil, err
	}
	if account != "" && e.AccountID != account {
		return nil, notFound("webhook endpoint", endpointID)
	}
	return e, nil
}

// WebhookEndpoint returns an endpoint the caller may manage.
func (s *Webhooks) WebhookEndpoint(ctx context.Context, endpointID string) (*keyward.WebhookEndpoint, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	return s.webhookEndpoint(ctx, id, endpointID)
}

// WebhookEndpoints lists the endpoints the caller may manage: all (or one
// account's) for root, its account's for an account admin.
func (s *Webhooks) WebhookEndpoints(ctx context.Context, f keyward.WebhookEndpointFilter, p keyward.Page) (*keyward.WebhookEndpointList, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := scopeToAccount(id, &f.AccountID, "manage webhooks"); err != nil {
		return nil, err
	}
	items, next, err := s.store.WebhookEndpoints(ctx, f, p)
	if err != nil {
		return nil, err
	}
	return &keyward.WebhookEndpointList{Items: items, Next: next}, nil
}

// UpdateWebhookEndpoint changes an endpoint's URL, description, events or
// disabled state; enabling it clears the reason it was disabled for, and
// its pending deliveries resume.
func (s *Webhooks) UpdateWebhookEndpoint(ctx context.Context, endpointID string, u keyward.WebhookEndpointUpdate) (*keyward.WebhookEndpoint, error) {
	id, unlock, err := s.writer(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	cur, err := s.webhookEndpoint(ctx, id, endpointID)
	if err != nil {
		return nil, err
	}
	ch, err := s.audit(ctx, id, "webhook.update", "webhook_endpoint", endpointID, cur.AccountID, u)
	if err != nil {
		return nil, err
	}
	now := s.utc()
	// Applied to the endpoint as stored in the transaction: a delivery
	// that disabled it (410 Gone) since cur was read is not undone.
	return s.store.UpdateWebhookEndpoint(ctx, ch, endpointID, func(e *keyward.WebhookEndpoint) error {
		if u.URL != nil {
			e.URL = *u.URL
		}
		if u.Description != nil {
			e.Description = *u.Description
		}
		if u.Events != nil {
			e.Events = append([]string{}, *u.Events...)
		}
		if u.Disabled != nil {
			e.Disabled, e.DisabledReason = *u.Disabled, ""
			if e.Disabled {
				e.DisabledReason = "disabled by an admin"
			}
		}
		e.UpdatedAt = now
		return s.validateEndpoint(e.URL, e.Description, e.Events)
	})
}

// RotateWebhookSecret gives an endpoint a new signing secret, returned this
// once; deliveries are signed with it from the next attempt on.
func (s *Webhooks) RotateWebhookSecret(ctx context.Context, endpointID string) (*keyward.CreatedWebhookEndpoint, error) {
	id, unlock, err := s.writer(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	cur, err := s.webhookEndpoint(ctx, id, endpointID)
	if err != nil {
		return nil, err
	}
	secret, err := s.newWebhookSecret(cur)
	if err != nil {
		return nil, err
	}
	ch, err := s.audit(ctx, id, "webhook.rotate_secret", "webhook_endpoint", endpointID, cur.AccountID, nil)
	if err != nil {
		return nil, err
	}
	now := s.utc()
	e, err := s.store.UpdateWebhookEndpoint(ctx, ch, endpointID, func(e *keyward.WebhookEndpoint) error {
		e.SealedSecret, e.SecretVersion, e.UpdatedAt = cur.SealedSecret, cur.SecretVersion, now
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &keyward.CreatedWebhookEndpoint{Endpoint: e, Secret: secret.Reveal()}, nil
}

// DeleteWebhookEndpoint deletes an endpoint with its delivery log; its
// pending deliveries are dropped.
func (s *Webhooks) DeleteWebhookEndpoint(ctx context.Context, endpointID string) error {
	id, unlock, err := s.writer(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	cur, err := s.webhookEndpoint(ctx, id, endpointID)
	if err != nil {
		return err
	}
	ch, err := s.audit(ctx, id, "webhook.delete", "webhook_endpoint", endpointID, cur.AccountID, map[string]any{"url": cur.URL})
	if err != nil {
		return err
	}
	_, err = s.store.DeleteWebhookEndpoint(ctx, ch, endpointID)
	return err
}

// WebhookDeliveries returns a page of an endpoint's delivery log, newest
// event first. Root reads each delivery's last error in full; an account
// admin reads webhook.PublicError of it.
func (s *Webhooks) WebhookDeliveries(ctx context.Context, endpointID string, p keyward.Page) (*keyward.WebhookDeliveryList, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.webhookEndpoint(ctx, id, endpointID); err != nil {
		return nil, err
	}
	items, next, err := s.store.WebhookDeliveries(ctx, endpointID, p)
	if err != nil {
		return nil, err
	}
	if !isRoot(id) {
		// The detail of a failure that got no response names resolver
		// and internal addresses: an account admin sees its kind.
		for _, d := range items {
			d.LastError = webhook.PublicError(d.LastStatus, d.LastError)
		}
	}
	return &keyward.WebhookDeliveryList{Items: items, Next: next}, nil
}

// RetryWebhookDelivery sends a delivered or failed delivery of the
// endpoint's log again: it is pending once more, due now, and the webhook
// sender attempts it at its next run (its attempts go on counting, so a
// failure does not start a new series of retries). Root, or the account
// admins of the endpoint's account. Audited.
func (s *Webhooks) RetryWebhookDelivery(ctx context.Context, endpointID, eventID string) (*keyward.WebhookDelivery, error) {
	id, unlock, err := s.writer(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	cur, err := s.webhookEndpoint(ctx, id, endpointID)
	if err != nil {
		return nil, err
	}
	ch, err := s.audit(ctx, id, "webhook.retry_delivery", "webhook_endpoint", endpointID, cur.AccountID, map[string]any{"event_id": eventID})
	if err != nil {
		return nil, err
	}
	d, err := s.store.RetryDelivery(ctx, ch, endpointID, eventID, s.utc())
	if err != nil {
		return nil, err
	}
	if !isRoot(id) {
		d.LastError = webhook.PublicError(d.LastStatus, d.LastError)
	}
	return d, nil
}
