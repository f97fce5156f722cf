package unkeyv2

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/keyward/keyward"
)

type verifyKeyRequest struct {
	Key         string                   `json:"key"`
	Tags        []string                 `json:"tags"`
	Permissions string                   `json:"permissions"`
	Credits     *verifyCreditsRequest    `json:"credits"`
	Ratelimits  []verifyRatelimitRequest `json:"ratelimits"`
	MigrationID string                   `json:"migrationId"`
}

type verifyCreditsRequest struct {
	Cost *int64 `json:"cost"`
}

type verifyRatelimitRequest struct {
	Name     string `json:"name"`
	Cost     *int64 `json:"cost"`
	Limit    *int64 `json:"limit"`
	Duration *int64 `json:"duration"`
}

// verifyKeyData is the answer of verifyKey. Times are Unix milliseconds;
// optional fields are left out, never null.
type verifyKeyData struct {
	Valid       bool                  `json:"valid"`
	Code        string                `json:"code"`
	KeyID       string                `json:"keyId,omitempty"`
	Name        string                `json:"name,omitempty"`
	Meta        json.RawMessage       `json:"meta,omitempty"`
	Expires     int64                 `json:"expires,omitempty"`
	Credits     *int64                `json:"credits,omitempty"`
	Enabled     *bool                 `json:"enabled,omitempty"`
	Permissions []string              `json:"permissions,omitempty"`
	Roles       []string              `json:"roles,omitempty"`
	Identity    *identityData         `json:"identity,omitempty"`
	Ratelimits  []verifyRatelimitData `json:"ratelimits,omitempty"`
}

type verifyRatelimitData struct {
	Exceeded  bool   `json:"exceeded"`
	ID        string `json:"id"`
	Name      string `json:"name"`
	Limit     int64  `json:"limit"`
	Duration  int64  `json:"duration"`
	Reset     int64  `json:"reset"`
	Remaining int64  `json:"remaining"`
	AutoApply bool   `json:"autoApply"`
}

// codes maps keyward's decisions to Unkey's codes; UNAVAILABLE is not
// one (verifyKey answers 503) and WRONG_ENVIRONMENT cannot happen (no
// environment is required).
var codes = map[keyward.Decision]string{
	keyward.DecisionValid:                   "VALID",
	keyward.DecisionMalformed:               "NOT_FOUND",
	keyward.DecisionNotFound:                "NOT_FOUND",
	keyward.DecisionRevoked:                 "NOT_FOUND",
	keyward.DecisionDisabled:                "DISABLED",
	keyward.DecisionExpired:                 "EXPIRED",
	keyward.DecisionIPBlocked:               "FORBIDDEN",
	keyward.DecisionIPNotAllowed:            "FORBIDDEN",
	keyward.DecisionWrongEnvironment:        "FORBIDDEN",
	keyward.DecisionInsufficientPermissions: "INSUFFICIENT_PERMISSIONS",
	keyward.DecisionRateLimited:             "RATE_LIMITED",
	keyward.DecisionUsageExceeded:           "USAGE_EXCEEDED",
}

// verifyKey verifies a key for the caller (root, or a key holding
// keys:verify) through the admin service, as /v1/keys/verify does. Every
// outcome for the key is a 200; a key whose state cannot be known is a
// 503.
func (s *Server) verifyKey(ctx context.Context, r *http.Request, in *verifyKeyRequest) (*verifyKeyData, error) {
	req, err := verifyRequest(in)
	if err != nil {
		return nil, err
	}
	req.Agent = keyward.IdentityFrom(ctx).Agent
	if ip := s.clientIP(r); ip.IsValid() {
		req.IP = ip.String()
	}
	res, err := s.cfg.Keys.VerifyKey(ctx, req)
	if err != nil {
		if keyward.ErrorCode(err) == keyward.EQUERY {
			return nil, fieldErr("body.permissions", keyward.Errorf(keyward.EINVALID, "permissions: %s", keyward.ErrorMessage(err)))
		}
		return nil, err
	}
	code, ok := codes[res.Code]
	if !ok {
		return nil, keyward.Errorf(keyward.EUNAVAILABLE, "the key cannot be verified now (%s): try again", res.Code)
	}
	out := &verifyKeyData{Valid: res.Valid, Code: code, Name: res.Name, Meta: res.Meta, Credits: res.CreditsRemaining}
	if res.Code != keyward.DecisionMalformed && res.Code != keyward.DecisionRevoked {
		out.KeyID = res.KeyID
	}
	if res.ExpiresAt != nil {
		out.Expires = res.ExpiresAt.UnixMilli()
	}
	switch res.Code {
	case keyward.DecisionValid:
		out.Enabled = &res.Valid
	case keyward.DecisionDisabled:
		out.Enabled = new(bool)
	}
	if id := res.Identity; id != nil {
		out.Permissions, out.Roles = id.Permissions, id.Roles
		out.Identity = identityDataOf(id.UserID, id.ExternalID, res.UserMeta, res.UserRateLimits)
	}
	now := time.Now()
	for _, l := range res.RateLimits {
		out.Ratelimits = append(out.Ratelimits, verifyRatelimitData{
			Exceeded:  !l.Allowed,
			ID:        l.Name,
			Name:      l.Name,
			Limit:     l.Limit,
			Duration:  time.Duration(l.Window).Milliseconds(),
			Reset:     now.Add(time.Duration(l.ResetMS) * time.Millisecond).UnixMilli(),
			Remaining: l.Remaining,
			AutoApply: !l.Manual,
		})
	}
	return out, nil
}

// verifyRequest returns in as keyward's verification request, or a refusal
// naming the field keyward cannot honour.
func verifyRequest(in *verifyKeyRequest) (keyward.VerifyRequest, error) {
	req := keyward.VerifyRequest{Key: in.Key, Query: in.Permissions}
	if in.Key == "" {
		return req, badField("key", "is required")
	}
	if len(in.Tags) > 0 {
		return req, badField("tags", "keyward does not record tags of verifications (its usage counts are per key and outcome); leave them out")
	}
	// migrationId is accepted and changes nothing: keyward finds every
	// imported key by its digest, whichever migration imported it
	// (docs/unkey.md).
	// keyward spends one cost from a key's limits and its credits: the
	// credits' cost (1 by default) must be every limit's.
	cost := int64(1)
	costField := "credits.cost"
	if in.Credits != nil && in.Credits.Cost != nil {
		cost = *in.Credits.Cost
	}
	if cost < 1 || cost > keyward.MaxVerificationCost {
		return req, badField(costField, "must be between 1 and %d", keyward.MaxVerificationCost)
	}
	// The limits named count besides those that apply by themselves
	// (autoApply): Unkey's semantics, keyward's ManualLimits.
	for i, l := range in.Ratelimits {
		field := fmt.Sprintf("ratelimits[%d]", i)
		if l.Name == "" {
			return req, badField(field+".name", "is required: the name of one of the key's rate limits")
		}
		req.ManualLimits = append(req.ManualLimits, l.Name)
		if l.Limit != nil || l.Duration != nil {
			return req, badField(field, "keyward verifies against the limits a key was given; set them with keys.updateKey, not per verification")
		}
		if l.Cost != nil && *l.Cost != cost {
			return req, badField(field+".cost", "keyward spends one cost from a key's limits and credits: send the cost of credits.cost (%d)", cost)
		}
	}
	req.Cost = cost
	return req, nil
}
