package admin

import (
	"context"
	"crypto/hmac"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// Sealer encrypts at rest (keyring.Keyring): the details of audit entries
// by envelope (a data key per entry, wrapped by a master key, so a rekey
// re-wraps the key without touching the hash chain), and secret metadata
// directly. Additional data binds a sealed value to what it belongs to: an
// entry's action and target, a key's or an account's id.
type Sealer interface {
	Seal(plaintext, additionalData []byte) (version int, sealed []byte, err error)
	Open(version int, sealed, additionalData []byte) ([]byte, error)
	SealEnvelope(plaintext, additionalData []byte) (version int, wrapped, sealed []byte, err error)
	OpenEnvelope(version int, wrapped, sealed, additionalData []byte) ([]byte, error)
	// CurrentAuditChainKey is the key new audit entries are chained
	// with; AuditChainKey that of a master key version, to check them.
	CurrentAuditChainKey() *keyward.AuditChainKey
	AuditChainKey(version int) ([]byte, error)
}

// auditPageSize is the page of entries VerifyAudit reads at a time.
const auditPageSize = keyward.MaxPageLimit

// audit returns the change recording an action by id on a target: its
// audit entry and the webhook events announcing it, which the store writes
// in the transaction of the change. details is marshalled to JSON and
// sealed; nil means none.
func (s *Service) audit(ctx context.Context, id *keyward.Identity, action, targetType, targetID, accountID string, details any) (keyward.Change, error) {
	e, events, err := s.auditChange(ctx, id, action, targetType, targetID, accountID, details)
	if err != nil {
		return keyward.Change{}, err
	}
	return keyward.Change{Audit: e, Events: events}, nil
}

// auditChange returns the audit entry of an action by id on a target and
// the webhook events announcing it, for a store to write with the change
// (audit puts them in a keyward.Change; Store.UpdateKeyTree takes them per key).
func (s *Service) auditChange(ctx context.Context, id *keyward.Identity, action, targetType, targetID, accountID string, details any) (*keyward.AuditEntry, []*keyward.Event, error) {
	e, err := s.auditEntry(ctx, id, action, targetType, targetID, accountID, keyward.AuditSuccess, details)
	if err != nil {
		return nil, nil, err
	}
	ev, err := announcement(e, details)
	if err != nil || ev == nil {
		return e, nil, err
	}
	return e, []*keyward.Event{ev}, nil
}

// eventTypes maps audited actions to the webhook event announcing them.
var eventTypes = map[string]string{
	"key.create":        keyward.EventKeyCreated,
	"key.update":        keyward.EventKeyUpdated,
	"key.credits_set":   keyward.EventKeyUpdated,
	"key.revoke":        keyward.EventKeyRevoked,
	"key.rotate":        keyward.EventKeyRotated,
	"key.leaked":        keyward.EventKeyLeaked,
	"anomaly.detected":  keyward.EventAnomaly,
	"ip_rule.create":    keyward.EventIPBlocked, // block rules only; see announcement
	"credential.create": keyward.EventCredentialCreated,
	"credential.revoke": keyward.EventCredentialRevoked,
	"credential.rotate": keyward.EventCredentialRotated,
	"credential.expire": keyward.EventCredentialExpired,
}

// announcement returns the webhook event of audit entry e with its clear
// details, or nil if e announces nothing. The event's data is the details
// with the target's id (key_id, anomaly_id, ...), account_id and the actor
// (key id, role, or keyward itself).
func announcement(e *keyward.AuditEntry, details any) (*keyward.Event, error) {
	typ, ok := eventTypes[e.Action]
	if !ok {
		return nil, nil
	}
	data := map[string]any{}
	if details != nil {
		b, err := json.Marshal(details)
		if err == nil {
			err = json.Unmarshal(b, &data)
		}
		if err != nil {
			return nil, keyward.WrapError(keyward.EINTERNAL, err, "admin: event data of %s", e.Action)
		}
	}
	if data == nil { // details marshalled to null
		data = map[string]any{}
	}
	if e.Action == "ip_rule.create" && data["action"] != string(keyward.IPBlock) {
		return nil, nil
	}
	data[e.TargetType+"_id"] = e.TargetID
	if e.AccountID != "" {
		data["account_id"] = e.AccountID
	}
	// The event reaches the account's endpoints: an actor of another
	// account is named by its role alone.
	actor := e.Actor
	if e.AccountID != "" {
		actor = actor.RedactedFor(e.AccountID)
	}
	data["actor"] = keyward.AuditActor{KeyID: actor.KeyID, Role: actor.Role, System: actor.System, Redacted: actor.Redacted}
	b, err := json.Marshal(data)
	if err != nil {
		return nil, keyward.WrapError(keyward.EINTERNAL, err, "admin: event data of %s", e.Action)
	}
	return &keyward.Event{ID: apikey.NewID("msg"), Type: typ, Time: e.Time, AccountID: e.AccountID, Data: b}, nil
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
	if s.sealer == nil {
		return e, nil
	}
	e.ChainKey = s.sealer.CurrentAuditChainKey()
	if details == nil {
		return e, nil
	}
	b, err := json.Marshal(details)
	if err != nil {
		return nil, keyward.WrapError(keyward.EINTERNAL, err, "admin: audit details of %s", action)
	}
	if e.KeyVersion, e.WrappedKey, e.Sealed, err = s.sealer.SealEnvelope(b, e.DetailsAD()); err != nil {
		return nil, keyward.WrapError(keyward.EINTERNAL, err, "admin: sealing the audit details of %s", action)
	}
	return e, nil
}

// systemIdentity is keyward itself acting, with no key.
var systemIdentity = &keyward.Identity{Role: keyward.RoleRoot}

// SystemActor names keyward itself in audit entries of actions with no key
// (abuse detection's blocks and disables).
const SystemActor = "keyward"

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
// account's objects and those it made), with actors of other accounts
// redacted (keyward.AuditActor.RedactedFor); a user may not.
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
		if !isRoot(id) {
			e.Actor = e.Actor.RedactedFor(id.AccountID)
		}
		if len(e.Sealed) == 0 {
			continue
		}
		if s.sealer == nil {
			return nil, keyward.Errorf(keyward.EINTERNAL, "admin: audit details are sealed but no master key is configured")
		}
		if len(e.WrappedKey) > 0 {
			e.Details, err = s.sealer.OpenEnvelope(e.KeyVersion, e.WrappedKey, e.Sealed, e.DetailsAD())
		} else { // sealed directly under a master key, before envelopes
			e.Details, err = s.sealer.Open(e.KeyVersion, e.Sealed, e.DetailsAD())
		}
		if err != nil {
			return nil, keyward.WrapError(keyward.EINTERNAL, err, "admin: opening the details of audit entry %d", e.Seq)
		}
	}
	return &keyward.AuditList{Items: items, Next: next}, nil
}

