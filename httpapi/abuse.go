package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/keyward/keyward"
)

func (s *Server) getCredits(ctx context.Context, r *http.Request, _ noBody) (*keyward.Credits, error) {
	return s.svc.Keys.Credits(ctx, r.PathValue("id"))
}

// setCredits is PUT /v1/keys/{id}/credits: the body replaces the key's
// credits.
func (s *Server) setCredits(ctx context.Context, r *http.Request, in keyward.Credits) (*keyward.Credits, error) {
	return s.svc.Keys.SetCredits(ctx, r.PathValue("id"), &in)
}

// deleteCredits is DELETE /v1/keys/{id}/credits: the key has no quota any
// more.
func (s *Server) deleteCredits(ctx context.Context, r *http.Request, _ noBody) (*struct{}, error) {
	_, err := s.svc.Keys.SetCredits(ctx, r.PathValue("id"), nil)
	return nil, err
}

// CreditsTopUp is the body of POST /v1/keys/{id}/credits/top-up.
type CreditsTopUp struct {
	Amount int64 `json:"amount"`
}

func (s *Server) topUpCredits(ctx context.Context, r *http.Request, in CreditsTopUp) (*keyward.Credits, error) {
	return s.svc.Keys.TopUpCredits(ctx, r.PathValue("id"), in.Amount)
}

// listAnomalies is GET /v1/anomalies[?account_id=..&key_id=..&type=..&since=..].
func (s *Server) listAnomalies(ctx context.Context, r *http.Request, _ noBody) (*keyward.AnomalyList, error) {
	q, err := query(r, "account_id", "key_id", "type", "since", "after", "limit")
	if err != nil {
		return nil, err
	}
	p, err := pageOf(q)
	if err != nil {
		return nil, err
	}
	f := keyward.AnomalyFilter{AccountID: q.Get("account_id"), KeyID: q.Get("key_id"), Type: keyward.AnomalyType(q.Get("type"))}
	if err := timeParams(q, map[string]*time.Time{"since": &f.Since}); err != nil {
		return nil, err
	}
	l, err := s.svc.Abuse.Anomalies(ctx, f, p)
	if l != nil && l.Items == nil {
		l.Items = []*keyward.Anomaly{}
	}
	return l, err
}
