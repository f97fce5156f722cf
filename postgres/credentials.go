package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keyward/keyward"
)

const connectionColumns = `id, account_id, kind, name, base_url, username, password, password_version,
	password_bound, timeout_ms, created_by, created_at, updated_at`

const selectConnection = `SELECT ` + connectionColumns + ` FROM provider_connections`

const selectCredential = `SELECT id, connection_id, kind, account_id, external_id, external_user, name, scopes,
	hint, expires_at, status, COALESCE(rotated_from, ''), COALESCE(replaced_by, ''), grace_until, revoked_at,
	created_by, created_at, updated_at FROM managed_credentials`

// liveStatuses are the statuses of credentials that may still work at the
// provider: their connection cannot be deleted.
const liveStatuses = `('active', 'rotated', 'orphaned')`

// CreateProviderConnection inserts c. ENOTFOUND if its account does not
// exist, ECONFLICT if the id, or the name within the account, is taken.
func (s *Store) CreateProviderConnection(ctx context.Context, ch keyward.Change, c *keyward.ProviderConnection) error {
	err := s.write(ctx, ch, func(tx pgx.Tx) error {
		if err := validConnection(c); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO provider_connections (id, account_id, kind, name, base_url, username,
			password, password_version, password_bound, timeout_ms, created_by, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
			c.ID, c.AccountID, c.Kind, c.Name, c.BaseURL, c.Username, nonNilBytes(c.SealedPassword), c.PasswordVersion, c.PasswordBound,
			time.Duration(c.Timeout).Milliseconds(), c.CreatedBy, c.CreatedAt, c.UpdatedAt)
		return s.dbError(err, conflicts{
			"provider_connections_pkey":         fmt.Sprintf("provider connection %s already exists", c.ID),
			"provider_connections_name_key":     fmt.Sprintf("account %s already has a provider connection named %q", c.AccountID, c.Name),
			"provider_connections_account_fkey": fmt.Sprintf("account %s not found", c.AccountID),
		})
	})
	if err != nil {
		return fmt.Errorf("postgres: create provider connection %s: %w", c.ID, err)
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

// nonNilBytes returns b, or an empty slice for nil, so it is stored as an
// empty bytea rather than NULL.
func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// ProviderConnection returns the connection with id. ENOTFOUND if none.
func (s *Store) ProviderConnection(ctx context.Context, id string) (*keyward.ProviderConnection, error) {
	c, err := s.connection(ctx, s.pool, id, "")
	if err != nil {
		return nil, fmt.Errorf("postgres: provider connection %s: %w", id, err)
	}
	return c, nil
}

// connection reads a connection; lock is "" or a locking clause.
func (s *Store) connection(ctx context.Context, q querier, id, lock string) (*keyward.ProviderConnection, error) {
	c, err := scanConnection(q.QueryRow(ctx, selectConnection+" WHERE id = $1 "+lock, id))
	return c, s.rowError(err, "provider connection", id)
}

// ProviderConnections lists the connections of an account ("" for all) by
// id.
func (s *Store) ProviderConnections(ctx context.Context, accountID string, p keyward.Page) ([]*keyward.ProviderConnection, string, error) {
	query, args := selectConnection+" WHERE true", []any(nil)
	if accountID != "" {
		args = append(args, accountID)
		query += " AND account_id = $1"
	}
	query, args = pageQuery(query, "id", ascending, args, p)
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: list provider connections: %w", s.dbError(err, nil))
	}
	conns, err := collect(rows, scanConnection)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: list provider connections: %w", s.dbError(err, nil))
	}
	conns, next := page(conns, p, func(c *keyward.ProviderConnection) string { return c.ID })
	return conns, next, nil
}