// VerifyAudit checks the whole audit log's chain, keyed entries with the
// master keys; with expect, a checkpoint taken earlier, it also reports a
// log that no longer reaches it (a deleted tail). Root only.
func (s *Service) VerifyAudit(ctx context.Context, expect *keyward.AuditCheckpoint) (*keyward.AuditVerification, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := requireRoot(id, "verify the audit log"); err != nil {
		return nil, err
	}
	chain := keyward.AuditChain{Expect: expect}
	if s.sealer != nil {
		chain.Keys = s.sealer.AuditChainKey
	}
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
		s.log.ErrorContext(ctx, "the audit log's chain is broken", "first_bad", r.FirstBad, "problem", r.Problem)
	}
	return &r, nil
}

// AuditHead returns a checkpoint of the audit chain's newest entry, its
// MAC under the current chain key: kept outside the database, it lets
// VerifyAudit report a deleted tail later. Root only. The newest entry
// must be keyed and its own MAC must fit (ECONFLICT otherwise: the log was
// tampered with, see VerifyAudit); an empty log is ENOTFOUND.
func (s *Service) AuditHead(ctx context.Context) (*keyward.AuditCheckpoint, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := requireRoot(id, "read the audit log's head"); err != nil {
		return nil, err
	}
	return s.checkpoint(ctx)
}

