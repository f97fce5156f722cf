package httpapi

import (
	"context"
	"net/http"

	"github.com/keyward/keyward"
)

// reportLeaks is POST /v1/leaks.
func (s *Server) reportLeaks(ctx context.Context, _ *http.Request, in keyward.LeakReport) (*keyward.LeakResults, error) {
	return s.svc.Abuse.ReportLeaks(ctx, in)
}
