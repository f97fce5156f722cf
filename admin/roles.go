package admin

import (
	"context"
	"slices"

	"github.com/keyward/keyward"
)

// Roles manages the named roles of accounts (docs/permissions.md#named-roles):
// root, or the account's admins, and nobody may put in a role a permission
// they do not hold. A change or deletion of a role reaches every key holding
// it at once: the account's cached keys are invalidated, on every instance,
// through the observer.
type Roles struct {
	recorder
	*writes // shared with Tenancy, Keys and Abuse
	store   roleStore
}

var _ keyward.RoleService = (*Roles)(nil)

// roleStore is what Roles reads and writes.
type roleStore interface {
	Account(ctx context.Context, id string) (*keyward.Account, error)
	CreateRole(ctx context.Context, ch keyward.Change, r *keyward.NamedRole) error
	Role(ctx context.Context, accountID, name string) (*keyward.NamedRole, error)
	Roles(ctx context.Context, accountID string, p keyward.Page) ([]*keyward.NamedRole, string, error)
	UpdateRole(ctx context.Context, ch keyward.Change, accountID, name string, fn func(*keyward.NamedRole) error) (*keyward.NamedRole, error)
	DeleteRole(ctx context.Context, ch keyward.Change, accountID, name string) (*keyward.NamedRole, error)
}

// roleDetails are the audit details and event data of a role change.
type roleDetails struct {
	Name        string   `json:"name"`
	Permissions []string `json:"permissions,omitempty"`
}

// CreateRole creates a role in an account: root, or the account's admins,
// holding every permission they put in it.
func (s *Roles) CreateRole(ctx context.Context, accountID string, c keyward.RoleCreate) (*keyward.NamedRole, error) {
	id, unlock, err := s.writer(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := requireAccountManager(id, accountID, "manage roles"); err != nil {
		return nil, err
	}
	if err := keyward.ValidateRoleName("name", c.Name); err != nil {
		return nil, err
	}
	perms, err := rolePermissions(id, c.Permissions)
	if err != nil {
		return nil, err
	}
	now := s.utc()
	r := &keyward.NamedRole{AccountID: accountID, Name: c.Name, Permissions: perms, CreatedAt: now, UpdatedAt: now}
	ch, err := s.audit(ctx, id, "role.create", "role", r.Name, accountID, roleDetails{Name: r.Name, Permissions: perms})
	if err != nil {
		return nil, err
	}
	if err := s.store.CreateRole(ctx, ch, r); err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "role created", "account_id", accountID, "role", r.Name, "by", id.KeyID)
	return r, nil
}

// rolePermissions validates the permissions of a role and checks that the
// caller may grant them: never "*" (roles belong to accounts, and "*" is
// root's), and only what the caller holds.
func rolePermissions(id *keyward.Identity, perms []string) ([]string, error) {
	out, err := normalizePermissions(perms)
	if err != nil {
		return nil, err
	}
	if err := checkEverything(keyward.RoleAccountAdmin, out); err != nil {
		return nil, err
	}
	return out, checkHeld(id, out)
}

// Role returns a role of an account: root, or the account's admins.
func (s *Roles) Role(ctx context.Context, accountID, name string) (*keyward.NamedRole, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := requireAccountManager(id, accountID, "read roles"); err != nil {
		return nil, err
	}
	return s.store.Role(ctx, accountID, name)
}

// Roles lists the roles of an account by name: root, or the account's
// admins.
func (s *Roles) Roles(ctx context.Context, accountID string, p keyward.Page) (*keyward.RoleList, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := requireAccountManager(id, accountID, "list roles"); err != nil {
		return nil, err
	}
	if _, err := s.store.Account(ctx, accountID); err != nil {
		return nil, err
	}
	items, next, err := s.store.Roles(ctx, accountID, p)
	if err != nil {
		return nil, err
	}
	return &keyward.RoleList{Items: items, Next: next}, nil
}

// UpdateRole replaces a role's permissions: root, or the account's admins,
// holding every permission they put in it. Every key holding the role
// holds the new permissions at once.
func (s *Roles) UpdateRole(ctx context.Context, accountID, name string, u keyward.RoleUpdate) (*keyward.NamedRole, error) {
	id, unlock, err := s.writer(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := requireAccountManager(id, accountID, "manage roles"); err != nil {
		return nil, err
	}
	if u.Permissions == nil {
		return s.store.Role(ctx, accountID, name)
	}
	perms, err := rolePermissions(id, *u.Permissions)
	if err != nil {
		return nil, err
	}
	ch, err := s.audit(ctx, id, "role.update", "role", name, accountID, roleDetails{Name: name, Permissions: perms})
	if err != nil {
		return nil, err
	}
	now := s.utc()
	r, err := s.store.UpdateRole(ctx, ch, accountID, name, func(r *keyward.NamedRole) error {
		r.Permissions, r.UpdatedAt = perms, now
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.accountChanged(accountID)
	s.log.InfoContext(ctx, "role updated", "account_id", accountID, "role", name, "by", id.KeyID)
	return r, nil
}

// DeleteRole deletes a role, detaching it from every key holding it: root,
// or the account's admins.
func (s *Roles) DeleteRole(ctx context.Context, accountID, name string) error {
	id, unlock, err := s.writer(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if err := requireAccountManager(id, accountID, "manage roles"); err != nil {
		return err
	}
	ch, err := s.audit(ctx, id, "role.delete", "role", name, accountID, roleDetails{Name: name})
	if err != nil {
		return err
	}
	if _, err := s.store.DeleteRole(ctx, ch, accountID, name); err != nil {
		return err
	}
	s.accountChanged(accountID)
	s.log.InfoContext(ctx, "role deleted", "account_id", accountID, "role", name, "by", id.KeyID)
	return nil
}

// roleReader reads roles; the stores of Roles and Keys are ones.
type roleReader interface {
	Role(ctx context.Context, accountID, name string) (*keyward.NamedRole, error)
}

// keyRoles validates the named roles to attach to a key of accountID
// (keyward.ValidateKeyRoles) and reads them with st, checking that the
// caller holds every permission they grant. It returns their names sorted
// without duplicates (nil for none). ENOTFOUND for a role the account does
// not have.
func keyRoles(ctx context.Context, st roleReader, id *keyward.Identity, accountID string, names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, nil
	}
	out := slices.Clone(names)
	slices.Sort(out)
	out = slices.Compact(out)
	if err := keyward.ValidateKeyRoles(accountID, out); err != nil {
		return nil, err
	}
	for _, name := range out {
		r, err := st.Role(ctx, accountID, name)
		if err != nil {
			return nil, err
		}
		if err := checkHeld(id, r.Permissions); err != nil {
			return nil, keyward.Errorf(keyward.EFORBIDDEN, "cannot attach role %q: %s", name, keyward.ErrorMessage(err))
		}
	}
	return out, nil
}