// UpdateProviderConnection loads the connection, applies fn and saves the
// result in one transaction. EINVALID if fn changes the id, account or
// kind; ECONFLICT if it renames the connection to a name the account
// already uses.
func (s *Store) UpdateProviderConnection(ctx context.Context, ch keyward.Change, id string, fn func(*keyward.ProviderConnection) error) (*keyward.ProviderConnection, error) {
	var out *keyward.ProviderConnection
	err := s.write(ctx, ch, func(tx pgx.Tx) error {
		c, err := s.connection(ctx, tx, id, "FOR UPDATE")
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
		out, err = scanConnection(tx.QueryRow(ctx, `UPDATE provider_connections SET name = $1, base_url = $2, username = $3,
			password = $4, password_version = $5, password_bound = $6, timeout_ms = $7, updated_at = $8 WHERE id = $9
			RETURNING `+connectionColumns,
			c.Name, c.BaseURL, c.Username, nonNilBytes(c.SealedPassword), c.PasswordVersion, c.PasswordBound,
			time.Duration(c.Timeout).Milliseconds(), c.UpdatedAt, id))
		return s.dbError(err, conflicts{
			"provider_connections_name_key": fmt.Sprintf("account %s already has a provider connection named %q", account, c.Name),
		})
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: update provider connection %s: %w", id, err)
	}
	return out, nil
}

// DeleteProviderConnection deletes the connection and returns it.
// ENOTFOUND if none; ECONFLICT while credentials created through it are
// active, rotated or orphaned. The records of its finished credentials
// (revoked, expired, vanished) are deleted with it. The connection is
// locked first, so a credential being created through it concurrently is
// either counted or refused.
func (s *Store) DeleteProviderConnection(ctx context.Context, ch keyward.Change, id string) (*keyward.ProviderConnection, error) {
	var c *keyward.ProviderConnection
	err := s.write(ctx, ch, func(tx pgx.Tx) error {
		var err error
		if c, err = s.connection(ctx, tx, id, "FOR UPDATE"); err != nil {
			return err
		}
		var live int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM managed_credentials WHERE connection_id = $1 AND status IN "+liveStatuses,
			id).Scan(&live); err != nil {
			return s.dbError(err, nil)
		}
		if live > 0 {
			return keyward.Errorf(keyward.ECONFLICT, "provider connection %s still has %d credentials that are active, rotated or orphaned: revoke them first", id, live)
		}
		if _, err := tx.Exec(ctx, "DELETE FROM managed_credentials WHERE connection_id = $1", id); err != nil {
			return s.dbError(err, nil)
		}
		_, err = tx.Exec(ctx, "DELETE FROM provider_connections WHERE id = $1", id)
		return s.dbError(err, nil)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: delete provider connection %s: %w", id, err)
	}
	return c, nil
}

// CreateCredential inserts c. ENOTFOUND if its connection does not exist,
// ECONFLICT if the id, or the external id within the connection, is taken;
// EINVALID if its account or kind is not its connection's, or its status
// is unknown.
func (s *Store) CreateCredential(ctx context.Context, ch keyward.Change, c *keyward.ManagedCredential) error {
	err := s.write(ctx, ch, func(tx pgx.Tx) error { return s.insertCredential(ctx, tx, c) })
	if err != nil {
		return fmt.Errorf("postgres: create credential %s: %w", c.ID, err)
	}
	return nil
}

func (s *Store) insertCredential(ctx context.Context, tx pgx.Tx, c *keyward.ManagedCredential) error {
	conn, err := s.connection(ctx, tx, c.ConnectionID, "")
	if err != nil {
		return err
	}
	if c.AccountID != conn.AccountID || c.Kind != conn.Kind {
		return keyward.Errorf(keyward.EINVALID, "credential %s must have the account and kind of its provider connection %s", c.ID, conn.ID)
	}
	if err := validStatus(c.Status); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO managed_credentials (id, connection_id, kind, account_id, external_id,
		external_user, name, scopes, hint, expires_at, status, rotated_from, replaced_by, grace_until, revoked_at,
		created_by, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
		c.ID, c.ConnectionID, c.Kind, c.AccountID, c.ExternalID, c.ExternalUser, c.Name, scopeList(c.Scopes), c.Hint,
		c.ExpiresAt, string(c.Status), nullString(c.RotatedFrom), nullString(c.ReplacedBy), c.GraceUntil, c.RevokedAt,
		c.CreatedBy, c.CreatedAt, c.UpdatedAt)
	return s.dbError(err, conflicts{
		"managed_credentials_pkey":            fmt.Sprintf("credential %s already exists", c.ID),
		"managed_credentials_external_key":    fmt.Sprintf("provider connection %s already has a credential with external id %s", c.ConnectionID, c.ExternalID),
		"managed_credentials_connection_fkey": fmt.Sprintf("provider connection %s not found", c.ConnectionID),
		"managed_credentials_account_fkey":    fmt.Sprintf("account %s not found", c.AccountID),
	})
}

// scopeList is how a credential's scopes are stored: a JSON array.
func scopeList(scopes []string) string {
	if len(scopes) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(scopes) // strings: never fails
	return string(b)
}

// validStatus returns EINVALID for a status that is not one of keyward's
// credential statuses.
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
	c, err := s.credential(ctx, s.pool, id, "")
	if err != nil {
		return nil, fmt.Errorf("postgres: credential %s: %w", id, err)
	}
	return c, nil
}

