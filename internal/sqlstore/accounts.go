package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/keyward/keyward"
)

const selectAccount = "SELECT id, name, key_prefix, rate_limits, disabled, created_at, updated_at, secret_meta, secret_meta_version, users_may_mint_keys, admins_may_mint_admin_keys FROM accounts"

// CreateAccount inserts a. ECONFLICT if the id or the name is taken,
// EINVALID if its rate limits are not valid.
func (s *Store) CreateAccount(ctx context.Context, ch keyward.Change, a *keyward.Account) error {
	if a.ID == "" {
		return keyward.Errorf(keyward.EINVALID, "%s: create account: id is required", s.name)
	}
	if err := keyward.ValidateRateLimits(a.RateLimits); err != nil {
		return s.errorf("create account %s: %w", a.ID, err)
	}
	if err := a.SecretMeta.ValidateRecord("account secret_meta"); err != nil {
		return s.errorf("create account %s: %w", a.ID, err)
	}
	err := s.write(ctx, ch, func(tx *Tx) error {
		args := append([]any{a.ID, a.Name, a.KeyPrefix, encodeList(a.RateLimits), a.Disabled, FormatTime(a.CreatedAt), FormatTime(a.UpdatedAt)},
			sealedArgs(a.SecretMeta)...)
		args = append(args, !a.Policy.NoUserMinting, !a.Policy.NoAdminMinting)
		_, err := tx.ExecContext(ctx, `INSERT INTO accounts (id, name, key_prefix, rate_limits, disabled, created_at, updated_at,
			secret_meta, secret_meta_version, users_may_mint_keys, admins_may_mint_admin_keys) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
		return s.dbError(err, Conflicts{
			PK:     fmt.Sprintf("account %s already exists", a.ID),
			Unique: fmt.Sprintf("an account named %q already exists", a.Name),
		})
	})
	if err != nil {
		return s.errorf("create account %s: %w", a.ID, err)
	}
	return nil
}

// Account returns the account with id. ENOTFOUND if none.
func (s *Store) Account(ctx context.Context, id string) (*keyward.Account, error) {
	a, err := s.account(ctx, s.r, id)
	if err != nil {
		return nil, s.errorf("account %s: %w", id, err)
	}
	return a, nil
}

func (s *Store) account(ctx context.Context, q querier, id string) (*keyward.Account, error) {
	a, err := scanAccount(q.QueryRowContext(ctx, s.locked(q, selectAccount+" WHERE id = ?", ""), id))
	return a, s.rowError(err, "account", id)
}

// Accounts lists accounts by id after p.After.
func (s *Store) Accounts(ctx context.Context, p keyward.Page) ([]*keyward.Account, string, error) {
	return listPage(ctx, s, "list accounts", selectAccount+" WHERE 1=1", nil, "id", ascending, p, scanAccount, func(a *keyward.Account) string { return a.ID })
}

// UpdateAccount loads the account, applies fn and saves the result in one
// transaction. An error from fn aborts it and is returned. fn may not
// change the id; ECONFLICT if the new name is taken, EINVALID if the rate
// limits are not valid.
func (s *Store) UpdateAccount(ctx context.Context, ch keyward.Change, id string, fn func(*keyward.Account) error) (*keyward.Account, error) {
	var out *keyward.Account
	err := s.write(ctx, ch, func(tx *Tx) error {
		a, err := s.account(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := fn(a); err != nil {
			return err
		}
		if a.ID != id {
			return keyward.Errorf(keyward.EINVALID, "the id of an account cannot change")
		}
		if err := keyward.ValidateRateLimits(a.RateLimits); err != nil {
			return err
		}
		if err := a.SecretMeta.ValidateRecord("account secret_meta"); err != nil {
			return err
		}
		args := append([]any{a.Name, a.KeyPrefix, encodeList(a.RateLimits), a.Disabled, FormatTime(a.CreatedAt), FormatTime(a.UpdatedAt)},
			sealedArgs(a.SecretMeta)...)
		args = append(args, !a.Policy.NoUserMinting, !a.Policy.NoAdminMinting, id)
		_, err = tx.ExecContext(ctx, `UPDATE accounts SET name = ?, key_prefix = ?, rate_limits = ?, disabled = ?,
			created_at = ?, updated_at = ?, secret_meta = ?, secret_meta_version = ?,
			users_may_mint_keys = ?, admins_may_mint_admin_keys = ? WHERE id = ?`, args...)
		if err != nil {
			return s.dbError(err, Conflicts{Unique: fmt.Sprintf("an account named %q already exists", a.Name)})
		}
		out, err = s.account(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, s.errorf("update account %s: %w", id, err)
	}
	return out, nil
}

// DeleteAccount deletes the account with its users and keys (by cascade)
// and returns the hashes of the deleted keys, read in the same transaction.
func (s *Store) DeleteAccount(ctx context.Context, ch keyward.Change, id string) ([]keyward.KeyHash, error) {
	var hashes []keyward.KeyHash
	err := s.write(ctx, ch, func(tx *Tx) error {
		if _, err := s.account(ctx, tx, id); err != nil {
			return err
		}
		var err error
		if hashes, err = s.keyHashes(ctx, tx, "account_id", id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "DELETE FROM accounts WHERE id = ?", id)
		return s.dbError(err, Conflicts{})
	})
	if err != nil {
		return nil, s.errorf("delete account %s: %w", id, err)
	}
	return hashes, nil
}

func scanAccount(row scanner) (*keyward.Account, error) {
	var a keyward.Account
	var limits, created, updated string
	var secret []byte
	var secretVersion int
	var usersMint, adminsMint bool
	if err := row.Scan(&a.ID, &a.Name, &a.KeyPrefix, &limits, &a.Disabled, &created, &updated, &secret, &secretVersion, &usersMint, &adminsMint); err != nil {
		return nil, err
	}
	a.Policy = keyward.AccountPolicy{NoUserMinting: !usersMint, NoAdminMinting: !adminsMint}
	a.SecretMeta = storedSealed(secret, secretVersion)
	a.HasSecretMeta = a.SecretMeta != nil
	var err error
	if a.RateLimits, err = decodeList[keyward.RateLimit](limits); err != nil {
		return nil, fmt.Errorf("account %s: stored rate_limits: %w", a.ID, err)
	}
	if a.CreatedAt, err = parseTime(created); err != nil {
		return nil, err
	}
	if a.UpdatedAt, err = parseTime(updated); err != nil {
		return nil, err
	}
	return &a, nil
}

const selectUser = "SELECT id, account_id, name, external_id, created_at, meta, secret_meta, secret_meta_version, updated_at FROM users"

// CreateUser inserts u. ENOTFOUND if its account does not exist, ECONFLICT
// if the id or the external id (within the account) is taken, EINVALID if
// its meta is not JSON. A zero UpdatedAt is stored as CreatedAt.
func (s *Store) CreateUser(ctx context.Context, ch keyward.Change, u *keyward.User) error {
	if u.ID == "" {
		return keyward.Errorf(keyward.EINVALID, "%s: create user: id is required", s.name)
	}
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = u.CreatedAt
	}
	if err := validateUser(u); err != nil {
		return s.errorf("create user %s: %w", u.ID, err)
	}
	err := s.write(ctx, ch, func(tx *Tx) error {
		if _, err := s.account(ctx, tx, u.AccountID); err != nil {
			return err
		}
		// Checked first: the (id, account_id) index could otherwise
		// report a taken id as a taken external id.
		var taken bool
		if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM users WHERE id = ?)", u.ID).Scan(&taken); err != nil {
			return s.dbError(err, Conflicts{})
		}
		if taken {
			return keyward.Errorf(keyward.ECONFLICT, "user %s already exists", u.ID)
		}
		args := append([]any{u.ID, u.AccountID, u.Name, u.ExternalID, FormatTime(u.CreatedAt), nullJSON(u.Meta)},
			sealedArgs(u.SecretMeta)...)
		_, err := tx.ExecContext(ctx, `INSERT INTO users (id, account_id, name, external_id, created_at, meta, secret_meta, secret_meta_version, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, append(args, FormatTime(u.UpdatedAt))...)
		return s.dbError(err, Conflicts{
			PK:     fmt.Sprintf("user %s already exists", u.ID),
			Unique: externalIDTaken(u),
			FK:     fmt.Sprintf("account %s not found", u.AccountID),
		})
	})
	if err != nil {
		return s.errorf("create user %s: %w", u.ID, err)
	}
	return nil
}

// User returns the user with id. ENOTFOUND if none.
func (s *Store) User(ctx context.Context, id string) (*keyward.User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, selectUser+" WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		err = keyward.Errorf(keyward.ENOTFOUND, "user %s not found", id)
	}
	if err != nil {
		return nil, s.errorf("user %s: %w", id, s.dbError(err, Conflicts{}))
	}
	return u, nil
}

