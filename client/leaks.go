package client

import (
	"context"
	"net/http"

	"github.com/keyward/keyward"
)

var _ keyward.LeakService = (*Client)(nil)

// ReportLeaks reports raw keys found where they should not be; the server
// revokes their keys at once and answers per token, in order. The caller
// must be root or hold keyward.PermissionReportLeak; only root gets the
// revoked keys' ids.
func (c *Client) ReportLeaks(ctx context.Context, r keyward.LeakReport) (*keyward.LeakResults, error) {
	return send[keyward.LeakResults](ctx, c, http.MethodPost, "/v1/leaks", nil, r)
}
