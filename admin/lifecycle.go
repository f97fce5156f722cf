package admin

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

var _ keyward.RotationPolicyService = (*Keys)(nil)

// SetRotationPolicy creates or replaces the rotation policy of an account
// or a key: root any, an account admin those of its account and of its
// account's keys; users none.
func (s *Keys) SetRotationPolicy(ctx context.Context, sc keyward.RotationScope, set keyward.RotationPolicySet) (*keyward.RotationPolicy, error) {
	id, unlock, err := s.writer(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	accountID, err := s.policyScope(ctx, id, sc)
	if err != nil {
		return nil, err
	}
	p := &keyward.RotationPolicy{
		AccountID: sc.AccountID, KeyID: sc.KeyID, MaxAge: set.MaxAge, ExpireAfter: set.ExpireAfter,
		UpdatedAt: s.utc(), UpdatedBy: id.KeyID,
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	targetType, targetID := policyTarget(sc)
	ch, err := s.audit(ctx, id, "rotation_policy.set", targetType, targetID, accountID,
		map[string]string{"max_age": time.Duration(p.MaxAge).String(), "expire_after": time.Duration(p.ExpireAfter).String()})
	if err != nil {
		return nil, err
	}
	if err := s.store.SetRotationPolicy(ctx, ch, p); err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "rotation policy set", "scope", sc.String(), "max_age", time.Duration(p.MaxAge), "expire_after", time.Duration(p.ExpireAfter), "by", id.KeyID)
	return p, nil
}

// RotationPolicy returns the rotation policy of an account or a key, for
// those who may set it.
func (s *Keys) RotationPolicy(ctx context.Context, sc keyward.RotationScope) (*keyward.RotationPolicy, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.policyScope(ctx, id, sc); err != nil {
		return nil, err
	}
	return s.store.RotationPolicy(ctx, sc)
}

// DeleteRotationPolicy removes the rotation policy of an account or a key.
// Notices already sent and expiries already scheduled stay.
func (s *Keys) DeleteRotationPolicy(ctx context.Context, sc keyward.RotationScope) error {
	id, unlock, err := s.writer(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	accountID, err := s.policyScope(ctx, id, sc)
	if err != nil {
		return err
	}
	targetType, targetID := policyTarget(sc)
	ch, err := s.audit(ctx, id, "rotation_policy.delete", targetType, targetID, accountID, nil)
	if err != nil {
		return err
	}
	if _, err := s.store.DeleteRotationPolicy(ctx, ch, sc); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "rotation policy removed", "scope", sc.String(), "by", id.KeyID)
	return nil
}

// policyScope checks that id may manage the rotation policy of sc and
// returns the account it belongs to ("" for a root key's).
func (s *Keys) policyScope(ctx context.Context, id *keyward.Identity, sc keyward.RotationScope) (string, error) {
	if err := sc.Validate(); err != nil {
		return "", err
	}
	if id.Role == keyward.RoleUser {
		return "", keyward.Errorf(keyward.EFORBIDDEN, "a user key may not manage rotation policies")
	}
	if sc.AccountID != "" {
		if err := requireAccountManager(id, sc.AccountID, "manage rotation policies"); err != nil {
			return "", err
		}
		if _, err := s.store.Account(ctx, sc.AccountID); err != nil {
			return "", err
		}
		return sc.AccountID, nil
	}
	k, err := s.visibleKey(ctx, id, sc.KeyID)
	if err != nil {
		return "", err
	}
	return k.AccountID, nil
}

func policyTarget(sc keyward.RotationScope) (targetType, targetID string) {
	if sc.KeyID != "" {
		return "key", sc.KeyID
	}
	return "account", sc.AccountID
}

// The lifecycle jobs' changes (package lifecycle). keyward itself acts: the
// audit entries name the system actor. Each change commits with its audit
// entry and webhook event, and the notices make it happen once: a change
// another instance made first fails with ECONFLICT and announces nothing.

// keyEventData is the data of a key's webhook event: who the key belongs
// to and extra.
func keyEventData(k *keyward.Key, extra map[string]any) (json.RawMessage, error) {
	data := map[string]any{"key_id": k.ID, "account_id": k.AccountID, "user_id": k.UserID, "name": k.Name, "role": k.Role}
	for name, v := range extra {
		data[name] = v
	}
	b, err := json.Marshal(data)
	if err != nil {
		return nil, keyward.WrapError(keyward.EINTERNAL, err, "admin: event data of key %s", k.ID)
	}
	return b, nil
}

// announce returns the change recording the event of type typ about k, at
// now, and the audit entry of the same action by keyward.
func (s *Keys) announce(ctx context.Context, typ string, k *keyward.Key, now time.Time, extra map[string]any) (keyward.Change, error) {
	data, err := keyEventData(k, extra)
	if err != nil {
		return keyward.Change{}, err
	}
	ch, err := s.audit(ctx, systemIdentity, typ, "key", k.ID, k.AccountID, extra)
	if err != nil {
		return keyward.Change{}, err
	}
	ch.Events = append(ch.Events, &keyward.Event{ID: apikey.NewID("msg"), Type: typ, Time: now, AccountID: k.AccountID, Data: data})
	return ch, nil
}

// AnnounceExpired announces that k expired (key.expired), once: ECONFLICT if
// its expiry was announced already.
func (s *Keys) AnnounceExpired(ctx context.Context, k *keyward.Key, now time.Time) error {
	defer s.lock()()
	ch, err := s.announce(ctx, keyward.EventKeyExpired, k, now, map[string]any{"expires_at": k.ExpiresAt})
	if err != nil {
		return err
	}
	return s.store.AddKeyNotice(ctx, ch, &keyward.KeyNotice{KeyID: k.ID, Kind: keyward.NoticeExpired, Subject: *k.ExpiresAt, At: now})
}

// AnnounceRotationDue announces that a key is past the max age of its
// rotation policy (key.rotation_due), once: ECONFLICT if it was announced
// already. With the policy's ExpireAfter, the event says when the key will
// expire; ScheduleExpiry then sets it.
func (s *Keys) AnnounceRotationDue(ctx context.Context, d *keyward.RotationDue, now time.Time) error {
	defer s.lock()()
	extra := map[string]any{
		"created_at": d.Key.CreatedAt, "due_at": d.DueAt,
		"max_age": time.Duration(d.Policy.MaxAge).String(), "policy": policyTargetName(d.Policy),
	}
	if d.Policy.ExpireAfter > 0 {
		at := now.Add(time.Duration(d.Policy.ExpireAfter))
		if d.Key.ExpiresAt != nil && d.Key.ExpiresAt.Before(at) {
			at = *d.Key.ExpiresAt
		}
		extra["expires_at"] = at
	}
	ch, err := s.announce(ctx, keyward.EventKeyRotationDue, d.Key, now, extra)
	if err != nil {
		return err
	}
	return s.store.AddKeyNotice(ctx, ch, &keyward.KeyNotice{KeyID: d.Key.ID, Kind: keyward.NoticeRotationDue, Subject: d.DueAt, At: now})
}

func policyTargetName(p keyward.RotationPolicy) string {
	if p.KeyID != "" {
		return "key"
	}
	return "account"
}

// errUnchanged aborts an update that would change nothing.
var errUnchanged = errors.New("unchanged")

// ScheduleExpiry makes a key announced due for rotation expire at
// d.ExpireAt(), as its policy asks, unless it expires earlier or was
// revoked; then it records that it did (NoticeExpiryScheduled), so an admin
// may still extend the key afterwards. It returns the key if it changed.
func (s *Keys) ScheduleExpiry(ctx context.Context, d *keyward.RotationDue, now time.Time) (*keyward.Key, error) {
	defer s.lock()()
	at := d.ExpireAt()
	ch, err := s.audit(ctx, systemIdentity, "key.expire_scheduled", "key", d.Key.ID, d.Key.AccountID,
		map[string]any{"expires_at": at, "notice_at": d.NoticeAt, "expire_after": time.Duration(d.Policy.ExpireAfter).String()})
	if err != nil {
		return nil, err
	}
	notice := &keyward.KeyNotice{KeyID: d.Key.ID, Kind: keyward.NoticeExpiryScheduled, Subject: at, At: now}
	// The notice commits with the change: an admin's later extension of
	// the key is never undone by a second run.
	ch.Notice = notice
	k, err := s.store.UpdateKey(ctx, ch, d.Key.ID, func(k *keyward.Key) error {
		if k.RevokedAt != nil || (k.ExpiresAt != nil && !k.ExpiresAt.After(at)) {
			return errUnchanged
		}
		k.ExpiresAt, k.ExpiryScheduled, k.UpdatedAt = &at, true, now
		return nil
	})
	switch {
	case errors.Is(err, errUnchanged):
		// Nothing to change: record that the key was dealt with.
		if err := s.store.AddKeyNotice(ctx, keyward.Change{}, notice); err != nil && keyward.ErrorCode(err) != keyward.ECONFLICT {
			return nil, err
		}
		return nil, nil
	case err != nil:
		return nil, err
	}
	s.keyChanged(k)
	return k, nil
}

// DeleteRetiredKey deletes k, revoked or expired at or before before, for
// retention: it stops existing everywhere (caches are told). A key that
// was extended since it was listed is kept (ECONFLICT).
func (s *Keys) DeleteRetiredKey(ctx context.Context, k *keyward.Key, before time.Time) error {
	defer s.lock()()
	current, err := s.store.Key(ctx, k.ID)
	if err != nil {
		return err
	}
	retired := (current.RevokedAt != nil && !current.RevokedAt.After(before)) || (current.ExpiresAt != nil && !current.ExpiresAt.After(before))
	if !retired || current.Role == keyward.RoleRoot {
		return keyward.Errorf(keyward.ECONFLICT, "key %s is no longer retired: kept", k.ID)
	}
	ch, err := s.audit(ctx, systemIdentity, "key.delete", "key", k.ID, k.AccountID,
		map[string]any{"reason": "retention", "revoked_at": current.RevokedAt, "expires_at": current.ExpiresAt})
	if err != nil {
		return err
	}
	deleted, err := s.store.DeleteKey(ctx, ch, k.ID)
	if err != nil {
		return err
	}
	s.keysDeleted([]keyward.KeyHash{deleted.Hash})
	s.log.InfoContext(ctx, "key deleted by retention", "key_id", k.ID, "account_id", k.AccountID)
	return nil
}
