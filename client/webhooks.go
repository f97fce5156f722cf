package client

import (
	"context"
	"net/http"

	"github.com/keyward/keyward"
)

var _ keyward.WebhookService = (*Client)(nil)

// CreateWebhookEndpoint registers an endpoint; the result holds its signing
// secret, shown this once.
func (c *Client) CreateWebhookEndpoint(ctx context.Context, n keyward.NewWebhookEndpoint) (*keyward.CreatedWebhookEndpoint, error) {
	return send[keyward.CreatedWebhookEndpoint](ctx, c, http.MethodPost, "/v1/webhooks", nil, n)
}

// WebhookEndpoint returns an endpoint.
func (c *Client) WebhookEndpoint(ctx context.Context, id string) (*keyward.WebhookEndpoint, error) {
	return send[keyward.WebhookEndpoint](ctx, c, http.MethodGet, path("/v1/webhooks", id), nil, nil)
}

// WebhookEndpoints returns one page of the endpoints matching f.
func (c *Client) WebhookEndpoints(ctx context.Context, f keyward.WebhookEndpointFilter, p keyward.Page) (*keyward.WebhookEndpointList, error) {
	q := pageQuery(p)
	if f.AccountID != "" {
		q.Set("account_id", f.AccountID)
	}
	return send[keyward.WebhookEndpointList](ctx, c, http.MethodGet, "/v1/webhooks", q, nil)
}

// UpdateWebhookEndpoint changes an endpoint.
func (c *Client) UpdateWebhookEndpoint(ctx context.Context, id string, u keyward.WebhookEndpointUpdate) (*keyward.WebhookEndpoint, error) {
	return send[keyward.WebhookEndpoint](ctx, c, http.MethodPatch, path("/v1/webhooks", id), nil, u)
}

// RotateWebhookSecret gives an endpoint a new signing secret, returned this
// once.
func (c *Client) RotateWebhookSecret(ctx context.Context, id string) (*keyward.CreatedWebhookEndpoint, error) {
	return send[keyward.CreatedWebhookEndpoint](ctx, c, http.MethodPost, path("/v1/webhooks", id, "rotate-secret"), nil, nil)
}

// DeleteWebhookEndpoint deletes an endpoint.
func (c *Client) DeleteWebhookEndpoint(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, path("/v1/webhooks", id), nil, nil, nil)
}

// WebhookDeliveries returns one page of an endpoint's delivery log, newest
// event first.
func (c *Client) WebhookDeliveries(ctx context.Context, id string, p keyward.Page) (*keyward.WebhookDeliveryList, error) {
	return send[keyward.WebhookDeliveryList](ctx, c, http.MethodGet, path("/v1/webhooks", id, "deliveries"), pageQuery(p), nil)
}

// RetryWebhookDelivery sends a delivery of an endpoint's log again.
func (c *Client) RetryWebhookDelivery(ctx context.Context, id, eventID string) (*keyward.WebhookDelivery, error) {
	return send[keyward.WebhookDelivery](ctx, c, http.MethodPost, path("/v1/webhooks", id, "deliveries", eventID, "retry"), nil, nil)
}
