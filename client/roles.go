package client

import (
	"context"
	"net/http"

	"github.com/keyward/keyward"
)

var _ keyward.RoleService = (*Client)(nil)

// CreateRole creates a named role in an account (root, or the account's
// admins, holding every permission they put in it).
func (c *Client) CreateRole(ctx context.Context, accountID string, in keyward.RoleCreate) (*keyward.NamedRole, error) {
	return send[keyward.NamedRole](ctx, c, http.MethodPost, path("/v1/accounts", accountID, "roles"), nil, in)
}

// Role returns a named role of an account.
func (c *Client) Role(ctx context.Context, accountID, name string) (*keyward.NamedRole, error) {
	return send[keyward.NamedRole](ctx, c, http.MethodGet, path("/v1/accounts", accountID, "roles", name), nil, nil)
}

// Roles returns one page of an account's named roles, by name.
func (c *Client) Roles(ctx context.Context, accountID string, p keyward.Page) (*keyward.RoleList, error) {
	return send[keyward.RoleList](ctx, c, http.MethodGet, path("/v1/accounts", accountID, "roles"), pageQuery(p), nil)
}

// UpdateRole replaces a role's permissions; every key holding it holds the
// new ones at once.
func (c *Client) UpdateRole(ctx context.Context, accountID, name string, in keyward.RoleUpdate) (*keyward.NamedRole, error) {
	return send[keyward.NamedRole](ctx, c, http.MethodPatch, path("/v1/accounts", accountID, "roles", name), nil, in)
}

// DeleteRole deletes a role, detaching it from every key.
func (c *Client) DeleteRole(ctx context.Context, accountID, name string) error {
	return c.do(ctx, http.MethodDelete, path("/v1/accounts", accountID, "roles", name), nil, nil, nil)
}
