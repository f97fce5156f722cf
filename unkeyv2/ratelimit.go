package unkeyv2

import (
	"context"
	"net/http"
	"time"

	"github.com/keyward/keyward"
)

// ratelimit.limit is a standalone rate limit on any identifier of a
// namespace, not tied to a key: the deployment's rate limit engine
// (Config.Limiter, local or Redis as configured) counts it in a bucket of
// its own per namespace and identifier. It is the deployment's, not an
// account's, so only root keys may call it (docs/unkey.md).

type limitRequest struct {
	Namespace  string `json:"namespace"`
	Identifier string `json:"identifier"`
	Limit      *int64 `json:"limit"`
	Duration   *int64 `json:"duration"` // milliseconds
	Cost       *int64 `json:"cost"`
}

type limitData struct {
	Limit     int64 `json:"limit"`
	Remaining int64 `json:"remaining"`
	Reset     int64 `json:"reset"` // Unix milliseconds when the bucket is full again
	Success   bool  `json:"success"`
}

// Bounds of a standalone limit's names.
const (
	maxNamespaceLen  = 128
	maxIdentifierLen = 255
)

// ratelimitName names every standalone limit's bucket within its key: the
// key (namespace and identifier) tells the buckets apart.
const ratelimitName = "unkey"

func (s *Server) ratelimitLimit(ctx context.Context, _ *http.Request, in *limitRequest) (*limitData, error) {
	if id := keyward.IdentityFrom(ctx); id == nil || id.Role != keyward.RoleRoot {
		return nil, keyward.Errorf(keyward.EFORBIDDEN, "ratelimit.limit takes a root key: a standalone limit is the deployment's, not an account's")
	}
	if err := checkLimitName("namespace", in.Namespace, maxNamespaceLen); err != nil {
		return nil, err
	}
	if err := checkLimitName("identifier", in.Identifier, maxIdentifierLen); err != nil {
		return nil, err
	}
	if in.Limit == nil {
		return nil, badField("limit", "is required")
	}
	if in.Duration == nil {
		return nil, badField("duration", "is required (milliseconds)")
	}
	cost := int64(1)
	if in.Cost != nil {
		cost = *in.Cost
	}
	if *in.Duration < keyward.MinRateLimitWindow.Milliseconds() || *in.Duration > keyward.MaxRateLimitWindow.Milliseconds() {
		return nil, badField("duration", "must be from %d to %d milliseconds", keyward.MinRateLimitWindow.Milliseconds(), keyward.MaxRateLimitWindow.Milliseconds())
	}
	if *in.Limit < 1 {
		return nil, badField("limit", "must be at least 1")
	}
	limit := keyward.RateLimit{Name: ratelimitName, Limit: *in.Limit, Window: keyward.Duration(time.Duration(*in.Duration) * time.Millisecond)}
	if err := limit.Validate(); err != nil {
		return nil, badField("limit", "%s", keyward.ErrorMessage(err))
	}
	if cost < 1 || cost > limit.Limit {
		// Unkey's cost 0 counts without limiting; keyward's engines only
		// spend, so it is refused rather than treated as 1.
		return nil, badField("cost", "must be from 1 to the limit (%d): keyward does not count calls of cost 0", limit.Limit)
	}
	now := s.now()
	d, err := s.cfg.Limiter.Allow(ctx, "unkey:"+in.Namespace+":"+in.Identifier, limit, cost, now)
	if err != nil {
		return nil, err
	}
	return &limitData{Limit: limit.Limit, Remaining: d.Remaining, Reset: now.Add(d.ResetAfter).UnixMilli(), Success: d.Allowed}, nil
}

// checkLimitName checks a namespace or identifier: 1 to max bytes of
// letters, digits and _ . : / -, as Unkey documents them.
func checkLimitName(field, v string, max int) error {
	if v == "" {
		return badField(field, "is required")
	}
	if len(v) > max {
		return badField(field, "is longer than %d bytes", max)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == ':' || c == '/' || c == '-') {
			return badField(field, "may hold only letters, digits and _ . : / -")
		}
	}
	return nil
}
