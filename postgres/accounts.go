package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/keyward/keyward"
)

const accountCols = "id, name, key_prefix, rate_limits, disabled, created_at, updated_at, secret_meta, secret_meta_version, users_may_mint_keys, admins_may_mint_admin_keys"

// CreateAccount inserts a. ECONFLICT if the id or the name is taken,
// EINVALID if its rate limits are not valid.
func (s *Store) CreateAccount(ctx context.Context, ch keyward.Change, a *keyward.Account) error {
	if a.ID == "" {
		return keyward.Errorf(keyward.EINVALID, "postgres: create account: id is required")
	}
	if err := keyward.ValidateRateLimits(a.RateLimits); err != nil {
		return fmt.Errorf("postgres: create account %s: %w", a.ID, err)
	}
	if err := a.SecretMeta.ValidateRecord("account secret_meta"); err != nil {
		return fmt.Errorf("postgres: create account %s: %w", a.ID, err)
	}
	err := s.write(ctx, ch, func(tx pgx.Tx) error {
		args := append([]any{a.ID, a.Name, a.KeyPrefix, encodeRateLimits(a.RateLimits), a.Disabled, a.CreatedAt, a.UpdatedAt},
			sealedArgs(a.SecretMeta)...)
		args = append(args, !a.Policy.NoUserMinting, !a.Policy.NoAdminMinting)
		_, err := tx.Exec(ctx, `INSERT INTO accounts (id, name, key_prefix, rate_limits, disabled, created_at, updated_at,
			secret_meta, secret_meta_version, users_may_mint_keys, admins_may_mint_admin_keys)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, args...)
		return s.dbError(err, conflicts{
			"accounts_pkey":     fmt.Sprintf("account %s already exists", a.ID),
			"accounts_name_key": fmt.Sprintf("an account named %q already exists", a.Name),
		})
	})
	if err != nil {
		return fmt.Errorf("postgres: create account %s: %w", a.ID, err)
	}
	return nil
}

// Account returns the account with id. ENOTFOUND if none.
func (s *Store) Account(ctx context.Context, id string) (*keyward.Account, error) {
	a, err := s.account(ctx, s.pool, id, "")
	if err != nil {
		return nil, fmt.Errorf("postgres: account %s: %w", id, err)
	}
	return a, nil
}

// querier is a *pgxpool.Pool or a pgx.Tx.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// account reads an account; lock is "" or a locking clause ("FOR UPDATE").
func (s *Store) account(ctx context.Context, q querier, id, lock string) (*keyward.Account, error) {
	a, err := scanAccount(q.QueryRow(ctx, "SELECT "+accountCols+" FROM accounts WHERE id = $1 "+lock, id))
	return a, s.rowError(err, "account", id)
}

// Accounts lists accounts by id after p.After.
func (s *Store) Accounts(ctx context.Context, p keyward.Page) ([]*keyward.Account, string, error) {
	query, args := pageQuery("SELECT "+accountCols+" FROM accounts WHERE true", "id", ascending, nil, p)
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: list accounts: %w", s.dbError(err, nil))
	}
	accounts, err := collect(rows, scanAccount)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: list accounts: %w", s.dbError(err, nil))
	}
	accounts, next := page(accounts, p, func(a *keyward.Account) string { return a.ID })
	return accounts, next, nil
}

// UpdateAccount locks the account, applies fn and saves the result in one
// transaction. An error from fn aborts it and is returned. fn may not
// change the id; ECONFLICT if the new name is taken, EINVALID if the rate
// limits are not valid.
func (s *Store) UpdateAccount(ctx context.Context, ch keyward.Change, id string, fn func(*keyward.Account) error) (*keyward.Account, error) {
	var out *keyward.Account
	err := s.write(ctx, ch, func(tx pgx.Tx) error {
		a, err := s.account(ctx, tx, id, "FOR UPDATE")
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
		args := append([]any{a.Name, a.KeyPrefix, encodeRateLimits(a.RateLimits), a.Disabled, a.CreatedAt, a.UpdatedAt},
			sealedArgs(a.SecretMeta)...)
		args = append(args, !a.Policy.NoUserMinting, !a.Policy.NoAdminMinting, id)
		out, err = scanAccount(tx.QueryRow(ctx, `UPDATE accounts
			SET name = $1, key_prefix = $2, rate_limits = $3, disabled = $4, created_at = $5, updated_at = $6,
			secret_meta = $7, secret_meta_version = $8, users_may_mint_keys = $9, admins_may_mint_admin_keys = $10
			WHERE id = $11 RETURNING `+accountCols, args...))
		return s.dbError(err, conflicts{"accounts_name_key": fmt.Sprintf("an account named %q already exists", a.Name)})
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: update account %s: %w", id, err)
	}
	return out, nil
}

// DeleteAccount deletes the account with its users and keys and returns
// the hashes of the deleted keys. The account row is locked first, so a
// key being created in it either commits before (and is returned) or fails
// after (ENOTFOUND).
func (s *Store) DeleteAccount(ctx context.Context, ch keyward.Change, id string) ([]keyward.KeyHash, error) {
	var hashes []keyward.KeyHash
	err := s.write(ctx, ch, func(tx pgx.Tx) error {
		if _, err := s.account(ctx, tx, id, "FOR UPDATE"); err != nil {
			return err
		}
		var err error
		if hashes, err = s.deleteKeys(ctx, tx, "account_id", id); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "DELETE FROM accounts WHERE id = $1", id)
		return s.dbError(err, nil)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: delete account %s: %w", id, err)
	}
	return hashes, nil
}

func scanAccount(row pgx.Row) (*keyward.Account, error) {
	var (
		a             keyward.Account
		limits        []byte
		secret        []byte
		secretVersion int
		usersMint     bool
		adminsMint    bool
	)
	if err := row.Scan(&a.ID, &a.Name, &a.KeyPrefix, &limits, &a.Disabled, &a.CreatedAt, &a.UpdatedAt, &secret, &secretVersion, &usersMint, &adminsMint); err != nil {
		return nil, err
	}
	a.Policy = keyward.AccountPolicy{NoUserMinting: !usersMint, NoAdminMinting: !adminsMint}
	a.SecretMeta = storedSealed(secret, secretVersion)
	a.HasSecretMeta = a.SecretMeta != nil
	a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
	var err error
	if a.RateLimits, err = decodeRateLimits(limits); err != nil {
		return nil, fmt.Errorf("account %s: stored rate_limits: %w", a.ID, err)
	}
	return &a, nil
}

const userCols = "id, account_id, name, external_id, created_at"

// CreateUser inserts u. ENOTFOUND if its account does not exist, ECONFLICT
// if the id or the external id (within the account) is taken.
func (s *Store) CreateUser(ctx context.Context, ch keyward.Change, u *keyward.User) error {
	if u.ID == "" {
		return keyward.Errorf(keyward.EINVALID, "postgres: create user: id is required")
	}
	err := s.write(ctx, ch, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO users (id, account_id, name, external_id, created_at)
			VALUES ($1, $2, $3, $4, $5)`,
			u.ID, u.AccountID, u.Name, u.ExternalID, u.CreatedAt)
		taken := fmt.Sprintf("user %s already exists", u.ID)
		return s.dbError(err, conflicts{
			"users_pkey":            taken,
			"users_id_account_key":  taken,
			"users_external_id_key": fmt.Sprintf("account %s already has a user with external id %q", u.AccountID, u.ExternalID),
			"users_account_fkey":    fmt.Sprintf("account %s not found", u.AccountID),
		})
	})
	if err != nil {
		return fmt.Errorf("postgres: create user %s: %w", u.ID, err)
	}
	return nil
}

