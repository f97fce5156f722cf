// Package provider manages access tokens of other systems (Gitea, n8n)
// under keyward's lifecycle: a Provider creates, lists, revokes and
// verifies tokens at one system, through one connection (a base URL and
// the credentials of an admin or owner there). keyward records what it
// created, never the token itself; see package admin (credentials) and
// docs/providers.md.
//
// Errors are *keyward.Error: EINVALID for a request the system refused as
// invalid (a bad scope, a missing name), ECONFLICT for a name already
// taken, ENOTFOUND for an unknown token or user, EUNAUTHORIZED when the
// connection's credentials (or, for Verify, the token) are refused,
// EUPSTREAM when the system cannot be reached or answers unexpectedly and
// EUPSTREAMTIMEOUT when it does not answer in time. Messages name the
// provider and its URL, say what went wrong and never quote a token or a
// password.
package provider

import (
	"context"
	"net/http"
	"time"

	"github.com/keyward/keyward"
)

// The kinds of provider.
const (
	KindGitea = "gitea"
	KindN8n   = "n8n"
)

// Token describes a token at a provider, without its secret.
type Token = keyward.ExternalToken

// NewToken is what creating a token takes.
type NewToken struct {
	// User is the account at the provider the token is for (Gitea); n8n
	// keys always belong to the connection's owner and ignore it.
	User   string
	Name   string
	Scopes []string
	// ExpiresAt, if set, is when the provider must stop accepting it.
	ExpiresAt *time.Time
}

// Created is a new token with its secret, which the provider shows once.
type Created struct {
	Token
	Secret keyward.Secret
}

// Identity is who a verified token acts as at the provider.
type Identity struct {
	User string `json:"user"`
}

// Provider is one connection to a system that issues tokens.
type Provider interface {
	// Kind is KindGitea or KindN8n.
	Kind() string
	// Check reports whether the system is reachable and the connection's
	// credentials are accepted; the error says precisely what is wrong
	// (unreachable, timed out, not the expected system, credentials
	// refused, not an admin).
	Check(ctx context.Context) error
	// Create creates a token. ECONFLICT if the user already has a token of
	// that name; EINVALID for scopes or a name the system refuses;
	// ENOTFOUND for an unknown user.
	Create(ctx context.Context, t NewToken) (*Created, error)
	// List lists the tokens of user ("" for the connection's own).
	List(ctx context.Context, user string) ([]Token, error)
	// Revoke revokes the token. ENOTFOUND if the provider does not know
	// it (revoked already, or never there).
	Revoke(ctx context.Context, user, externalID string) error
	// Verify checks a token at the provider and returns who it acts as.
	// EUNAUTHORIZED if the provider refuses it.
	Verify(ctx context.Context, secret keyward.Secret) (*Identity, error)
}

// Connection is how keyward reaches a provider: the base URL and the
// credentials of an admin (Gitea) or the owner (n8n).
type Connection struct {
	BaseURL string
	// Username is the admin's user name (Gitea) or the owner's email
	// (n8n).
	Username string
	Password keyward.Secret
	// Timeout bounds each request to the provider (DefaultTimeout when 0).
	Timeout time.Duration
	// Transport sends the requests; nil: http.DefaultTransport. keyward
	// serve passes one that traces them (tracing.Transport).
	Transport http.RoundTripper
}

// DefaultTimeout bounds each request to a provider when the connection sets
// no timeout.
const DefaultTimeout = 10 * time.Second