// credential reads a credential; lock is "" or a locking clause.
func (s *Store) credential(ctx context.Context, q querier, id, lock string) (*keyward.ManagedCredential, error) {
	c, err := scanCredential(q.QueryRow(ctx, selectCredential+" WHERE id = $1 "+lock, id))
	return c, s.rowError(err, "credential", id)
}

// Credentials lists the credentials matching f by id.
func (s *Store) Credentials(ctx context.Context, f keyward.CredentialFilter, p keyward.Page) ([]*keyward.ManagedCredential, string, error) {
	query, args := selectCredential+" WHERE true", []any(nil)
	if f.AccountID != "" {
		args = append(args, f.AccountID)
		query += fmt.Sprintf(" AND account_id = $%d", len(args))
	}
	if f.ConnectionID != "" {
		args = append(args, f.ConnectionID)
		query += fmt.Sprintf(" AND connection_id = $%d", len(args))
	}
	if f.Status != "" {
		args = append(args, string(f.Status))
		query += fmt.Sprintf(" AND status = $%d", len(args))
	}
	query, args = pageQuery(query, "id", ascending, args, p)
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: list credentials: %w", s.dbError(err, nil))
	}
	creds, err := collect(rows, scanCredential)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: list credentials: %w", s.dbError(err, nil))
	}
	creds, next := page(creds, p, func(c *keyward.ManagedCredential) string { return c.ID })
	return creds, next, nil
}

