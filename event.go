package keyward

import (
	"encoding/json"
	"slices"
	"time"
)

// Event types announced to webhook endpoints.
const (
	EventKeyCreated     = "key.created"
	EventKeyUpdated     = "key.updated"
	EventKeyRevoked     = "key.revoked"
	EventKeyRotated     = "key.rotated"
	EventKeyExpired     = "key.expired"
	EventKeyRotationDue = "key.rotation_due"
	EventKeyLeaked      = "key.leaked"
	EventQuotaExhausted = "quota.exhausted"
	EventKeyRateLimited = "key.rate_limited"
	EventIPBlocked      = "ip.blocked"
	EventAnomaly        = "anomaly.detected"
	// EventAuditCheckpoint publishes a signed checkpoint of the audit
	// log's head (AuditCheckpoint) on a schedule, to global endpoints.
	EventAuditCheckpoint = "audit.checkpoint"
)

// EventTypes lists every event type, in the order the docs give them.
var EventTypes = []string{
	EventKeyCreated, EventKeyUpdated, EventKeyRevoked, EventKeyRotated,
	EventKeyExpired, EventKeyRotationDue, EventKeyLeaked,
	EventQuotaExhausted, EventKeyRateLimited, EventIPBlocked, EventAnomaly,
	EventCredentialCreated, EventCredentialRevoked, EventCredentialRotated, EventCredentialExpired,
	EventAuditCheckpoint,
}

// Event is something that happened which webhook endpoints may be told
// about. Events are written to an outbox in the same transaction as the
// change they announce (Change.Events), so a committed change is
// always announced and a rolled-back one never is.
type Event struct {
	// ID identifies the event; it is the webhook-id of every delivery of
	// it, so receivers can drop a repeated delivery.
	ID   string    `json:"id"`
	Type string    `json:"type"`
	Time time.Time `json:"timestamp"`
	// AccountID is the account the event concerns: endpoints of that
	// account and global endpoints receive it. Empty for global events,
	// which only global endpoints receive.
	AccountID string `json:"account_id,omitempty"`
	// Data is the JSON object sent as the payload's "data". It never holds
	// a secret.
	Data json.RawMessage `json:"data"`
}

// Validate returns EINVALID unless e has an ID, a known Type, a Time and a
// JSON object as Data.
func (e *Event) Validate() error {
	switch {
	case e == nil:
		return Errorf(EINVALID, "event: no event")
	case e.ID == "":
		return Errorf(EINVALID, "event %s: id is required", e.Type)
	case !KnownEventType(e.Type):
		return Errorf(EINVALID, "event %s: unknown type %q", e.ID, e.Type)
	case e.Time.IsZero():
		return Errorf(EINVALID, "event %s: time is required", e.ID)
	case len(e.Data) == 0 || e.Data[0] != '{' || !json.Valid(e.Data):
		return Errorf(EINVALID, "event %s: data must be a JSON object", e.ID)
	}
	return nil
}

// KnownEventType reports whether t is one of EventTypes.
func KnownEventType(t string) bool {
	return slices.Contains(EventTypes, t)
}
