package httpapi

import (
	"context"
	"net/http"

	"github.com/keyward/keyward"
)

// Rotation policies: PUT, GET and DELETE /v1/accounts/{id}/rotation-policy
// and /v1/keys/{id}/rotation-policy. scope names which of the two a route
// serves.

func accountScope(r *http.Request) keyward.RotationScope {
	return keyward.RotationScope{AccountID: r.PathValue("id")}
}

func keyScope(r *http.Request) keyward.RotationScope {
	return keyward.RotationScope{KeyID: r.PathValue("id")}
}

// setRotationPolicy is PUT .../rotation-policy: the body replaces the policy.
func (s *Server) setRotationPolicy(scope func(*http.Request) keyward.RotationScope) handlerFunc[keyward.RotationPolicySet, *keyward.RotationPolicy] {
	return func(ctx context.Context, r *http.Request, in keyward.RotationPolicySet) (*keyward.RotationPolicy, error) {
		return s.svc.Keys.SetRotationPolicy(ctx, scope(r), in)
	}
}

// getRotationPolicy is GET .../rotation-policy; 404 if there is none.
func (s *Server) getRotationPolicy(scope func(*http.Request) keyward.RotationScope) handlerFunc[noBody, *keyward.RotationPolicy] {
	return func(ctx context.Context, r *http.Request, _ noBody) (*keyward.RotationPolicy, error) {
		return s.svc.Keys.RotationPolicy(ctx, scope(r))
	}
}

// deleteRotationPolicy is DELETE .../rotation-policy; 404 if there is none.
func (s *Server) deleteRotationPolicy(scope func(*http.Request) keyward.RotationScope) handlerFunc[noBody, *struct{}] {
	return func(ctx context.Context, r *http.Request, _ noBody) (*struct{}, error) {
		return nil, s.svc.Keys.DeleteRotationPolicy(ctx, scope(r))
	}
}
