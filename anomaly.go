package keyward

import (
	"bytes"
	"context"
	"encoding/json"
	"time"
)

// AnomalyType names the rule that found an anomaly.
type AnomalyType string

// The anomaly rules (see docs/abuse-protection.md).
const (
	// AnomalyIPSpread: a key used from more distinct networks in a window
	// than its baseline.
	AnomalyIPSpread AnomalyType = "ip_spread"
	// AnomalyUsageSpike: a key's use in a window far above its trailing
	// average.
	AnomalyUsageSpike AnomalyType = "usage_spike"
	// AnomalyRevokedKeyUse: a revoked or expired key presented again, a
	// sign it leaked.
	AnomalyRevokedKeyUse AnomalyType = "revoked_key_use"
	// AnomalyFailureBurst: many failed verifications against one account.
	AnomalyFailureBurst AnomalyType = "failure_burst"
	// AnomalyBruteForce: an address failed verification so often that it
	// was blocked.
	AnomalyBruteForce AnomalyType = "brute_force"
)

// Valid reports whether t is one of the anomaly types.
func (t AnomalyType) Valid() bool {
	switch t {
	case AnomalyIPSpread, AnomalyUsageSpike, AnomalyRevokedKeyUse, AnomalyFailureBurst, AnomalyBruteForce:
		return true
	}
	return false
}

// Severity ranks an anomaly.
type Severity string

// Severities, lowest first.
const (
	SeverityLow    Severity = "low"
	SeverityMedium Severity = "medium"
	SeverityHigh   Severity = "high"
)

// Valid reports whether s is one of the severities.
func (s Severity) Valid() bool { return s == SeverityLow || s == SeverityMedium || s == SeverityHigh }

// AnomalyAction is what keyward did about an anomaly.
type AnomalyAction string

// Actions of the anomaly rules.
const (
	AnomalyActionNone       AnomalyAction = ""
	AnomalyActionDisableKey AnomalyAction = "disable_key"
	AnomalyActionBlockIP    AnomalyAction = "block_ip"
)

// Anomaly is one finding of the anomaly rules, stored for operators (GET
// /v1/anomalies) and, later, the audit log and webhooks.
type Anomaly struct {
	ID       string      `json:"id"`
	Type     AnomalyType `json:"type"`
	Severity Severity    `json:"severity"`
	// AccountID, KeyID and IP are what the finding is about; each may be
	// empty.
	AccountID string `json:"account_id,omitempty"`
	KeyID     string `json:"key_id,omitempty"`
	IP        string `json:"ip,omitempty"`
	// Details is a JSON object with the rule's numbers (counts, window,
	// baseline).
	Details json.RawMessage `json:"details,omitempty"`
	// Action is what was done (disable_key, block_ip), "" for nothing;
	// ActionError says why the action failed, if it did.
	Action      AnomalyAction `json:"action,omitempty"`
	ActionError string        `json:"action_error,omitempty"`
	CreatedAt   time.Time     `json:"created_at"`
}

// Validate returns EINVALID unless a has an id, a known type and severity,
// and details that are empty or a JSON object. Stores call it before a
// write.
func (a *Anomaly) Validate() error {
	switch d := bytes.TrimSpace(a.Details); {
	case a.ID == "":
		return Errorf(EINVALID, "anomaly id is required")
	case !a.Type.Valid():
		return Errorf(EINVALID, "unknown anomaly type %q", a.Type)
	case !a.Severity.Valid():
		return Errorf(EINVALID, "anomaly severity %q: use low, medium or high", a.Severity)
	case len(d) > 0 && (d[0] != '{' || !json.Valid(d)):
		return Errorf(EINVALID, "anomaly details must be a JSON object")
	}
	return nil
}

// AnomalyFilter narrows an anomaly list. Empty fields match everything.
type AnomalyFilter struct {
	AccountID string
	KeyID     string
	Type      AnomalyType
	// Since lists only anomalies created at or after it.
	Since time.Time
}

// AnomalyList is one page of anomalies.
type AnomalyList struct {
	Items []*Anomaly `json:"items"`
	Next  string     `json:"next,omitempty"`
}

// AnomalyService lists anomalies: every one for root, those of its own
// account for an account admin, none for a user (EFORBIDDEN). Implemented
// by admin.Abuse and client.Client.
type AnomalyService interface {
	Anomalies(ctx context.Context, f AnomalyFilter, p Page) (*AnomalyList, error)
}
