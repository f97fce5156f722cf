package admin

import (
	"context"
	"encoding/json"
	"log/slog"
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

// recorder makes the records of a change that every service writes with
// it: its audit entry, sealed, and the webhook events announcing it. It
// carries the clock and the logger the services share.
type recorder struct {
	sealer Sealer // nil: audit details are not recorded
	now    func() time.Time
	log    *slog.Logger
}

// utc returns the current time, in UTC, truncated to microseconds so what
// is returned equals what every backend stores.
func (s recorder) utc() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// audit returns the change recording an action by id on a target: its
// audit entry and the webhook events announcing it, which the store writes
// in the transaction of the change. details is marshalled to JSON and
// sealed; nil means none.
func (s recorder) audit(ctx context.Context, id *keyward.Identity, action, targetType, targetID, accountID string, details any) (keyward.Change, error) {
	e, events, err := s.auditChange(ctx, id, action, targetType, targetID, accountID, details)
	if err != nil {
		return keyward.Change{}, err
	}
	return keyward.Change{Audit: e, Events: events}, nil
}

// auditChange returns the audit entry of an action by id on a target and
// the webhook events announcing it, for a store to write with the change
// (audit puts them in a keyward.Change; Store.UpdateKeyTree takes them per key).
func (s recorder) auditChange(ctx context.Context, id *keyward.Identity, action, targetType, targetID, accountID string, details any) (*keyward.AuditEntry, []*keyward.Event, error) {
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

func (s recorder) auditEntry(ctx context.Context, id *keyward.Identity, action, targetType, targetID, accountID string, outcome keyward.AuditOutcome, details any) (*keyward.AuditEntry, error) {
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
