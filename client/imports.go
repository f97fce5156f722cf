package client

import (
	"context"
	"net/http"

	"github.com/keyward/keyward"
)

var _ keyward.KeyImportService = (*Client)(nil)

// ImportKeys imports keys hashed elsewhere, as SHA-256 digests with their
// identities, all or none (see docs/importing-keys.md). Root only. With
// r.DryRun the server checks the entries and writes nothing.
func (c *Client) ImportKeys(ctx context.Context, r keyward.KeyImportRequest) (*keyward.KeyImportResult, error) {
	return send[keyward.KeyImportResult](ctx, c, http.MethodPost, "/v1/keys/import", nil, r)
}
