package admin

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/keyward/keyward"
)

// Sealer encrypts the details of audit entries (keyring.Keyring). Additional
// data binds a sealed text to its entry's action and target.
type Sealer interface {
	Seal(plaintext, additionalData []byte) (version int, sealed []byte, err error)
	Open(version int, sealed, additionalData []byte) ([]byte, error)
}

// auditPageSize is the page of entries VerifyAudit reads at a time.
const auditPageSize = keyward.MaxPageLimit

// audit returns ctx carrying the audit entry of an action by id on a
// target: the store appends it in the transaction of the change. details
// is marshalled to JSON and sealed; nil means none.
func (s *Service) audit(ctx context.Context, id *keyward.Identity, action, targetType, targetID, accountID string, details any) (context.Context, error) {
	e, err := s.auditEntry(ctx, id, action, targetType, targetID, accountID, keyward.AuditSuccess, details)
	if err != nil {
		return nil, err
	}
	return keyward.NewContextWithAudit(ctx, e), nil
}

func (s *Service) auditEntry(ctx context.Context, id *keyward.Identity, action, targetType, targetID, accountID string, outcome keyward.AuditOutcome, details any) (*keyward.AuditEntry, error) {
	ri := keyward.RequestInfoFrom(ctx)
	e := &keyward.AuditEntry{
		Time:       s.utc(),
		Actor:      keyward.AuditActor{IP: ri.IP, UserAgent: ri.UserAgent, RequestID: ri.RequestID},
		Action:     action,
		TargetType: targetType,
		TargetID:   targetID,
		AccountID:  accountID,
		Outcome:    outcome,
	}
	if id != nil {
		e.Actor.KeyID, e.Actor.AccountID, e.Actor.UserID = id.KeyID, id.AccountID, id.UserID
		e.Actor.Role, e.Actor.Agent = id.Role, id.Agent
		if id.KeyID == "" {
			e.Actor.System = SystemActor
		}
	}
	if details == nil || s.sealer == nil {
		return e, nil
	}
	b, err := json.Marshal(details)
	if err != nil {
		return nil, keyward.WrapError(keyward.EINTERNAL, err, "admin: audit details of %s", action)
	}
	if e.KeyVersion, e.Sealed, err = s.sealer.Seal(b, auditAD(e)); err != nil {
		return nil, keyward.WrapError(keyward.EINTERNAL, err, "admin: sealing the audit details of %s", action)
	}
	return e, nil
}

// SystemActor names keyward itself in audit entries of actions with no key
// (abuse detection's blocks and disables).
const SystemActor = "keyward"

// auditAD is the additional data of an entry's sealed details: they open
// only as the details of that action on that target.
func auditAD(e *keyward.AuditEntry) []byte {
	return []byte(e.Action + "\x00" + e.TargetType + "\x00" + e.TargetID)
}

// AuditDenied records a refused admin action (EFORBIDDEN) of the caller in
// ctx: route names what was tried.
func (s *Service) AuditDenied(ctx context.Context, route string, cause error) {
	id := keyward.IdentityFrom(ctx)
	e, err := s.auditEntry(ctx, id, "auth.denied", "route", route, "", keyward.AuditDenied,
		map[string]string{"route": route, "reason": keyward.ErrorMessage(cause)})
	if err == nil {
		if id != nil {
			e.AccountID = id.AccountID
		}
		err = s.store.AppendAudit(ctx, e)
	}
	if err != nil {
		s.log.ErrorContext(ctx, "recording a refused action in the audit log", "route", route, "err", err)
	}
}

// AuditEntries lists audit entries with their details opened: all for
// root, its own account's for an account admin (entries about its
// account's objects and those it made); a user may not.
func (s *Service) AuditEntries(ctx context.Context, f keyward.AuditFilter, p keyward.Page) (*keyward.AuditList, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := scopeToAccount(id, &f.AccountID, "read the audit log"); err != nil {
		return nil, err
	}
	if p.After != "" {
		if _, err := strconv.ParseInt(p.After, 10, 64); err != nil {
			return nil, keyward.Errorf(keyward.EINVALID, "after %q: give the next of the previous page (a sequence number)", p.After)
		}
	}
	items, next, err := s.store.AuditEntries(ctx, f, p)
	if err != nil {
		return nil, err
	}
	for _, e := range items {
		if len(e.Sealed) == 0 {
			continue
		}
		if s.sealer == nil {
			return nil, keyward.Errorf(keyward.EINTERNAL, "admin: audit details are sealed but no master key is configured")
		}
		if e.Details, err = s.sealer.Open(e.KeyVersion, e.Sealed, auditAD(e)); err != nil {
			return nil, keyward.WrapError(keyward.EINTERNAL, err, "admin: opening the details of audit entry %d", e.Seq)
		}
	}
	return &keyward.AuditList{Items: items, Next: next}, nil
}

// VerifyAudit checks the whole audit log's hash chain. Root only.
func (s *Service) VerifyAudit(ctx context.Context) (*keyward.AuditVerification, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := requireRoot(id, "verify the audit log"); err != nil {
		return nil, err
	}
	var chain keyward.AuditChain
	p := keyward.Page{Limit: auditPageSize}
	for {
		items, next, err := s.store.AuditEntries(ctx, keyward.AuditFilter{}, p)
		if err != nil {
			return nil, err
		}
		if !chain.Check(items) || next == "" {
			break
		}
		p.After = next
	}
	r := chain.Result()
	if !r.OK {
		s.log.ErrorContext(ctx, "the audit log's hash chain is broken", "first_bad", r.FirstBad, "problem", r.Problem)
	}
	return &r, nil
}

// RecordAnomaly stores a finding of abuse detection with its audit entry
// (anomaly.detected, by keyward itself), in one transaction. It implements
// abuse.Recorder.
func (s *Service) RecordAnomaly(ctx context.Context, a *keyward.Anomaly) error {
	actx, err := s.audit(ctx, &keyward.Identity{Role: keyward.RoleRoot}, "anomaly.detected", "anomaly", a.ID, a.AccountID,
		map[string]any{"type": a.Type, "severity": a.Severity, "key_id": a.KeyID, "ip": a.IP, "action": a.Action, "action_error": a.ActionError, "details": a.Details})
	if err != nil {
		return err
	}
	return s.store.CreateAnomaly(actx, a)
}