// UpdateCredential loads the credential, applies fn and saves the result in
// one transaction. EINVALID if fn changes the id, connection, account, kind
// or external id, or sets an unknown status.
func (s *Store) UpdateCredential(ctx context.Context, ch keyward.Change, id string, fn func(*keyward.ManagedCredential) error) (*keyward.ManagedCredential, error) {
	var out *keyward.ManagedCredential
	err := s.write(ctx, ch, func(tx pgx.Tx) error {
		c, err := s.credential(ctx, tx, id, "FOR UPDATE")
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
		out, err = s.credential(ctx, tx, id, "")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: update credential %s: %w", id, err)
	}
	return out, nil
}

// RotateCredential loads the credential, lets fn change it and return its
// replacement, then saves both in one transaction: an error from fn, or
// from saving either, leaves both as they were.
func (s *Store) RotateCredential(ctx context.Context, ch keyward.Change, id string, fn func(old *keyward.ManagedCredential) (*keyward.ManagedCredential, error)) (old, next *keyward.ManagedCredential, err error) {
	err = s.write(ctx, ch, func(tx pgx.Tx) error {
		c, err := s.credential(ctx, tx, id, "FOR UPDATE")
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
		if old, err = s.credential(ctx, tx, id, ""); err != nil {
			return err
		}
		next, err = s.credential(ctx, tx, n.ID, "")
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: rotate credential %s: %w", id, err)
	}
	return old, next, nil
}

// saveCredential writes the mutable fields of c, loaded as orig.
func (s *Store) saveCredential(ctx context.Context, tx pgx.Tx, orig, c *keyward.ManagedCredential) error {
	if c.ID != orig.ID || c.ConnectionID != orig.ConnectionID || c.AccountID != orig.AccountID ||
		c.Kind != orig.Kind || c.ExternalID != orig.ExternalID {
		return keyward.Errorf(keyward.EINVALID, "the id, connection, account, kind and external id of a credential cannot change")
	}
	if err := validStatus(c.Status); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `UPDATE managed_credentials SET external_user = $1, name = $2, scopes = $3, hint = $4,
		expires_at = $5, status = $6, rotated_from = $7, replaced_by = $8, grace_until = $9, revoked_at = $10,
		updated_at = $11 WHERE id = $12`,
		c.ExternalUser, c.Name, scopeList(c.Scopes), c.Hint, c.ExpiresAt, string(c.Status),
		nullString(c.RotatedFrom), nullString(c.ReplacedBy), c.GraceUntil, c.RevokedAt, c.UpdatedAt, c.ID)
	return s.dbError(err, nil)
}

// CredentialsDue lists, by id after the cursor, the active credentials
// whose expiry is at or before now and the rotated ones whose grace ended
// at or before now.
func (s *Store) CredentialsDue(ctx context.Context, now time.Time, after string, limit int) ([]*keyward.ManagedCredential, error) {
	rows, err := s.pool.Query(ctx, selectCredential+` WHERE
		((status = 'active' AND expires_at <= $1) OR (status = 'rotated' AND grace_until <= $1))
		AND id > $2 ORDER BY id LIMIT $3`, now, after, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: credentials due: %w", s.dbError(err, nil))
	}
	creds, err := collect(rows, scanCredential)
	if err != nil {
		return nil, fmt.Errorf("postgres: credentials due: %w", s.dbError(err, nil))
	}
	return creds, nil
}

func scanConnection(row pgx.Row) (*keyward.ProviderConnection, error) {
	var (
		c         keyward.ProviderConnection
		timeoutMS int64
	)
	if err := row.Scan(&c.ID, &c.AccountID, &c.Kind, &c.Name, &c.BaseURL, &c.Username, &c.SealedPassword,
		&c.PasswordVersion, &c.PasswordBound, &timeoutMS, &c.CreatedBy, &c.CreatedAt, &c.UpdatedAt); err != nil {
		return nil, err
	}
	if len(c.SealedPassword) == 0 {
		c.SealedPassword = nil
	}
	c.Timeout = keyward.Duration(time.Duration(timeoutMS) * time.Millisecond)
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	return &c, nil
}

func scanCredential(row pgx.Row) (*keyward.ManagedCredential, error) {
	var (
		c      keyward.ManagedCredential
		scopes []byte
		status string
	)
	if err := row.Scan(&c.ID, &c.ConnectionID, &c.Kind, &c.AccountID, &c.ExternalID, &c.ExternalUser, &c.Name,
		&scopes, &c.Hint, &c.ExpiresAt, &status, &c.RotatedFrom, &c.ReplacedBy, &c.GraceUntil, &c.RevokedAt,
		&c.CreatedBy, &c.CreatedAt, &c.UpdatedAt); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(scopes, &c.Scopes); err != nil {
		return nil, fmt.Errorf("credential %s: stored scopes: %w", c.ID, err)
	}
	c.Status = keyward.CredentialStatus(status)
	c.ExpiresAt, c.GraceUntil, c.RevokedAt = utc(c.ExpiresAt), utc(c.GraceUntil), utc(c.RevokedAt)
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	return &c, nil
}
