package httpapi

import (
	"context"
	"net/http"

	"github.com/keyward/keyward"
)

// Shared limits (docs/abuse-protection.md#shared-limits): the rate limits
// and credits all the keys of an account, or of one of its users, count
// against together, at /v1/accounts/{id}/limits and
// /v1/accounts/{id}/users/{uid}/limits ({uid} absent: the account's).

// getMeter is GET .../limits: the shared limits with live credits.
func (s *Server) getMeter(ctx context.Context, r *http.Request, _ noBody) (*keyward.Meter, error) {
	return s.svc.Keys.Meter(ctx, r.PathValue("id"), r.PathValue("uid"))
}

// setMeter is PUT .../limits: the body replaces the shared limits.
func (s *Server) setMeter(ctx context.Context, r *http.Request, in keyward.MeterSet) (*keyward.Meter, error) {
	return s.svc.Keys.SetMeter(ctx, r.PathValue("id"), r.PathValue("uid"), in)
}

// deleteMeter is DELETE .../limits.
func (s *Server) deleteMeter(ctx context.Context, r *http.Request, _ noBody) (*struct{}, error) {
	return nil, s.svc.Keys.DeleteMeter(ctx, r.PathValue("id"), r.PathValue("uid"))
}
