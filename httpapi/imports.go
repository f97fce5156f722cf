package httpapi

import (
	"context"
	"net/http"

	"github.com/keyward/keyward"
)

// importKeys is POST /v1/keys/import.
func (s *Server) importKeys(ctx context.Context, _ *http.Request, in keyward.KeyImportRequest) (*keyward.KeyImportResult, error) {
	return s.svc.Keys.ImportKeys(ctx, in)
}
