package admin_test

import (
	"testing"
	"time"

	"github.com/keyward/keyward"
)

// auditCount returns how many entries the audit log holds.
func (e *env) auditCount(t *testing.T) int {
	t.Helper()
	n, p := 0, keyward.Page{Limit: keyward.MaxPageLimit}
	for {
		entries, next, err := e.store.AuditEntries(t.Context(), keyward.AuditFilter{}, p)
		if err != nil {
			t.Fatal(err)
		}
		n += len(entries)
		if next == "" {
			return n
		}
		p.After = next
	}
}

// changed returns how many key changes the observer (the caches) heard of.
func (e *env) changed() int {
	e.obs.mu.Lock()
	defer e.obs.mu.Unlock()
	return len(e.obs.changed)
}

// TestRevokeRevokedKeyChangesNothing: revoking a revoked key again answers
// the key as it is and writes no audit entry, no webhook event and no cache
// notice; revoking a key inside its rotation grace window still does.
func TestRevokeRevokedKeyChangesNothing(t *testing.T) {
	onEachStore(t, func(t *testing.T, e *env) {
		_, _, _, userKey := e.tenant(t, "acme")
		e.announced(t)
		first := must(e.svc.Keys.RevokeKey(e.root, userKey.ID))
		if evs := e.announced(t); len(evs) != 1 || evs[0].Type != keyward.EventKeyRevoked {
			t.Fatalf("first revoke announced %v, want one key.revoked", evs)
		}
		audits, changes := e.auditCount(t), e.changed()

		e.now = e.now.Add(time.Minute)
		again := must(e.svc.Keys.RevokeKey(e.root, userKey.ID))
		if !again.RevokedAt.Equal(*first.RevokedAt) || !again.UpdatedAt.Equal(first.UpdatedAt) {
			t.Fatalf("second revoke: revoked_at %v updated_at %v, want %v %v", again.RevokedAt, again.UpdatedAt, first.RevokedAt, first.UpdatedAt)
		}
		if evs := e.announced(t); len(evs) != 0 {
			t.Fatalf("second revoke announced %d events (%s), want none", len(evs), evs[0].Type)
		}
		if n := e.auditCount(t); n != audits {
			t.Fatalf("audit log grew from %d to %d entries on the second revoke", audits, n)
		}
		if n := e.changed(); n != changes {
			t.Fatalf("caches told %d more times on the second revoke", n-changes)
		}

		// Not a no-op: a rotated key in its grace window is not revoked
		// yet; revoking it ends the window, audited and announced.
		_, _, _, other := e.tenant(t, "other")
		must(e.svc.Keys.RotateKey(e.root, other.ID, keyward.KeyRotate{Grace: keyward.Duration(time.Hour)}))
		e.announced(t)
		audits = e.auditCount(t)
		stopped := must(e.svc.Keys.RevokeKey(e.root, other.ID))
		if !stopped.RevokedAt.Equal(e.now) {
			t.Fatalf("revoking a key in its grace window: revoked_at %v, want %v", stopped.RevokedAt, e.now)
		}
		if evs := e.announced(t); len(evs) != 1 || evs[0].Type != keyward.EventKeyRevoked {
			t.Fatalf("revoking a key in its grace window announced %v, want one key.revoked", evs)
		}
		if n := e.auditCount(t); n != audits+1 {
			t.Fatalf("revoking a key in its grace window wrote %d audit entries, want 1", n-audits)
		}
	})
}

// TestOnlyUsableRootKeysCount: the last usable root key cannot be deleted
// even while revoked, disabled or expired root keys exist, and bootstrap
// works once no root key is usable, however many unusable ones exist.
func TestOnlyUsableRootKeysCount(t *testing.T) {
	onEachStore(t, func(t *testing.T, e *env) {
		rootID := keyward.IdentityFrom(e.root).KeyID
		revoked := must(e.svc.Keys.CreateKey(e.root, keyward.KeyCreate{Role: keyward.RoleRoot, Name: "revoked"}))
		must(e.svc.Keys.RevokeKey(e.root, revoked.ID))
		disabled := must(e.svc.Keys.CreateKey(e.root, keyward.KeyCreate{Role: keyward.RoleRoot, Name: "disabled"}))
		must(e.svc.Keys.UpdateKey(e.root, disabled.ID, keyward.KeyUpdate{Disabled: ptr(true)}))
		expiring := must(e.svc.Keys.CreateKey(e.root, keyward.KeyCreate{Role: keyward.RoleRoot, Name: "expiring", ExpiresAt: ptr(e.now.Add(time.Hour))}))

		// The expiring key is usable: the bootstrap key may go.
		second := must(e.svc.Keys.CreateKey(e.root, keyward.KeyCreate{Role: keyward.RoleRoot, Name: "second"}))
		if err := e.svc.Keys.DeleteKey(e.root, second.ID); err != nil {
			t.Fatalf("deleting a root key while other usable ones exist: %v", err)
		}
		_, _, err := e.svc.Keys.Bootstrap(t.Context())
		wantCode(t, err, keyward.ECONFLICT)

		e.now = e.now.Add(2 * time.Hour) // the expiring key expired
		err = e.svc.Keys.DeleteKey(e.root, rootID)
		wantCode(t, err, keyward.ECONFLICT)
		if _, err := e.store.Key(t.Context(), rootID); err != nil {
			t.Fatalf("the last usable root key was deleted: %v", err)
		}
		// Unusable root keys can always be deleted.
		if err := e.svc.Keys.DeleteKey(e.root, expiring.ID); err != nil {
			t.Fatalf("deleting an expired root key: %v", err)
		}

		// A leaked last root key is revoked all the same; bootstrap is
		// the way back in, despite the unusable root keys left.
		must(e.svc.Keys.RevokeKey(e.root, rootID))
		_, fresh, err := e.svc.Keys.Bootstrap(t.Context())
		if err != nil {
			t.Fatalf("bootstrap with only revoked and disabled root keys: %v", err)
		}
		if got := fresh.Status(e.now); got != keyward.DecisionValid {
			t.Fatalf("bootstrapped root key is %s", got)
		}
		_, _, err = e.svc.Keys.Bootstrap(t.Context())
		wantCode(t, err, keyward.ECONFLICT)
		asFresh := as(t, fresh)
		for _, id := range []string{rootID, revoked.ID, disabled.ID} {
			if err := e.svc.Keys.DeleteKey(asFresh, id); err != nil {
				t.Fatalf("deleting unusable root key %s: %v", id, err)
			}
		}
	})
}

func ptr[T any](v T) *T { return &v }
