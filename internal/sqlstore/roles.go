package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/keyward/keyward"
)

// Named roles (keyward.RoleStore): the roles table, and key_roles, the
// roles attached to each key. A key row says whether it has roles
// (keys.has_roles, kept by triggers on key_roles); fillRoles then reads
// their names and permissions, so a key without roles costs no other
// query.

const selectRole = "SELECT account_id, name, permissions, created_at, updated_at FROM roles"

// CreateRole inserts r. ENOTFOUND if its account does not exist, ECONFLICT
// if the account has a role of that name.
func (s *Store) CreateRole(ctx context.Context, ch keyward.Change, r *keyward.NamedRole) error {
	if err := validateRole(r); err != nil {
		return s.errorf("create role %s: %w", r.Name, err)
	}
	err := s.write(ctx, ch, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO roles (account_id, name, permissions, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?)`, r.AccountID, r.Name, s.d.List(r.Permissions), FormatTime(r.CreatedAt), FormatTime(r.UpdatedAt))
		return s.dbError(err, Conflicts{
			PK: fmt.Sprintf("account %s already has a role named %q", r.AccountID, r.Name),
			FK: fmt.Sprintf("account %s not found", r.AccountID),
		})
	})
	if err != nil {
		return s.errorf("create role %s: %w", r.Name, err)
	}
	return nil
}

// validateRole checks what the roles table requires of r.
func validateRole(r *keyward.NamedRole) error {
	if r.AccountID == "" {
		return keyward.Errorf(keyward.EINVALID, "a role needs an account")
	}
	return keyward.ValidateRoleName("role name", r.Name)
}

// Role returns the role of the account with name. ENOTFOUND if none.
func (s *Store) Role(ctx context.Context, accountID, name string) (*keyward.NamedRole, error) {
	r, err := s.role(ctx, s.r, accountID, name)
	if err != nil {
		return nil, s.errorf("role %s: %w", name, err)
	}
	return r, nil
}

func (s *Store) role(ctx context.Context, q querier, accountID, name string) (*keyward.NamedRole, error) {
	r, err := s.scanRole(q.QueryRowContext(ctx, s.locked(q, selectRole+" WHERE account_id = ? AND name = ?", ""), accountID, name))
	return r, s.rowError(err, "role", name)
}

// Roles lists the roles of an account by name after p.After.
func (s *Store) Roles(ctx context.Context, accountID string, p keyward.Page) ([]*keyward.NamedRole, string, error) {
	return listPage(ctx, s, "list roles", selectRole+" WHERE account_id = ?", []any{accountID}, "name", ascending, p, s.scanRole,
		func(r *keyward.NamedRole) string { return r.Name })
}

// UpdateRole loads the role, applies fn and saves its permissions and
// update time in one write transaction; an error from fn aborts it and is
// returned. fn may not change the account or the name (EINVALID).
func (s *Store) UpdateRole(ctx context.Context, ch keyward.Change, accountID, name string, fn func(*keyward.NamedRole) error) (*keyward.NamedRole, error) {
	var out *keyward.NamedRole
	err := s.write(ctx, ch, func(tx *Tx) error {
		r, err := s.role(ctx, tx, accountID, name)
		if err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
		if r.AccountID != accountID || r.Name != name {
			return keyward.Errorf(keyward.EINVALID, "the account and name of a role cannot change: create a role of the new name")
		}
		if _, err := tx.ExecContext(ctx, "UPDATE roles SET permissions = ?, updated_at = ? WHERE account_id = ? AND name = ?",
			s.d.List(r.Permissions), FormatTime(r.UpdatedAt), accountID, name); err != nil {
			return s.dbError(err, Conflicts{})
		}
		out, err = s.role(ctx, tx, accountID, name)
		return err
	})
	if err != nil {
		return nil, s.errorf("update role %s: %w", name, err)
	}
	return out, nil
}

// DeleteRole deletes the role and, by cascade, its attachments to keys, and
// returns it as it was.
func (s *Store) DeleteRole(ctx context.Context, ch keyward.Change, accountID, name string) (*keyward.NamedRole, error) {
	var r *keyward.NamedRole
	err := s.write(ctx, ch, func(tx *Tx) error {
		var err error
		if r, err = s.role(ctx, tx, accountID, name); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "DELETE FROM roles WHERE account_id = ? AND name = ?", accountID, name)
		return s.dbError(err, Conflicts{})
	})
	if err != nil {
		return nil, s.errorf("delete role %s: %w", name, err)
	}
	return r, nil
}

func (s *Store) scanRole(row scanner) (*keyward.NamedRole, error) {
	var r keyward.NamedRole
	var created, updated storedTime
	if err := row.Scan(&r.AccountID, &r.Name, s.d.ListDest(&r.Permissions), &created, &updated); err != nil {
		return nil, err
	}
	r.Permissions = nonNil(r.Permissions)
	r.CreatedAt, r.UpdatedAt = created.Time, updated.Time
	return &r, nil
}

// hasRoles marks a key scanned by scanKey that has roles: its Roles is
// this empty, non-nil list until fillRoles reads them.
func hasRoles(k *keyward.Key) bool { return k.Roles != nil }

// Key roles are read for one key, or for up to rolesBatch keys with one
// query: a shorter batch repeats its first id, so the statement's text
// (and its prepared form) stays the same.
const rolesBatch = 64

const selectKeyRoles = `SELECT kr.key_id, kr.role_name, r.permissions FROM key_roles kr
	JOIN roles r ON r.account_id = kr.account_id AND r.name = kr.role_name WHERE kr.key_id `

var (
	keyRolesOne   = selectKeyRoles + "= ? ORDER BY kr.role_name"
	keyRolesBatch = selectKeyRoles + "IN (" + strings.TrimSuffix(strings.Repeat("?, ", rolesBatch), ", ") + ") ORDER BY kr.key_id, kr.role_name"
)

// fillRoles reads the roles of each key that has some (hasRoles) with q:
// their names into Roles, in order, and the union of their permissions into
// RolePermissions. A page of keys costs a query per rolesBatch keys with
// roles, not one per key.
func (s *Store) fillRoles(ctx context.Context, q querier, keys ...*keyward.Key) error {
	var pending []*keyward.Key
	for _, k := range keys {
		if k != nil && hasRoles(k) {
			pending = append(pending, k)
		}
	}
	for len(pending) > 0 {
		batch := pending[:min(len(pending), rolesBatch)]
		pending = pending[len(batch):]
		if err := s.fillRolesBatch(ctx, q, batch); err != nil {
			return err
		}
	}
	return nil
}

// fillRolesBatch is fillRoles of at most rolesBatch keys, with one query.
func (s *Store) fillRolesBatch(ctx context.Context, q querier, batch []*keyward.Key) error {
	query, args := keyRolesOne, []any{batch[0].ID}
	if len(batch) > 1 {
		query, args = keyRolesBatch, make([]any, rolesBatch)
		for i := range args {
			args[i] = batch[min(i, len(batch)-1)].ID
		}
	}
	byID := make(map[string][]*keyward.Key, len(batch))
	perms := make(map[string][]string, len(batch))
	for _, k := range batch {
		byID[k.ID] = append(byID[k.ID], k)
	}
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return s.dbError(err, Conflicts{})
	}
	names := make(map[string][]string, len(batch))
	for rows.Next() {
		var id, name string
		var p []string
		if err := rows.Scan(&id, &name, s.d.ListDest(&p)); err != nil {
			rows.Close()
			return s.dbError(err, Conflicts{})
		}
		names[id] = append(names[id], name)
		perms[id] = append(perms[id], p...)
	}
	if err := rows.Close(); err != nil {
		return s.dbError(err, Conflicts{})
	}
	if err := rows.Err(); err != nil {
		return s.dbError(err, Conflicts{})
	}
	for id, ks := range byID {
		for _, k := range ks {
			// No roles left: they were detached since the key was read.
			k.Roles, k.RolePermissions = nil, nil
			if len(names[id]) > 0 {
				k.Roles = slices.Clone(names[id])
			}
			if len(perms[id]) > 0 {
				k.RolePermissions = keyward.UnionPermissions(nil, perms[id])
			}
		}
	}
	return nil
}

// insertKeyRoles attaches the roles of k, a key of an account, to it.
// ENOTFOUND for a role the account does not have.
func (s *Store) insertKeyRoles(ctx context.Context, tx *Tx, k *keyward.Key) error {
	for _, name := range k.Roles {
		if _, err := tx.ExecContext(ctx, "INSERT INTO key_roles (key_id, account_id, role_name) VALUES (?, ?, ?)", k.ID, k.AccountID, name); err != nil {
			return s.dbError(err, Conflicts{FK: fmt.Sprintf("role %q not found in account %s", name, k.AccountID)})
		}
	}
	return nil
}

// saveKeyRoles replaces the roles of k, loaded as orig, when they changed.
func (s *Store) saveKeyRoles(ctx context.Context, tx *Tx, orig, k *keyward.Key) error {
	if slices.Equal(orig.Roles, k.Roles) {
		return nil
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM key_roles WHERE key_id = ?", k.ID); err != nil {
		return s.dbError(err, Conflicts{})
	}
	return s.insertKeyRoles(ctx, tx, k)
}
