package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/keyward/keyward"
)

const selectConnection = `SELECT id, account_id, kind, name, base_url, username, password, password_version,
	password_bound, timeout_ms, created_by, created_at, updated_at FROM provider_connections`

const selectCredential = `SELECT id, connection_id, kind, account_id, external_id, external_user, name, scopes,
	hint, expires_at, status, rotated_from, replaced_by, grace_until, revoked_at, created_by, created_at, updated_at
	FROM managed_credentials`

// liveStatuses are the statuses of credentials that may still work at the
// provider: their connection cannot be deleted.
const liveStatuses = `('active', 'rotated', 'orphaned')`

// CreateProviderConnection inserts c. ENOTFOUND if its account does not
// exist, ECONFLICT if the id, or the name within the account, is taken.
func (s *Store) CreateProviderConnection(ctx context.Context, ch keyward.Change, c *keyward.ProviderConnection) error {
	err := s.write(ctx, ch, func(tx *Tx) error {
		if err := validConnection(c); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO provider_connections (id, account_id, kind, name, base_url, username,
			password, password_version, password_bound, timeout_ms, created_by, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.AccountID, c.Kind, c.Name, c.BaseURL, c.Username, nonNil(c.SealedPassword), c.PasswordVersion, c.PasswordBound,
			time.Duration(c.Timeout).Milliseconds(), c.CreatedBy, FormatTime(c.CreatedAt), FormatTime(c.UpdatedAt))
		return s.dbError(err, Conflicts{
			PK:     fmt.Sprintf("provider connection %s already exists", c.ID),
			Unique: fmt.Sprintf("account %s already has a provider connection named %q", c.AccountID, c.Name),
			FK:     fmt.Sprintf("account %s not found", c.AccountID),
		})
	})
	if err != nil {
		return s.errorf("create provider connection %s: %w", c.ID, err)
	}
	return nil
}

// validConnection returns EINVALID unless c's password is either empty or
// sealed under a master key version.
func validConnection(c *keyward.ProviderConnection) error {
	if len(c.SealedPassword) == 0 {
		return nil
	}
	return (&keyward.Sealed{Version: c.PasswordVersion, Data: c.SealedPassword}).ValidateRecord("the password of provider connection " + c.ID)
}

// ProviderConnection returns the connection with id. ENOTFOUND if none.
func (s *Store) ProviderConnection(ctx context.Context, id string) (*keyward.ProviderConnection, error) {
	c, err := s.connectionTx(ctx, s.r, id)
	if err != nil {
		return nil, s.errorf("provider connection %s: %w", id, err)
	}
	return c, nil
}

func (s *Store) connectionTx(ctx context.Context, q querier, id string) (*keyward.ProviderConnection, error) {
	c, err := scanConnection(q.QueryRowContext(ctx, s.locked(q, selectConnection+" WHERE id = ?", ""), id))
	return c, s.rowError(err, "provider connection", id)
}

// ProviderConnections lists the connections of an account ("" for all) by
// id.
func (s *Store) ProviderConnections(ctx context.Context, accountID string, p keyward.Page) ([]*keyward.ProviderConnection, string, error) {
	query, args := selectConnection+" WHERE 1=1", []any(nil)
	if accountID != "" {
		query += " AND account_id = ?"
		args = append(args, accountID)
	}
	return listPage(ctx, s, "list provider connections", query, args, "id", ascending, p, scanConnection, func(c *keyward.ProviderConnection) string { return c.ID })
}