// Users lists the users of an account by id after p.After. An unknown
// account has no users.
func (s *Store) Users(ctx context.Context, accountID string, p keyward.Page) ([]*keyward.User, string, error) {
	return listPage(ctx, s, "list users of "+accountID, selectUser+" WHERE account_id = ?", []any{accountID}, "id", ascending, p, scanUser, func(u *keyward.User) string { return u.ID })
}

// DeleteUser deletes the user with its keys (by cascade) and returns the
// hashes of the deleted keys, read in the same transaction.
func (s *Store) DeleteUser(ctx context.Context, ch keyward.Change, id string) ([]keyward.KeyHash, error) {
	var hashes []keyward.KeyHash
	err := s.write(ctx, ch, func(tx *Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, s.locked(tx, "SELECT 1 FROM users WHERE id = ?", ""), id).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return keyward.Errorf(keyward.ENOTFOUND, "user %s not found", id)
		}
		if err != nil {
			return s.dbError(err, Conflicts{})
		}
		if hashes, err = s.keyHashes(ctx, tx, "user_id", id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "DELETE FROM users WHERE id = ?", id)
		return s.dbError(err, Conflicts{})
	})
	if err != nil {
		return nil, s.errorf("delete user %s: %w", id, err)
	}
	return hashes, nil
}

