package verify

import (
	"context"
	"net/netip"

	"github.com/keyward/keyward"
)

var _ keyward.KeyVerifier = (*Engine)(nil)

// VerifyKey implements keyward.KeyVerifier for in-process callers (the
// gateway, the middleware): Verify with the API's request and result
// shapes. It never returns an error: an outage is the UNAVAILABLE result.
func (e *Engine) VerifyKey(ctx context.Context, r keyward.VerifyRequest) (*keyward.VerifyResult, error) {
	req := Request{Key: r.Key, Permissions: r.Permissions, Agent: r.Agent}
	if r.IP != "" {
		req.IP, _ = netip.ParseAddr(r.IP)
	}
	return e.Verify(ctx, req).VerifyResult(), nil
}

// VerifyResult returns r in the API's shape: the key id and expiry whenever
// the key was found, identity, permissions and meta only when it is valid.
func (r Result) VerifyResult() *keyward.VerifyResult {
	out := &keyward.VerifyResult{Valid: r.Decision.Valid(), Code: r.Decision}
	if r.Key != nil {
		id := r.Identity()
		out.KeyID = r.Key.ID
		out.ExpiresAt = id.ExpiresAt // a rotated key ends with its grace
		if out.Valid {
			out.Identity = id
			out.Permissions = r.Key.Permissions
			out.Meta = r.Key.Meta
		}
	}
	return out
}