// User returns the user with id. ENOTFOUND if none.
func (s *Store) User(ctx context.Context, id string) (*keyward.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, "SELECT "+userCols+" FROM users WHERE id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		err = keyward.Errorf(keyward.ENOTFOUND, "user %s not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: user %s: %w", id, s.dbError(err, nil))
	}
	return u, nil
}

// Users lists the users of an account by id after p.After. An unknown
// account has no users.
func (s *Store) Users(ctx context.Context, accountID string, p keyward.Page) ([]*keyward.User, string, error) {
	query, args := pageQuery("SELECT "+userCols+" FROM users WHERE account_id = $1", "id", ascending, []any{accountID}, p)
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: list users of %s: %w", accountID, s.dbError(err, nil))
	}
	users, err := collect(rows, scanUser)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: list users of %s: %w", accountID, s.dbError(err, nil))
	}
	users, next := page(users, p, func(u *keyward.User) string { return u.ID })
	return users, next, nil
}

// DeleteUser deletes the user with its keys and returns the hashes of the
// deleted keys. The user row is locked first (see DeleteAccount).
func (s *Store) DeleteUser(ctx context.Context, ch keyward.Change, id string) ([]keyward.KeyHash, error) {
	var hashes []keyward.KeyHash
	err := s.write(ctx, ch, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, "SELECT 1 FROM users WHERE id = $1 FOR UPDATE", id).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return keyward.Errorf(keyward.ENOTFOUND, "user %s not found", id)
		}
		if err != nil {
			return s.dbError(err, nil)
		}
		if hashes, err = s.deleteKeys(ctx, tx, "user_id", id); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "DELETE FROM users WHERE id = $1", id)
		return s.dbError(err, nil)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: delete user %s: %w", id, err)
	}
	return hashes, nil
}

func scanUser(row pgx.Row) (*keyward.User, error) {
	var u keyward.User
	if err := row.Scan(&u.ID, &u.AccountID, &u.Name, &u.ExternalID, &u.CreatedAt); err != nil {
		return nil, err
	}
	u.CreatedAt = u.CreatedAt.UTC()
	return &u, nil
}

// deleteKeys deletes the keys whose column col (a constant) equals v and
// returns their hashes.
func (s *Store) deleteKeys(ctx context.Context, tx pgx.Tx, col, v string) ([]keyward.KeyHash, error) {
	rows, err := tx.Query(ctx, "DELETE FROM keys WHERE "+col+" = $1 RETURNING key_hash", v)
	if err != nil {
		return nil, s.dbError(err, nil)
	}
	hashes, err := collect(rows, func(row pgx.Row) (keyward.KeyHash, error) {
		var b []byte
		if err := row.Scan(&b); err != nil {
			return keyward.KeyHash{}, err
		}
		return toHash(b)
	})
	return hashes, s.dbError(err, nil)
}
