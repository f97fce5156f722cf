package admin

import (
	"context"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/verify"
)

// Abuse manages what protects keys from abuse: IP rules (iprules.go), the
// anomalies abuse detection finds, and reports of leaked keys (leaks.go),
// whose keys it revokes through Keys.
type Abuse struct {
	recorder
	*writes // shared with Keys: rules and leaks change what caches hold
	store   abuseStore
	hasher  *apikey.Hasher
	rules   ipRuleReloader // nil: no local engine
	keys    keyRevoker
}

var (
	_ keyward.IPRuleService  = (*Abuse)(nil)
	_ keyward.AnomalyService = (*Abuse)(nil)
	_ keyward.LeakService    = (*Abuse)(nil)
)

// abuseStore is what Abuse reads and writes: IP rules and anomalies, and
// keys by token (verify.FindKey).
type abuseStore interface {
	verify.KeyFinder
	CreateIPRule(ctx context.Context, ch keyward.Change, r *keyward.IPRule) error
	IPRule(ctx context.Context, id string) (*keyward.IPRule, error)
	IPRules(ctx context.Context, f keyward.IPRuleFilter, p keyward.Page) ([]*keyward.IPRule, string, error)
	DeleteIPRule(ctx context.Context, ch keyward.Change, id string) (*keyward.IPRule, error)
	CreateAnomaly(ctx context.Context, ch keyward.Change, a *keyward.Anomaly) error
	Anomalies(ctx context.Context, f keyward.AnomalyFilter, p keyward.Page) ([]*keyward.Anomaly, string, error)
}

// ipRuleReloader applies the committed IP rules on this instance
// (verify.Engine).
type ipRuleReloader interface {
	ReloadIPRules(ctx context.Context) error
}

// keyRevoker revokes keys with the records of their revocation (Keys).
type keyRevoker interface {
	revokeTree(ctx context.Context, id *keyward.Identity, rootID, reason string, rootEntry func(*keyward.Key, time.Time) (*keyward.AuditEntry, []*keyward.Event, error)) ([]*keyward.Key, error)
	revokeWith(ctx context.Context, ch keyward.Change, keyID string) (*keyward.Key, error)
}

// Anomalies lists anomalies: all for root, its own account's for an
// account admin; a user may not.
func (s *Abuse) Anomalies(ctx context.Context, f keyward.AnomalyFilter, p keyward.Page) (*keyward.AnomalyList, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := scopeToAccount(id, &f.AccountID, "list anomalies"); err != nil {
		return nil, err
	}
	if f.Type != "" && !f.Type.Valid() {
		return nil, keyward.Errorf(keyward.EINVALID, "anomaly type %q is not one of ip_spread, usage_spike, revoked_key_use, failure_burst, brute_force", f.Type)
	}
	items, next, err := s.store.Anomalies(ctx, f, p)
	if err != nil {
		return nil, err
	}
	return &keyward.AnomalyList{Items: items, Next: next}, nil
}

// RecordAnomaly stores a finding of abuse detection with its audit entry
// (anomaly.detected, by keyward itself), in one transaction. It implements
// abuse.Recorder.
func (s *Abuse) RecordAnomaly(ctx context.Context, a *keyward.Anomaly) error {
	ch, err := s.audit(ctx, systemIdentity, "anomaly.detected", "anomaly", a.ID, a.AccountID,
		map[string]any{"type": a.Type, "severity": a.Severity, "key_id": a.KeyID, "ip": a.IP, "action": a.Action, "action_error": a.ActionError, "details": a.Details})
	if err != nil {
		return err
	}
	return s.store.CreateAnomaly(ctx, ch, a)
}