func scanUser(row scanner) (*keyward.User, error) {
	var (
		u                keyward.User
		created, updated string
		meta             sql.NullString
		secret           []byte
		secretVersion    int
	)
	if err := row.Scan(&u.ID, &u.AccountID, &u.Name, &u.ExternalID, &created, &meta, &secret, &secretVersion, &updated); err != nil {
		return nil, err
	}
	if meta.Valid {
		u.Meta = json.RawMessage(meta.String)
	}
	u.SecretMeta = storedSealed(secret, secretVersion)
	u.HasSecretMeta = u.SecretMeta != nil
	var err error
	if u.CreatedAt, err = parseTime(created); err != nil {
		return nil, err
	}
	if u.UpdatedAt, err = parseTime(updated); err != nil {
		return nil, err
	}
	return &u, nil
}

// keyHashes returns the hashes of the keys whose column col equals v.
func (s *Store) keyHashes(ctx context.Context, tx *Tx, col, v string) ([]keyward.KeyHash, error) {
	rows, err := tx.QueryContext(ctx, "SELECT key_hash FROM keys WHERE "+col+" = ?", v)
	if err != nil {
		return nil, s.dbError(err, Conflicts{})
	}
	defer rows.Close()
	hashes := []keyward.KeyHash{}
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		h, err := toHash(b)
		if err != nil {
			return nil, err
		}
		hashes = append(hashes, h)
	}
	return hashes, s.dbError(rows.Err(), Conflicts{})
}
