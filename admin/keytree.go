package admin

import (
	"context"
	"time"

	"github.com/keyward/keyward"
)

// Cascading revocation (keyward.KeyRevocation) and the account policy on
// minting keys (keyward.AccountPolicy).

// RevokeKeyCascade revokes a key as RevokeKey does and, in the same
// transaction, its descendants: the keys it created, the keys those
// created, and so on. Each key it revokes gets its own key.revoke audit
// entry (a descendant's names the key in cascade_from) and key.revoked
// event, and every cache is told. A key revoked already is left as it is,
// without an entry; the descendants of a revoked key are revoked all the
// same, so a cascade can follow a revocation made without one.
//
// A root key cannot be revoked with a cascade (EINVALID): root keys create
// the keys of every account, and revoking them all would shut every tenant
// out. Revoke the root key alone and review the keys it created.
func (s *Keys) RevokeKeyCascade(ctx context.Context, keyID string) (*keyward.KeyRevocation, error) {
	id, unlock, err := s.writer(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	current, err := s.visibleKey(ctx, id, keyID)
	if err != nil {
		return nil, err
	}
	if current.Role == keyward.RoleRoot {
		return nil, keyward.Errorf(keyward.EINVALID, "key %s is a root key, whose keys are every account's: revoke it without cascade, and review the keys it created (keyward audit list --action key.create)", keyID)
	}
	changed, err := s.revokeTree(ctx, id, keyID, "revoked", func(k *keyward.Key, now time.Time) (*keyward.AuditEntry, []*keyward.Event, error) {
		if revokedAt(k, now) {
			return nil, nil, nil
		}
		return s.auditChange(ctx, id, "key.revoke", "key", k.ID, k.AccountID, map[string]bool{"cascade": true})
	})
	if err != nil {
		return nil, err
	}
	out := &keyward.KeyRevocation{Key: *current}
	for _, k := range changed {
		if k.ID == keyID {
			out.Key = *k
			continue
		}
		out.Cascaded = append(out.Cascaded, k.ID)
	}
	s.log.InfoContext(ctx, "key revoked with its descendants", "key_id", keyID, "descendants", len(out.Cascaded), "by", id.KeyID)
	return out, nil
}

// revokeTree revokes the key rootID and its descendants at now, in one
// transaction (keyward.Store.UpdateKeyTree). rootEntry decides for the key
// itself: it returns the audit entry and events of its revocation, or a
// nil entry to leave it as it is. Each descendant not revoked yet gets a
// key.revoke entry naming rootID in cascade_from and reason (why the root
// was revoked: "revoked", "leaked"). The observer is told of every key
// changed; they are returned, the root first if it changed, every key
// before the keys it created.
func (s *Keys) revokeTree(ctx context.Context, id *keyward.Identity, rootID, reason string, rootEntry func(*keyward.Key, time.Time) (*keyward.AuditEntry, []*keyward.Event, error)) ([]*keyward.Key, error) {
	now := s.utc()
	revoke := revokeAt(now)
	changed, err := s.store.UpdateKeyTree(ctx, keyward.Change{}, rootID, func(k *keyward.Key) (*keyward.AuditEntry, []*keyward.Event, error) {
		var (
			e      *keyward.AuditEntry
			events []*keyward.Event
			err    error
		)
		switch {
		case k.ID == rootID:
			e, events, err = rootEntry(k, now)
		case !revokedAt(k, now):
			e, events, err = s.auditChange(ctx, id, "key.revoke", "key", k.ID, k.AccountID, map[string]string{"cascade_from": rootID, "reason": reason})
		}
		if e == nil || err != nil {
			return nil, nil, err
		}
		return e, events, revoke(k)
	})
	for _, k := range changed {
		s.keyChanged(k)
		if k.ID != rootID {
			s.log.InfoContext(ctx, "key revoked: a key it descends from was "+reason, "key_id", k.ID, "account_id", k.AccountID, "cascade_from", rootID, "by", id.KeyID)
		}
	}
	return changed, err
}

// revokeWith revokes the key keyID now, recording the change ch, and
// tells the observer: a leak report's revocation of a key without its
// descendants (Abuse.ReportLeaks).
func (s *Keys) revokeWith(ctx context.Context, ch keyward.Change, keyID string) (*keyward.Key, error) {
	k, err := s.store.UpdateKey(ctx, ch, keyID, revokeAt(s.utc()))
	if err != nil {
		return nil, err
	}
	s.keyChanged(k)
	return k, nil
}

// revokedAt reports whether k stopped working at or before now: revoked,
// or rotated and past its grace (a key in a rotation grace window has
// not).
func revokedAt(k *keyward.Key, now time.Time) bool {
	return k.RevokedAt != nil && !k.RevokedAt.After(now)
}

// checkMintPolicy refuses a key that the policy of the caller's account
// (p) forbids the caller to create. Root keys are never restricted; a
// non-root caller creates keys in its own account only (checkCreate).
func checkMintPolicy(id *keyward.Identity, role keyward.Role, p keyward.AccountPolicy) error {
	switch {
	case id.Role == keyward.RoleUser && p.NoUserMinting:
		return keyward.Errorf(keyward.EFORBIDDEN, "the policy of account %s does not let user keys create keys (policy.users_may_mint_keys is false): ask an account admin for the key", id.AccountID)
	case id.Role == keyward.RoleAccountAdmin && role == keyward.RoleAccountAdmin && p.NoAdminMinting:
		return keyward.Errorf(keyward.EFORBIDDEN, "the policy of account %s does not let account_admin keys create account_admin keys (policy.admins_may_mint_admin_keys is false): create a user key, or ask root for an account_admin key", id.AccountID)
	}
	return nil
}
