package client

import (
	"context"
	"net/http"

	"github.com/keyward/keyward"
)

var _ keyward.MeterService = (*Client)(nil)

// meterPath is the path of the shared limits of an account (userID "") or
// of one of its users.
func meterPath(accountID, userID string) string {
	if userID == "" {
		return path("/v1/accounts", accountID, "limits")
	}
	return path("/v1/accounts", accountID, "users", userID, "limits")
}

// Meter returns the shared rate limits and live credits of an account
// (userID "") or of one of its users.
func (c *Client) Meter(ctx context.Context, accountID, userID string) (*keyward.Meter, error) {
	return send[keyward.Meter](ctx, c, http.MethodGet, meterPath(accountID, userID), nil, nil)
}

// SetMeter replaces the shared rate limits and credits of an account
// (userID "") or of one of its users (root only).
func (c *Client) SetMeter(ctx context.Context, accountID, userID string, m keyward.MeterSet) (*keyward.Meter, error) {
	return send[keyward.Meter](ctx, c, http.MethodPut, meterPath(accountID, userID), nil, m)
}

// DeleteMeter removes the shared rate limits and credits of an account
// (userID "") or of one of its users (root only).
func (c *Client) DeleteMeter(ctx context.Context, accountID, userID string) error {
	return c.do(ctx, http.MethodDelete, meterPath(accountID, userID), nil, nil, nil)
}
