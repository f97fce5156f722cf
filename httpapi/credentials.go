package httpapi

import (
	"cmp"
	"context"
	"net/http"
	"time"

	"github.com/keyward/keyward"
)

// The handlers of provider connections (/v1/providers) and the managed
// credentials created through them (/v1/credentials). Request bodies carry
// a connection's password and tokens being verified; like every body, they
// are never logged, and errors never quote them.

func (s *Server) addProvider(ctx context.Context, _ *http.Request, in keyward.NewProviderConnection) (*keyward.ProviderConnection, error) {
	return s.svc.Credentials.CreateProviderConnection(ctx, in)
}

// listProviders is GET /v1/providers[?account_id=..].
func (s *Server) listProviders(ctx context.Context, r *http.Request, _ noBody) (*keyward.ProviderConnectionList, error) {
	q, err := query(r, "account_id", "after", "limit")
	if err != nil {
		return nil, err
	}
	p, err := pageOf(q)
	if err != nil {
		return nil, err
	}
	l, err := s.svc.Credentials.ProviderConnections(ctx, q.Get("account_id"), p)
	if l != nil && l.Items == nil {
		l.Items = []*keyward.ProviderConnection{}
	}
	return l, err
}

func (s *Server) getProvider(ctx context.Context, r *http.Request, _ noBody) (*keyward.ProviderConnection, error) {
	return s.svc.Credentials.ProviderConnection(ctx, r.PathValue("id"))
}

func (s *Server) updateProvider(ctx context.Context, r *http.Request, in keyward.ProviderConnectionUpdate) (*keyward.ProviderConnection, error) {
	return s.svc.Credentials.UpdateProviderConnection(ctx, r.PathValue("id"), in)
}

func (s *Server) removeProvider(ctx context.Context, r *http.Request, _ noBody) (*struct{}, error) {
	return nil, s.svc.Credentials.DeleteProviderConnection(ctx, r.PathValue("id"))
}

// providerTest is the answer of a connection test that passed.
type providerTest struct {
	OK bool `json:"ok"`
}

// testProvider is POST /v1/providers/{id}/test: 200 {"ok":true} when the
// provider is reachable and accepts the connection's credentials, the
// error saying what is wrong otherwise (upstream_error 502,
// upstream_timeout 504 when the provider fails).
func (s *Server) testProvider(ctx context.Context, r *http.Request, _ noBody) (*providerTest, error) {
	if err := s.svc.Credentials.TestProviderConnection(ctx, r.PathValue("id")); err != nil {
		return nil, err
	}
	return &providerTest{OK: true}, nil
}

func (s *Server) reconcileProvider(ctx context.Context, r *http.Request, in keyward.ReconcileRequest) (*keyward.ReconcileReport, error) {
	return s.svc.Credentials.Reconcile(ctx, r.PathValue("id"), in)
}

// providerID returns the provider a request names by provider_id or by
// connection_id, the name it had before (deprecated, accepted on input for
// one release); both at once must agree.
func providerID(providerID, connectionID string) (string, error) {
	if providerID != "" && connectionID != "" && providerID != connectionID {
		return "", keyward.Errorf(keyward.EINVALID, "provider_id %q and connection_id %q differ: give provider_id only (connection_id is its deprecated name)", providerID, connectionID)
	}
	return cmp.Or(providerID, connectionID), nil
}

// credentialCreate is the body of POST /v1/credentials.
type credentialCreate struct {
	keyward.NewCredential
	// ConnectionID is the deprecated name of provider_id.
	ConnectionID string `json:"connection_id,omitempty"`
}

func (s *Server) createCredential(ctx context.Context, _ *http.Request, in credentialCreate) (*keyward.CreatedCredential, error) {
	var err error
	if in.ProviderID, err = providerID(in.ProviderID, in.ConnectionID); err != nil {
		return nil, err
	}
	return s.svc.Credentials.CreateCredential(ctx, in.NewCredential)
}

// listCredentials is GET
// /v1/credentials[?account_id=..&provider_id=..&status=..]; connection_id
// is the deprecated name of provider_id.
func (s *Server) listCredentials(ctx context.Context, r *http.Request, _ noBody) (*keyward.CredentialList, error) {
	q, err := query(r, "account_id", "provider_id", "connection_id", "status", "after", "limit")
	if err != nil {
		return nil, err
	}
	p, err := pageOf(q)
	if err != nil {
		return nil, err
	}
	prov, err := providerID(q.Get("provider_id"), q.Get("connection_id"))
	if err != nil {
		return nil, err
	}
	f := keyward.CredentialFilter{AccountID: q.Get("account_id"), ProviderID: prov, Status: keyward.CredentialStatus(q.Get("status"))}
	if f.Status != "" && !knownCredentialStatus(f.Status) {
		return nil, keyward.Errorf(keyward.EINVALID, "status %q: use active, rotated, revoked, expired, orphaned or vanished", f.Status)
	}
	l, err := s.svc.Credentials.Credentials(ctx, f, p)
	if l != nil && l.Items == nil {
		l.Items = []*keyward.ManagedCredential{}
	}
	return l, err
}

// knownCredentialStatus reports whether st is a credential status, so a
// misspelt filter is an error rather than an empty list.
func knownCredentialStatus(st keyward.CredentialStatus) bool {
	switch st {
	case keyward.CredentialActive, keyward.CredentialRotated, keyward.CredentialRevoked,
		keyward.CredentialExpired, keyward.CredentialOrphaned, keyward.CredentialVanished:
		return true
	}
	return false
}

func (s *Server) getCredential(ctx context.Context, r *http.Request, _ noBody) (*keyward.ManagedCredential, error) {
	return s.svc.Credentials.Credential(ctx, r.PathValue("id"))
}

func (s *Server) revokeCredential(ctx context.Context, r *http.Request, _ noBody) (*keyward.ManagedCredential, error) {
	return s.svc.Credentials.RevokeCredential(ctx, r.PathValue("id"))
}

// credentialRotate is the body of POST /v1/credentials/{id}/rotate.
type credentialRotate struct {
	// Grace is how long the old token keeps working; absent or 0: it is
	// revoked at once.
	Grace keyward.Duration `json:"grace,omitempty"`
}

func (s *Server) rotateCredential(ctx context.Context, r *http.Request, in credentialRotate) (*keyward.CreatedCredential, error) {
	return s.svc.Credentials.RotateCredential(ctx, r.PathValue("id"), time.Duration(in.Grace))
}

// credentialVerify is the body of POST /v1/credentials/verify.
type credentialVerify struct {
	ProviderID string `json:"provider_id"`
	// ConnectionID is the deprecated name of provider_id.
	ConnectionID string `json:"connection_id,omitempty"`
	Token        string `json:"token"`
}

// verifyCredential is POST /v1/credentials/verify: 200 with the provider's
// verdict on the token, valid or not; errors are about the caller, the
// connection or the provider being unreachable.
func (s *Server) verifyCredential(ctx context.Context, _ *http.Request, in credentialVerify) (*keyward.CredentialVerification, error) {
	prov, err := providerID(in.ProviderID, in.ConnectionID)
	if err != nil {
		return nil, err
	}
	if prov == "" {
		return nil, keyward.Errorf(keyward.EINVALID, "provider_id is required: the provider connection to check the token at")
	}
	return s.svc.Credentials.VerifyCredential(ctx, prov, in.Token)
}
