package admin

import (
	"slices"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/permission"
)

// The permission model. Two kinds of refusal, used consistently:
//   - forbidden: the caller's role may never do this kind of thing (a user
//     listing accounts, an admin creating a root key). It reveals nothing.
//   - not found: the object lies outside the caller's scope (another
//     account's key). Answering "forbidden" there would reveal that it exists.

func isRoot(id *keyward.Identity) bool { return id.Role == keyward.RoleRoot }

// inAccount reports whether id is an account admin of accountID.
func adminOf(id *keyward.Identity, accountID string) bool {
	return id.Role == keyward.RoleAccountAdmin && id.AccountID == accountID
}

// requireRoot refuses every caller but root.
func requireRoot(id *keyward.Identity, action string) error {
	if !isRoot(id) {
		return keyward.Errorf(keyward.EFORBIDDEN, "only a root key may %s", action)
	}
	return nil
}

// requireAccountManager allows root and the admins of accountID; other
// admins get not found, users forbidden.
func requireAccountManager(id *keyward.Identity, accountID, action string) error {
	switch {
	case isRoot(id), adminOf(id, accountID):
		return nil
	case id.Role == keyward.RoleAccountAdmin:
		return notFound("account", accountID)
	}
	return keyward.Errorf(keyward.EFORBIDDEN, "a user key may not %s", action)
}

// canSeeKey reports whether id may read and manage k: root any key, an
// admin the keys of its account, a user its own keys.
func canSeeKey(id *keyward.Identity, k *keyward.Key) bool {
	switch id.Role {
	case keyward.RoleRoot:
		return true
	case keyward.RoleAccountAdmin:
		return k.AccountID == id.AccountID
	case keyward.RoleUser:
		return k.Role == keyward.RoleUser && k.AccountID == id.AccountID && k.UserID == id.UserID
	}
	return false
}

// checkGrant refuses a key that would hold more power than the caller: a
// higher role, a permission the caller holds nothing covering (a wildcard
// is granted only by a key holding it or a broader one:
// permission.Covers), the permission "*" on a key other than root, or a
// longer life.
func checkGrant(id *keyward.Identity, role keyward.Role, perms []string, expiresAt *time.Time) error {
	if !id.Role.Covers(role) {
		return keyward.Errorf(keyward.EFORBIDDEN, "a %s key cannot grant role %s", id.Role, role)
	}
	if err := checkEverything(role, perms); err != nil {
		return err
	}
	if isRoot(id) {
		return nil
	}
	if err := checkHeld(id, perms); err != nil {
		return err
	}
	if id.ExpiresAt != nil && (expiresAt == nil || expiresAt.After(*id.ExpiresAt)) {
		return keyward.Errorf(keyward.EFORBIDDEN, "a key cannot outlive the key that grants it: set expires_at at or before %s", id.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// checkHeld refuses a permission of perms that the caller holds nothing
// covering (permission.Covers), its named roles' permissions included:
// nobody grants more than they hold, whether to a key or to a role. Root
// holds everything.
func checkHeld(id *keyward.Identity, perms []string) error {
	if isRoot(id) {
		return nil
	}
	for _, p := range perms {
		if !permission.Holds(id.Permissions, p) {
			return keyward.Errorf(keyward.EFORBIDDEN, "cannot grant permission %q: the calling key holds no permission that covers it (it may grant what it holds, or narrower: memories:* covers memories:read)", p)
		}
	}
	return nil
}

// checkEverything refuses the permission "*" (every permission) on a key
// of role other than root: every permission is the power of root keys.
func checkEverything(role keyward.Role, perms []string) error {
	if role != keyward.RoleRoot && slices.Contains(perms, permission.Wildcard) {
		return keyward.Errorf(keyward.EFORBIDDEN, "permission \"*\" (every permission) is for root keys only: grant the wildcards of services instead, e.g. memories:*")
	}
	return nil
}

func notFound(kind, id string) error {
	return keyward.Errorf(keyward.ENOTFOUND, "%s %s not found", kind, id)
}

// checkMeta refuses meta from a non-root caller: verifiers trust a key's
// meta (a plan, a tenant), so setting it is a power only root holds.
func checkMeta(id *keyward.Identity, meta []byte) error {
	if len(meta) > 0 && !isRoot(id) {
		return keyward.Errorf(keyward.EFORBIDDEN, "only a root key may set meta: services that verify keys trust it")
	}
	return nil
}

// scopeToAccount scopes a read of account-owned records (anomalies, audit
// entries) to what id may see: root anything; an account admin its own
// account, which *accountID is set to (another account's is not found); a
// user nothing (EFORBIDDEN, naming action).
func scopeToAccount(id *keyward.Identity, accountID *string, action string) error {
	switch {
	case isRoot(id):
		return nil
	case id.Role == keyward.RoleAccountAdmin:
		if *accountID != "" && *accountID != id.AccountID {
			return notFound("account", *accountID)
		}
		*accountID = id.AccountID
		return nil
	}
	return keyward.Errorf(keyward.EFORBIDDEN, "a user key may not %s", action)
}
