package client

import (
	"context"
	"net/http"

	"github.com/keyward/keyward"
)

// CreatePortalSession creates an end-user portal session for a user of an
// account (by its external id) and returns its single-use link, to send
// the customer's browser to (docs/portal.md).
func (c *Client) CreatePortalSession(ctx context.Context, in keyward.PortalSessionCreate) (*keyward.PortalLink, error) {
	return send[keyward.PortalLink](ctx, c, http.MethodPost, "/v1/portal/sessions", nil, in)
}

// PortalBranding returns how an account's portal pages look.
func (c *Client) PortalBranding(ctx context.Context, accountID string) (*keyward.PortalBranding, error) {
	return send[keyward.PortalBranding](ctx, c, http.MethodGet, path("/v1/accounts", accountID, "portal-branding"), nil, nil)
}

// SetPortalBranding replaces the branding of b.AccountID's portal pages.
func (c *Client) SetPortalBranding(ctx context.Context, b keyward.PortalBranding) (*keyward.PortalBranding, error) {
	return send[keyward.PortalBranding](ctx, c, http.MethodPut, path("/v1/accounts", b.AccountID, "portal-branding"), nil, b)
}
