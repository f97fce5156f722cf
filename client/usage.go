package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/keyward/keyward"
)

var _ keyward.UsageService = (*Client)(nil)

// Usage returns the usage rows matching f.
func (c *Client) Usage(ctx context.Context, f keyward.UsageFilter) (*keyward.UsageReport, error) {
	q := url.Values{}
	setIf(q, "granularity", string(f.Granularity))
	setIf(q, "key_id", f.KeyID)
	setIf(q, "account_id", f.AccountID)
	setTime(q, "since", f.Since)
	setTime(q, "until", f.Until)
	return send[keyward.UsageReport](ctx, c, http.MethodGet, "/v1/usage", q, nil)
}
