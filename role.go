package keyward

import (
	"context"
	"slices"
	"time"
)

// NamedRole is a named set of permissions of an account, such as
// reader = [memories:read, search:*], attached to keys of the account
// (Key.Roles). A key holds its own permissions and those of its roles
// (Key.EffectivePermissions); a change of a role reaches every key holding
// it at once (docs/permissions.md#named-roles). It is not a key tier
// (Role): its name is never root, account_admin or user.
type NamedRole struct {
	AccountID string `json:"account_id"`
	// Name is unique in the account and never changes
	// (ValidateRoleName).
	Name string `json:"name"`
	// Permissions are sorted, without duplicates, never nil.
	Permissions []string  `json:"permissions"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Bounds of named roles.
const (
	// MaxRoleNameLen bounds the length of a role name.
	MaxRoleNameLen = 64
	// MaxKeyRoles bounds the roles attached to one key.
	MaxKeyRoles = 16
)

// ValidateRoleName checks that name can name a role: a lowercase letter,
// then up to MaxRoleNameLen-1 lowercase letters, digits, '_' or '-', and
// not one of the key tiers (root, account_admin, user), which a
// require_role guard already means. It returns EINVALID naming field.
func ValidateRoleName(field, name string) error {
	ok := len(name) > 0 && len(name) <= MaxRoleNameLen && name[0] >= 'a' && name[0] <= 'z'
	for i := 1; ok && i < len(name); i++ {
		c := name[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-'
	}
	if !ok {
		return Errorf(EINVALID, "%s %q is not a role name: use a lowercase letter and up to %d lowercase letters, digits, '_' or '-', such as reader", field, name, MaxRoleNameLen-1)
	}
	if Role(name).Valid() {
		return Errorf(EINVALID, "%s %q is a key tier (root, account_admin, user): name the role otherwise, such as %s_role", field, name, name)
	}
	return nil
}

// ValidateRequiredRole checks a require_role guard: a key tier (root,
// account_admin, user: Role.Covers) or the name of a named role
// (ValidateRoleName). It returns EINVALID.
func ValidateRequiredRole(r Role) error {
	if r.Valid() {
		return nil
	}
	if ValidateRoleName("require_role", string(r)) != nil {
		return Errorf(EINVALID, "require_role %q is neither a key tier (root, account_admin, user) nor a role name (a lowercase letter, then lowercase letters, digits, '_' or '-')", r)
	}
	return nil
}

// HasRole reports whether the key meets the guard r: its tier covers r
// (Role.Covers), or it holds the named role r.
func (k *Key) HasRole(r Role) bool {
	return k.Role.Covers(r) || slices.Contains(k.Roles, string(r))
}

// EffectivePermissions returns what the key holds: its own permissions and
// those of its roles (RolePermissions), sorted without duplicates when it
// has roles; its own list as it is when it has none.
func (k *Key) EffectivePermissions() []string {
	if len(k.RolePermissions) == 0 {
		return k.Permissions
	}
	return UnionPermissions(k.Permissions, k.RolePermissions)
}

// UnionPermissions returns the permissions of a and b in a new list,
// sorted without duplicates, never nil.
func UnionPermissions(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	out = append(append(out, a...), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

// RoleCreate is the input of RoleService.CreateRole.
type RoleCreate struct {
	Name        string   `json:"name"`
	Permissions []string `json:"permissions"`
}

// RoleUpdate changes the fields that are set: Permissions replaces the
// whole list.
type RoleUpdate struct {
	Permissions *[]string `json:"permissions,omitempty"`
}

// RoleList is one page of roles, by name.
type RoleList struct {
	Items []*NamedRole `json:"items"`
	Next  string       `json:"next,omitempty"`
}

// RoleService manages the named roles of an account: root, or the
// account's admins. Implemented by admin.Roles and client.Client.
type RoleService interface {
	CreateRole(ctx context.Context, accountID string, c RoleCreate) (*NamedRole, error)
	Role(ctx context.Context, accountID, name string) (*NamedRole, error)
	Roles(ctx context.Context, accountID string, p Page) (*RoleList, error)
	UpdateRole(ctx context.Context, accountID, name string, u RoleUpdate) (*NamedRole, error)
	DeleteRole(ctx context.Context, accountID, name string) error
}

// RoleStore holds named roles; part of Store. A key's roles are written
// with the key (Key.Roles, by CreateKey and UpdateKey) and read with it,
// RolePermissions filled.
type RoleStore interface {
	// CreateRole inserts r. ENOTFOUND if its account does not exist,
	// ECONFLICT if the account has a role of that name.
	CreateRole(ctx context.Context, ch Change, r *NamedRole) error
	// Role returns the role of the account with name. ENOTFOUND if none.
	Role(ctx context.Context, accountID, name string) (*NamedRole, error)
	// Roles lists the roles of an account by name after the cursor (a
	// name); next is the cursor of the following page or "".
	Roles(ctx context.Context, accountID string, p Page) (roles []*NamedRole, next string, err error)
	// UpdateRole loads the role, applies fn and saves the result in one
	// transaction; an error from fn aborts it unchanged. The account and
	// name never change. Every key holding the role holds its new
	// permissions from the commit on.
	UpdateRole(ctx context.Context, ch Change, accountID, name string, fn func(*NamedRole) error) (*NamedRole, error)
	// DeleteRole deletes the role, detaching it from every key, and
	// returns it. ENOTFOUND if none.
	DeleteRole(ctx context.Context, ch Change, accountID, name string) (*NamedRole, error)
}

// ValidateKeyRoles checks the named roles of a key of accountID (empty for
// a root key): role names, at most MaxKeyRoles, no duplicates, and none on
// a root key. It returns EINVALID.
func ValidateKeyRoles(accountID string, roles []string) error {
	if len(roles) == 0 {
		return nil
	}
	if accountID == "" {
		return Errorf(EINVALID, "a root key holds every permission and no named roles: omit roles")
	}
	if len(roles) > MaxKeyRoles {
		return Errorf(EINVALID, "a key holds at most %d roles", MaxKeyRoles)
	}
	for i, r := range roles {
		if err := ValidateRoleName("role", r); err != nil {
			return err
		}
		if slices.Contains(roles[:i], r) {
			return Errorf(EINVALID, "role %q is named twice", r)
		}
	}
	return nil
}
