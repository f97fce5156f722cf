package client

import (
	"context"
	"net/http"

	"github.com/keyward/keyward"
)

var _ keyward.IPRuleService = (*Client)(nil)

// CreateIPRule creates a block or allow rule (root: global or any account;
// account admin: its own account).
func (c *Client) CreateIPRule(ctx context.Context, in keyward.IPRuleCreate) (*keyward.IPRule, error) {
	return send[keyward.IPRule](ctx, c, http.MethodPost, "/v1/ip-rules", nil, in)
}

// IPRules returns one page of the IP rules matching f.
func (c *Client) IPRules(ctx context.Context, f keyward.IPRuleFilter, p keyward.Page) (*keyward.IPRuleList, error) {
	q := pageQuery(p)
	if f.AccountID != "" {
		q.Set("account_id", f.AccountID)
	}
	if f.Global {
		q.Set("scope", "global")
	}
	return send[keyward.IPRuleList](ctx, c, http.MethodGet, "/v1/ip-rules", q, nil)
}

// DeleteIPRule deletes an IP rule.
func (c *Client) DeleteIPRule(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, path("/v1/ip-rules", id), nil, nil, nil)
}
