package client

import (
	"context"
	"net/http"

	"github.com/keyward/keyward"
)

var _ keyward.RotationPolicyService = (*Client)(nil)

// rotationPolicyPath is the route of the rotation policy of s:
// /v1/accounts/{id}/rotation-policy or /v1/keys/{id}/rotation-policy.
func rotationPolicyPath(s keyward.RotationScope) (string, error) {
	if err := s.Validate(); err != nil {
		return "", err
	}
	if s.KeyID != "" {
		return path("/v1/keys", s.KeyID, "rotation-policy"), nil
	}
	return path("/v1/accounts", s.AccountID, "rotation-policy"), nil
}

// SetRotationPolicy creates or replaces the rotation policy of an account
// or a key.
func (c *Client) SetRotationPolicy(ctx context.Context, s keyward.RotationScope, p keyward.RotationPolicySet) (*keyward.RotationPolicy, error) {
	u, err := rotationPolicyPath(s)
	if err != nil {
		return nil, err
	}
	return send[keyward.RotationPolicy](ctx, c, http.MethodPut, u, nil, p)
}

// RotationPolicy returns the rotation policy of an account or a key;
// ENOTFOUND if it has none.
func (c *Client) RotationPolicy(ctx context.Context, s keyward.RotationScope) (*keyward.RotationPolicy, error) {
	u, err := rotationPolicyPath(s)
	if err != nil {
		return nil, err
	}
	return send[keyward.RotationPolicy](ctx, c, http.MethodGet, u, nil, nil)
}

// DeleteRotationPolicy removes the rotation policy of an account or a key;
// ENOTFOUND if it has none.
func (c *Client) DeleteRotationPolicy(ctx context.Context, s keyward.RotationScope) error {
	u, err := rotationPolicyPath(s)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodDelete, u, nil, nil, nil)
}
