package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/keyward/keyward"
)

// validateUser checks what a store requires of a user it writes: meta that
// is JSON and secret metadata that has the shape of a sealed value.
func validateUser(u *keyward.User) error {
	if err := keyward.ValidateMeta(u.Meta); err != nil {
		return err
	}
	return u.SecretMeta.ValidateRecord("user secret_meta")
}

// externalIDTaken is the conflict of a user whose external id another user
// of its account has.
func externalIDTaken(u *keyward.User) string {
	return fmt.Sprintf("account %s already has a user with external id %q", u.AccountID, u.ExternalID)
}

// UserByExternalID returns the user of the account with that external id.
// ENOTFOUND if none; an empty external id names no user.
func (s *Store) UserByExternalID(ctx context.Context, accountID, externalID string) (*keyward.User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, selectUser+" WHERE account_id = ? AND external_id = ? AND external_id <> ''", accountID, externalID))
	if errors.Is(err, sql.ErrNoRows) {
		err = keyward.Errorf(keyward.ENOTFOUND, "account %s has no user with external id %q", accountID, externalID)
	}
	if err != nil {
		return nil, s.errorf("user by external id: %w", s.dbError(err, Conflicts{}))
	}
	return u, nil
}

// UpdateUser loads the user, applies fn and saves the result in one
// transaction, then reads the user's keys in it: they carry the user's new
// external id, meta and secret metadata (Key.UserExternalID, UserMeta,
// UserSecretMeta) for caches to replace. An error from fn aborts it. fn
// may not change the id, the account or the creation time; ECONFLICT if
// the new external id is taken in the account, EINVALID if the meta is not
// JSON.
func (s *Store) UpdateUser(ctx context.Context, ch keyward.Change, id string, fn func(*keyward.User) error) (*keyward.User, []*keyward.Key, error) {
	var (
		out  *keyward.User
		keys []*keyward.Key
	)
	err := s.write(ctx, ch, func(tx *Tx) error {
		u, err := s.userTx(ctx, tx, id)
		if err != nil {
			return err
		}
		accountID, created := u.AccountID, u.CreatedAt
		if err := fn(u); err != nil {
			return err
		}
		if u.ID != id || u.AccountID != accountID || !u.CreatedAt.Equal(created) {
			return keyward.Errorf(keyward.EINVALID, "the id, account and creation time of a user cannot change")
		}
		if err := validateUser(u); err != nil {
			return err
		}
		args := append([]any{u.Name, u.ExternalID, nullJSON(u.Meta)}, sealedArgs(u.SecretMeta)...)
		_, err = tx.ExecContext(ctx, `UPDATE users SET name = ?, external_id = ?, meta = ?, secret_meta = ?,
			secret_meta_version = ?, updated_at = ? WHERE id = ?`, append(args, FormatTime(u.UpdatedAt), id)...)
		if err != nil {
			return s.dbError(err, Conflicts{Unique: externalIDTaken(u)})
		}
		if out, err = s.userTx(ctx, tx, id); err != nil {
			return err
		}
		keys, err = s.queryKeys(ctx, tx, selectKey+" WHERE k.user_id = ? ORDER BY k.id", id)
		return err
	})
	if err != nil {
		return nil, nil, s.errorf("update user %s: %w", id, err)
	}
	return out, keys, nil
}

// userTx reads a user inside a write transaction, its row locked.
func (s *Store) userTx(ctx context.Context, tx *Tx, id string) (*keyward.User, error) {
	u, err := scanUser(tx.QueryRowContext(ctx, s.locked(tx, selectUser+" WHERE id = ?", ""), id))
	return u, s.rowError(err, "user", id)
}

// fillUser sets the fields of k that mirror its user u (nil for a key with
// none).
func fillUser(k *keyward.Key, u *keyward.User) {
	k.UserExternalID, k.UserMeta, k.UserSecretMeta = "", nil, nil
	if u != nil {
		k.UserExternalID, k.UserMeta, k.UserSecretMeta = u.ExternalID, u.Meta, u.SecretMeta
	}
}
