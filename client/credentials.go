package client

import (
	"context"
	"net/http"
	"time"

	"github.com/keyward/keyward"
)

var _ keyward.CredentialService = (*Client)(nil)

// CreateProviderConnection adds a connection to a provider (a Gitea, an n8n);
// the server checks that the provider accepts its credentials first. The
// password is sent this once and never returned.
func (c *Client) CreateProviderConnection(ctx context.Context, n keyward.NewProviderConnection) (*keyward.ProviderConnection, error) {
	return send[keyward.ProviderConnection](ctx, c, http.MethodPost, "/v1/providers", nil, n)
}

// UpdateProviderConnection changes a connection (root only); the provider
// must accept the result.
func (c *Client) UpdateProviderConnection(ctx context.Context, id string, u keyward.ProviderConnectionUpdate) (*keyward.ProviderConnection, error) {
	return send[keyward.ProviderConnection](ctx, c, http.MethodPatch, path("/v1/providers", id), nil, u)
}

// ProviderConnection returns a connection.
func (c *Client) ProviderConnection(ctx context.Context, id string) (*keyward.ProviderConnection, error) {
	return send[keyward.ProviderConnection](ctx, c, http.MethodGet, path("/v1/providers", id), nil, nil)
}

// ProviderConnections returns one page of the connections of an account
// ("" for every account the caller may see).
func (c *Client) ProviderConnections(ctx context.Context, accountID string, p keyward.Page) (*keyward.ProviderConnectionList, error) {
	q := pageQuery(p)
	if accountID != "" {
		q.Set("account_id", accountID)
	}
	return send[keyward.ProviderConnectionList](ctx, c, http.MethodGet, "/v1/providers", q, nil)
}

// TestProviderConnection asks the server to check that the provider is
// reachable and accepts the connection's credentials; the error says what
// is wrong (EUPSTREAM, EUPSTREAMTIMEOUT when the provider fails).
func (c *Client) TestProviderConnection(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, path("/v1/providers", id, "test"), nil, nil, nil)
}

// DeleteProviderConnection deletes a connection; ECONFLICT while
// credentials created through it still work.
func (c *Client) DeleteProviderConnection(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, path("/v1/providers", id), nil, nil, nil)
}

// CreateCredential creates a token at a connection's provider; the result
// holds the token, shown this once.
func (c *Client) CreateCredential(ctx context.Context, n keyward.NewCredential) (*keyward.CreatedCredential, error) {
	return send[keyward.CreatedCredential](ctx, c, http.MethodPost, "/v1/credentials", nil, n)
}

// Credential returns a managed credential (never its token).
func (c *Client) Credential(ctx context.Context, id string) (*keyward.ManagedCredential, error) {
	return send[keyward.ManagedCredential](ctx, c, http.MethodGet, path("/v1/credentials", id), nil, nil)
}

// Credentials returns one page of the managed credentials matching f.
func (c *Client) Credentials(ctx context.Context, f keyward.CredentialFilter, p keyward.Page) (*keyward.CredentialList, error) {
	q := pageQuery(p)
	if f.AccountID != "" {
		q.Set("account_id", f.AccountID)
	}
	if f.ProviderID != "" {
		q.Set("provider_id", f.ProviderID)
	}
	if f.Status != "" {
		q.Set("status", string(f.Status))
	}
	return send[keyward.CredentialList](ctx, c, http.MethodGet, "/v1/credentials", q, nil)
}

// RevokeCredential revokes a credential at its provider.
func (c *Client) RevokeCredential(ctx context.Context, id string) (*keyward.ManagedCredential, error) {
	return send[keyward.ManagedCredential](ctx, c, http.MethodPost, path("/v1/credentials", id, "revoke"), nil, nil)
}

// credentialRotate is the body of POST /v1/credentials/{id}/rotate.
type credentialRotate struct {
	Grace keyward.Duration `json:"grace,omitempty"`
}

// RotateCredential creates a replacement of a credential and returns it
// with its token; the old one keeps working for grace (none: it is revoked
// at once).
func (c *Client) RotateCredential(ctx context.Context, id string, grace time.Duration) (*keyward.CreatedCredential, error) {
	return send[keyward.CreatedCredential](ctx, c, http.MethodPost, path("/v1/credentials", id, "rotate"), nil, credentialRotate{Grace: keyward.Duration(grace)})
}

// credentialVerify is the body of POST /v1/credentials/verify.
type credentialVerify struct {
	ProviderID string `json:"provider_id"`
	Token      string `json:"token"`
}

// VerifyCredential asks the connection's provider whether token is valid.
// An invalid token is a result (Valid false), not an error.
func (c *Client) VerifyCredential(ctx context.Context, providerID, token string) (*keyward.CredentialVerification, error) {
	return send[keyward.CredentialVerification](ctx, c, http.MethodPost, "/v1/credentials/verify", nil, credentialVerify{ProviderID: providerID, Token: token})
}

// Reconcile compares a connection's tokens at the provider with keyward's
// records, acting on the differences only when r asks to.
func (c *Client) Reconcile(ctx context.Context, providerID string, r keyward.ReconcileRequest) (*keyward.ReconcileReport, error) {
	return send[keyward.ReconcileReport](ctx, c, http.MethodPost, path("/v1/providers", providerID, "reconcile"), nil, r)
}
