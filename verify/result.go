package verify

import (
	"context"
	"net/netip"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/permission"
	"github.com/keyward/keyward/ratelimit"
)

var _ keyward.KeyVerifier = (*Engine)(nil)

// queries holds the queries NewRequest parsed: each distinct query is
// parsed once.
var queries permission.Cache

// NewRequest returns r in the engine's shape, or EINVALID naming what
// cannot be verified: an IP that is not an address, a cost outside 0 to
// keyward.MaxVerificationCost, a require_role that is neither a tier nor a role name, an
// environment that is not an environment name; EQUERY for a query that
// does not parse (keyward.QueryError). Every entry point taking the API's
// shape (VerifyKey, the HTTP API) converts through it.
func NewRequest(r keyward.VerifyRequest) (Request, error) {
	req := Request{Key: r.Key, Permissions: r.Permissions, Agent: r.Agent, Limits: r.Limits, ManualLimits: r.ManualLimits, Cost: r.Cost, Role: r.RequireRole, Environment: r.Environment}
	if err := CheckCost(r.Cost); err != nil {
		return Request{}, err
	}
	if r.Environment != "" {
		if err := keyward.ValidateEnvironment("environment", r.Environment); err != nil {
			return Request{}, err
		}
	}
	q, err := r.CompileNeeds(&queries)
	if err != nil {
		return Request{}, err
	}
	req.Query = q
	if r.IP != "" {
		ip, err := netip.ParseAddr(r.IP)
		if err != nil {
			return Request{}, keyward.Errorf(keyward.EINVALID, "ip %q is not an IP address", r.IP)
		}
		req.IP = ip
	}
	return req, nil
}

// CheckCost returns EINVALID unless cost is a valid Request.Cost: 0 (which
// means 1) to keyward.MaxVerificationCost.
func CheckCost(cost int64) error {
	if cost < 0 || cost > keyward.MaxVerificationCost {
		return keyward.Errorf(keyward.EINVALID, "cost must be between 1 and %d (0 or omitted means 1), got %d", int64(keyward.MaxVerificationCost), cost)
	}
	return nil
}

// VerifyKey implements keyward.KeyVerifier for in-process callers (the
// gateway, the middleware): Verify with the API's request and result
// shapes. It returns EINVALID for a request NewRequest refuses, and no
// other error: an outage is the UNAVAILABLE result.
func (e *Engine) VerifyKey(ctx context.Context, r keyward.VerifyRequest) (*keyward.VerifyResult, error) {
	req, err := NewRequest(r)
	if err != nil {
		return nil, err
	}
	return e.Verify(ctx, req).VerifyResult(), nil
}

// VerifyResult returns r in the API's shape: the key id, environment and
// expiry whenever the key was found, identity, permissions, meta (the
// key's laid over its user's), name and the user's meta and shared limits
// only when it is valid, the rate limits and the credits left whenever the call
// reached them, and what the key lacked when it was refused
// INSUFFICIENT_PERMISSIONS.
func (r Result) VerifyResult() *keyward.VerifyResult {
	out := &keyward.VerifyResult{Valid: r.Decision.Valid(), Code: r.Decision}
	if en := r.key; en != nil {
		id := r.Identity()
		out.KeyID = en.keyID()
		out.Environment = en.environment()
		out.ExpiresAt = id.ExpiresAt // a rotated key ends with its grace
		if out.Valid {
			out.Identity = id
			out.Permissions = en.perms.List()
			out.Name = en.name()
			if x := en.extra; x != nil {
				out.Meta = x.verifiedMeta()
				if x.user != nil {
					out.UserMeta = x.user.meta
				}
				if x.userMeter != nil {
					out.UserRateLimits = x.userMeter.RateLimits
				}
			}
		}
		if r.Decision == keyward.DecisionInsufficientPermissions {
			if en.role != roleRoot {
				out.MissingPermissions = en.perms.Missing(r.need.perms, r.need.query)
			}
			if r.need.role != "" && !en.hasRole(r.need.role) {
				out.MissingRole = r.need.role
			}
		}
	}
	out.RateLimits = ratelimit.Statuses(r.RateLimits())
	if r.HasCredits {
		remaining := r.CreditsRemaining
		out.CreditsRemaining = &remaining
	}
	out.LimitLevel = r.LimitLevel
	return out
}