// UpdateProviderConnection loads the connection, applies fn and saves the
// result in one transaction. EINVALID if fn changes the id, account or
// kind; ECONFLICT if it renames the connection to a name the account
// already uses.
func (s *Store) UpdateProviderConnection(ctx context.Context, ch keyward.Change, id string, fn func(*keyward.ProviderConnection) error) (*keyward.ProviderConnection, error) {
	var out *keyward.ProviderConnection
	err := s.write(ctx, ch, func(tx *Tx) error {
		c, err := s.connectionTx(ctx, tx, id)
		if err != nil {
			return err
		}
		account, kind := c.AccountID, c.Kind
		if err := fn(c); err != nil {
			return err
		}
		if c.ID != id || c.AccountID != account || c.Kind != kind {
			return keyward.Errorf(keyward.EINVALID, "the id, account and kind of a provider connection cannot change")
		}
		if err := validConnection(c); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE provider_connections SET name = ?, base_url = ?, username = ?, password = ?,
			password_version = ?, password_bound = ?, timeout_ms = ?, updated_at = ? WHERE id = ?`,
			c.Name, c.BaseURL, c.Username, nonNil(c.SealedPassword), c.PasswordVersion, c.PasswordBound,
			time.Duration(c.Timeout).Milliseconds(), FormatTime(c.UpdatedAt), id)
		if err != nil {
			return s.dbError(err, Conflicts{Unique: fmt.Sprintf("account %s already has a provider connection named %q", account, c.Name)})
		}
		out, err = s.connectionTx(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, s.errorf("update provider connection %s: %w", id, err)
	}
	return out, nil
}

// DeleteProviderConnection deletes the connection and returns it.
// ENOTFOUND if none; ECONFLICT while credentials created through it are
// active, rotated or orphaned. The records of its finished credentials
// (revoked, expired, vanished) are deleted with it.
func (s *Store) DeleteProviderConnection(ctx context.Context, ch keyward.Change, id string) (*keyward.ProviderConnection, error) {
	var c *keyward.ProviderConnection
	err := s.write(ctx, ch, func(tx *Tx) error {
		var err error
		if c, err = s.connectionTx(ctx, tx, id); err != nil {
			return err
		}
		var live int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM managed_credentials WHERE connection_id = ? AND status IN "+liveStatuses,
			id).Scan(&live); err != nil {
			return s.dbError(err, Conflicts{})
		}
		if live > 0 {
			return keyward.Errorf(keyward.ECONFLICT, "provider connection %s still has %d credentials that are active, rotated or orphaned: revoke them first", id, live)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM managed_credentials WHERE connection_id = ?", id); err != nil {
			return s.dbError(err, Conflicts{})
		}
		_, err = tx.ExecContext(ctx, "DELETE FROM provider_connections WHERE id = ?", id)
		return s.dbError(err, Conflicts{})
	})
	if err != nil {
		return nil, s.errorf("delete provider connection %s: %w", id, err)
	}
	return c, nil
}

// CreateCredential inserts c. ENOTFOUND if its connection does not exist,
// ECONFLICT if the id, or the external id within the connection, is taken;
// EINVALID if its account or kind is not its connection's, or its status
// is unknown.
func (s *Store) CreateCredential(ctx context.Context, ch keyward.Change, c *keyward.ManagedCredential) error {
	err := s.write(ctx, ch, func(tx *Tx) error { return s.insertCredential(ctx, tx, c) })
	if err != nil {
		return s.errorf("create credential %s: %w", c.ID, err)
	}
	return nil
}

func (s *Store) insertCredential(ctx context.Context, tx *Tx, c *keyward.ManagedCredential) error {
	conn, err := s.connectionTx(ctx, tx, c.ProviderID)
	if err != nil {
		return err
	}
	if c.AccountID != conn.AccountID || c.Kind != conn.Kind {
		return keyward.Errorf(keyward.EINVALID, "credential %s must have the account and kind of its provider connection %s", c.ID, conn.ID)
	}
	if err := validStatus(c.Status); err != nil {
		return err
	}
	scopes, err := json.Marshal(nonNil(c.Scopes))
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO managed_credentials (id, connection_id, kind, account_id, external_id,
		external_user, name, scopes, hint, expires_at, status, rotated_from, replaced_by, grace_until, revoked_at,
		created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.ProviderID, c.Kind, c.AccountID, c.ExternalID, c.ExternalUser, c.Name, string(scopes), c.Hint,
		nullTime(c.ExpiresAt), string(c.Status), nullString(c.RotatedFrom), nullString(c.ReplacedBy),
		nullTime(c.GraceUntil), nullTime(c.RevokedAt), c.CreatedBy, FormatTime(c.CreatedAt), FormatTime(c.UpdatedAt))
	return s.dbError(err, Conflicts{
		PK:     fmt.Sprintf("credential %s already exists", c.ID),
		Unique: fmt.Sprintf("provider connection %s already has a credential with external id %s", c.ProviderID, c.ExternalID),
		FK:     fmt.Sprintf("provider connection %s not found", c.ProviderID),
	})
}

// validStatus returns EINVALID for a status that is not one of
// keyward's credential statuses.
func validStatus(st keyward.CredentialStatus) error {
	switch st {
	case keyward.CredentialActive, keyward.CredentialRotated, keyward.CredentialRevoked,
		keyward.CredentialExpired, keyward.CredentialOrphaned, keyward.CredentialVanished:
		return nil
	}
	return keyward.Errorf(keyward.EINVALID, "unknown credential status %q", st)
}

// Credential returns the credential with id. ENOTFOUND if none.
func (s *Store) Credential(ctx context.Context, id string) (*keyward.ManagedCredential, error) {
	c, err := s.credentialTx(ctx, s.r, id)
	if err != nil {
		return nil, s.errorf("credential %s: %w", id, err)
	}
	return c, nil
}

func (s *Store) credentialTx(ctx context.Context, q querier, id string) (*keyward.ManagedCredential, error) {
	c, err := scanCredential(q.QueryRowContext(ctx, s.locked(q, selectCredential+" WHERE id = ?", ""), id))
	return c, s.rowError(err, "credential", id)
}

// Credentials lists the credentials matching f by id.
func (s *Store) Credentials(ctx context.Context, f keyward.CredentialFilter, p keyward.Page) ([]*keyward.ManagedCredential, string, error) {
	query, args := selectCredential+" WHERE 1=1", []any(nil)
	if f.AccountID != "" {
		query += " AND account_id = ?"
		args = append(args, f.AccountID)
	}
	if f.ProviderID != "" {
		query += " AND connection_id = ?"
		args = append(args, f.ProviderID)
	}
	if f.Status != "" {
		query += " AND status = ?"
		args = append(args, string(f.Status))
	}
	return listPage(ctx, s, "list credentials", query, args, "id", ascending, p, scanCredential, func(c *keyward.ManagedCredential) string { return c.ID })
}

// UpdateCredential loads the credential, applies fn and saves the result in
// one transaction. EINVALID if fn changes the id, connection, account, kind
// or external id, or sets an unknown status.
func (s *Store) UpdateCredential(ctx context.Context, ch keyward.Change, id string, fn func(*keyward.ManagedCredential) error) (*keyward.ManagedCredential, error) {
	var out *keyward.ManagedCredential
	err := s.write(ctx, ch, func(tx *Tx) error {
		c, err := s.credentialTx(ctx, tx, id)
		if err != nil {
			return err
		}
		orig := *c
		if err := fn(c); err != nil {
			return err
		}
		if err := s.saveCredential(ctx, tx, &orig, c); err != nil {
			return err
		}
		out, err = s.credentialTx(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, s.errorf("update credential %s: %w", id, err)
	}
	return out, nil
}

// RotateCredential loads the credential, lets fn change it and return its
// replacement, then saves both in one transaction: an error from fn, or
// from saving either, leaves both as they were.
func (s *Store) RotateCredential(ctx context.Context, ch keyward.Change, id string, fn func(old *keyward.ManagedCredential) (*keyward.ManagedCredential, error)) (old, next *keyward.ManagedCredential, err error) {
	err = s.write(ctx, ch, func(tx *Tx) error {
		c, err := s.credentialTx(ctx, tx, id)
		if err != nil {
			return err
		}
		orig := *c
		n, err := fn(c)
		if err != nil {
			return err
		}
		if n == nil {
			return keyward.Errorf(keyward.EINVALID, "rotation produced no replacement credential")
		}
		if err := s.saveCredential(ctx, tx, &orig, c); err != nil {
			return err
		}
		if err := s.insertCredential(ctx, tx, n); err != nil {
			return err
		}
		if old, err = s.credentialTx(ctx, tx, id); err != nil {
			return err
		}
		next, err = s.credentialTx(ctx, tx, n.ID)
		return err
	})
	if err != nil {
		return nil, nil, s.errorf("rotate credential %s: %w", id, err)
	}
	return old, next, nil
}

// saveCredential writes the mutable fields of c, loaded as orig.
func (s *Store) saveCredential(ctx context.Context, tx *Tx, orig, c *keyward.ManagedCredential) error {
	if c.ID != orig.ID || c.ProviderID != orig.ProviderID || c.AccountID != orig.AccountID ||
		c.Kind != orig.Kind || c.ExternalID != orig.ExternalID {
		return keyward.Errorf(keyward.EINVALID, "the id, connection, account, kind and external id of a credential cannot change")
	}
	if err := validStatus(c.Status); err != nil {
		return err
	}
	scopes, err := json.Marshal(nonNil(c.Scopes))
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE managed_credentials SET external_user = ?, name = ?, scopes = ?, hint = ?,
		expires_at = ?, status = ?, rotated_from = ?, replaced_by = ?, grace_until = ?, revoked_at = ?, updated_at = ?
		WHERE id = ?`,
		c.ExternalUser, c.Name, string(scopes), c.Hint, nullTime(c.ExpiresAt), string(c.Status),
		nullString(c.RotatedFrom), nullString(c.ReplacedBy), nullTime(c.GraceUntil), nullTime(c.RevokedAt),
		FormatTime(c.UpdatedAt), c.ID)
	return s.dbError(err, Conflicts{})
}

// CredentialsDue lists, by id after the cursor, the active credentials
// whose expiry is at or before now and the rotated ones whose grace ended
// at or before now.
func (s *Store) CredentialsDue(ctx context.Context, now time.Time, after string, limit int) ([]*keyward.ManagedCredential, error) {
	creds, err := queryRows(ctx, s.r, selectCredential+` WHERE
		((status = 'active' AND expires_at <= ?1) OR (status = 'rotated' AND grace_until <= ?1))
		AND id > ?2 ORDER BY id LIMIT ?3`, []any{FormatTime(now), after, limit}, scanCredential)
	if err != nil {
		return nil, s.errorf("credentials due: %w", s.dbError(err, Conflicts{}))
	}
	return creds, nil
}

func scanConnection(row scanner) (*keyward.ProviderConnection, error) {
	var (
		c                keyward.ProviderConnection
		timeoutMS        int64
		created, updated string
	)
	if err := row.Scan(&c.ID, &c.AccountID, &c.Kind, &c.Name, &c.BaseURL, &c.Username, &c.SealedPassword,
		&c.PasswordVersion, &c.PasswordBound, &timeoutMS, &c.CreatedBy, &created, &updated); err != nil {
		return nil, err
	}
	if len(c.SealedPassword) == 0 {
		c.SealedPassword = nil
	}
	c.Timeout = keyward.Duration(time.Duration(timeoutMS) * time.Millisecond)
	var err error
	if c.CreatedAt, err = parseTime(created); err != nil {
		return nil, err
	}
	c.UpdatedAt, err = parseTime(updated)
	return &c, err
}

func scanCredential(row scanner) (*keyward.ManagedCredential, error) {
	var (
		c                         keyward.ManagedCredential
		scopes, status            string
		created, updated          string
		rotatedFrom, replacedBy   sql.NullString
		expires, grace, revokedAt sql.NullString
	)
	if err := row.Scan(&c.ID, &c.ProviderID, &c.Kind, &c.AccountID, &c.ExternalID, &c.ExternalUser, &c.Name,
		&scopes, &c.Hint, &expires, &status, &rotatedFrom, &replacedBy, &grace, &revokedAt, &c.CreatedBy,
		&created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(scopes), &c.Scopes); err != nil {
		return nil, fmt.Errorf("credential %s: stored scopes: %w", c.ID, err)
	}
	c.Status, c.RotatedFrom, c.ReplacedBy = keyward.CredentialStatus(status), rotatedFrom.String, replacedBy.String
	var err error
	if c.ExpiresAt, err = parseNullTime(expires); err != nil {
		return nil, err
	}
	if c.GraceUntil, err = parseNullTime(grace); err != nil {
		return nil, err
	}
	if c.RevokedAt, err = parseNullTime(revokedAt); err != nil {
		return nil, err
	}
	if c.CreatedAt, err = parseTime(created); err != nil {
		return nil, err
	}
	c.UpdatedAt, err = parseTime(updated)
	return &c, err
}