// PublishAuditCheckpoint writes a signed checkpoint of the audit log's
// newest entry, taken at now, to the outbox as the audit.checkpoint event
// (global: only global endpoints receive it). It returns false, publishing
// nothing, when the log is empty. The lifecycle job runs it on a schedule,
// so that a copy of the head lives outside the database.
func (s *Service) PublishAuditCheckpoint(ctx context.Context, now time.Time) (bool, error) {
	cp, err := s.checkpoint(ctx)
	if keyward.ErrorCode(err) == keyward.ENOTFOUND {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	cp.Time = now
	data, err := json.Marshal(cp)
	if err != nil {
		return false, keyward.WrapError(keyward.EINTERNAL, err, "admin: event data of the audit checkpoint")
	}
	ev := &keyward.Event{ID: apikey.NewID("msg"), Type: keyward.EventAuditCheckpoint, Time: now, Data: data}
	return true, s.store.AppendEvents(ctx, []*keyward.Event{ev})
}

// checkpoint returns the signed checkpoint of the newest audit entry.
func (s *Service) checkpoint(ctx context.Context) (*keyward.AuditCheckpoint, error) {
	if s.sealer == nil {
		return nil, keyward.Errorf(keyward.EINTERNAL, "admin: audit checkpoints need master keys: configure master_keys")
	}
	e, err := s.store.LastAuditEntry(ctx)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, keyward.Errorf(keyward.ENOTFOUND, "the audit log is empty: there is no head to checkpoint")
	}
	if e.ChainVersion == 0 {
		return nil, keyward.Errorf(keyward.ECONFLICT, "the newest audit entry (%d) is not keyed: run keyward audit verify", e.Seq)
	}
	key, err := s.sealer.AuditChainKey(e.ChainVersion)
	if err != nil {
		return nil, err
	}
	if !hmac.Equal(e.ChainHash(e.PrevHash, key), e.Hash) {
		return nil, keyward.Errorf(keyward.ECONFLICT, "the newest audit entry (%d) does not fit its MAC: it was tampered with; run keyward audit verify", e.Seq)
	}
	ck := s.sealer.CurrentAuditChainKey()
	return &keyward.AuditCheckpoint{Seq: e.Seq, Hash: hex.EncodeToString(e.Hash), KeyVersion: ck.Version,
		MAC: hex.EncodeToString(keyward.CheckpointMAC(ck.Key, e.Seq, e.Hash)), Time: s.utc()}, nil
}

// KeyAuditChain makes sure the audit chain is keyed: when its newest entry
// is hashed with plain SHA-256 (written before the chain was keyed), it
// appends audit.chain_keyed, chained with the current chain key (an empty
// log needs none: every entry appended to it is keyed). From then on a keyed verification refuses plain entries, so
// the entries before cannot be rewritten without the master keys. It
// returns the Seq of the plain head it keyed from, 0 when the chain was
// keyed already. serve calls it at start.
func (s *Service) KeyAuditChain(ctx context.Context) (plainUntil int64, err error) {
	if s.sealer == nil {
		return 0, keyward.Errorf(keyward.EINTERNAL, "admin: keying the audit chain needs master keys: configure master_keys")
	}
	last, err := s.store.LastAuditEntry(ctx)
	if err != nil || last == nil || last.ChainVersion != 0 {
		return 0, err
	}
	e, err := s.auditEntry(ctx, systemIdentity, "audit.chain_keyed", "audit_log", "", "", keyward.AuditSuccess,
		map[string]any{"plain_until": last.Seq, "chain_version": s.sealer.CurrentAuditChainKey().Version})
	if err != nil {
		return 0, err
	}
	return last.Seq, s.store.AppendAudit(ctx, e)
}

// RecordAnomaly stores a finding of abuse detection with its audit entry
// (anomaly.detected, by keyward itself), in one transaction. It implements
// abuse.Recorder.
func (s *Service) RecordAnomaly(ctx context.Context, a *keyward.Anomaly) error {
	ch, err := s.audit(ctx, systemIdentity, "anomaly.detected", "anomaly", a.ID, a.AccountID,
		map[string]any{"type": a.Type, "severity": a.Severity, "key_id": a.KeyID, "ip": a.IP, "action": a.Action, "action_error": a.ActionError, "details": a.Details})
	if err != nil {
		return err
	}
	return s.store.CreateAnomaly(ctx, ch, a)
}
