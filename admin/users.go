package admin

import (
	"context"
	"encoding/json"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// CreateUser creates a user in an account: root, or the account's admins.
// Its meta, which its keys inherit, only root may set (as a key's);
// its secret metadata root and the account's admins (as a key's).
func (s *Tenancy) CreateUser(ctx context.Context, accountID string, c keyward.UserCreate) (*keyward.User, error) {
	id, unlock, err := s.writer(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := requireAccountManager(id, accountID, "create users"); err != nil {
		return nil, err
	}
	if err := validateName("name", c.Name, true); err != nil {
		return nil, err
	}
	if err := validateName("external_id", c.ExternalID, false); err != nil {
		return nil, err
	}
	meta, err := normalizeMeta(c.Meta)
	if err != nil {
		return nil, err
	}
	if err := checkMeta(id, meta); err != nil {
		return nil, err
	}
	secretMeta, err := parseSecretMeta(&c.SecretMeta, false)
	if err != nil {
		return nil, err
	}
	now := s.utc()
	u := &keyward.User{
		ID:         apikey.NewID("usr"),
		AccountID:  accountID,
		Name:       c.Name,
		ExternalID: c.ExternalID,
		Meta:       meta,
		CreatedAt:  now,
		UpdatedAt:  now,
	}
	if u.SecretMeta, err = s.apply(secretMeta, nil, keyward.UserSecretMetaAD(u.ID)); err != nil {
		return nil, err
	}
	u.HasSecretMeta = u.SecretMeta != nil
	details := userUpdateDetails{
		UserUpdate: keyward.UserUpdate{Name: &u.Name, ExternalID: &u.ExternalID},
		SecretMeta: secretMeta.auditValue(),
	}
	if meta != nil {
		details.Meta = (*json.RawMessage)(&meta)
	}
	ch, err := s.audit(ctx, id, "user.create", "user", u.ID, accountID, details)
	if err != nil {
		return nil, err
	}
	if err := s.store.CreateUser(ctx, ch, u); err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "user created", "account_id", accountID, "user_id", u.ID, "by", id.KeyID)
	return u, nil
}

// User returns a user to root, the account's admins, or the user itself.
func (s *Tenancy) User(ctx context.Context, accountID, userID string) (*keyward.User, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	self := id.Role == keyward.RoleUser && id.AccountID == accountID && id.UserID == userID
	if !self {
		if err := requireAccountManager(id, accountID, "read other users"); err != nil {
			return nil, err
		}
	}
	return accountUser(ctx, s.store, accountID, userID)
}

// userReader reads users; the stores of Tenancy and Keys are ones.
type userReader interface {
	User(ctx context.Context, id string) (*keyward.User, error)
}

// accountUser loads a user and checks that it belongs to accountID.
func accountUser(ctx context.Context, st userReader, accountID, userID string) (*keyward.User, error) {
	u, err := st.User(ctx, userID)
	if err != nil {
		return nil, err
	}
	if u.AccountID != accountID {
		return nil, notFound("user", userID)
	}
	return u, nil
}

// Users lists an account's users: root, or the account's admins.
func (s *Tenancy) Users(ctx context.Context, accountID string, p keyward.Page) (*keyward.UserList, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := requireAccountManager(id, accountID, "list users"); err != nil {
		return nil, err
	}
	if _, err := s.store.Account(ctx, accountID); err != nil {
		return nil, err
	}
	items, next, err := s.store.Users(ctx, accountID, p)
	if err != nil {
		return nil, err
	}
	return &keyward.UserList{Items: items, Next: next}, nil
}

// DeleteUser deletes a user and its keys: root, or the account's admins.
func (s *Tenancy) DeleteUser(ctx context.Context, accountID, userID string) error {
	id, unlock, err := s.writer(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if err := requireAccountManager(id, accountID, "delete users"); err != nil {
		return err
	}
	if _, err := accountUser(ctx, s.store, accountID, userID); err != nil {
		return err
	}
	ch, err := s.audit(ctx, id, "user.delete", "user", userID, accountID, nil)
	if err != nil {
		return err
	}
	hashes, err := s.store.DeleteUser(ctx, ch, userID)
	if err != nil {
		return err
	}
	s.keysDeleted(hashes)
	s.log.InfoContext(ctx, "user deleted", "account_id", accountID, "user_id", userID, "keys", len(hashes), "by", id.KeyID)
	return nil
}

// UserByExternalID returns the account's user with that external id: root,
// or the account's admins (a user key looks itself up with WhoAmI, whose
// identity carries its external id).
func (s *Tenancy) UserByExternalID(ctx context.Context, accountID, externalID string) (*keyward.User, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := requireAccountManager(id, accountID, "look up users"); err != nil {
		return nil, err
	}
	if externalID == "" {
		return nil, keyward.Errorf(keyward.EINVALID, "external_id is required: the external id the user was created or updated with")
	}
	if err := validateName("external_id", externalID, false); err != nil {
		return nil, err
	}
	return s.store.UserByExternalID(ctx, accountID, externalID)
}

// UpdateUser renames a user, or sets its external id, meta or secret
// metadata: root, or the account's admins, as for the user's keys (meta
// only root; a user key may change nothing of its user). A new external
// id taken by another user of the account is ECONFLICT, with nothing
// changed. A change of what the user's keys inherit (external id, meta,
// secret metadata) replaces every one of its keys in the verification
// caches, on this instance at once and on the others through the
// invalidation bus.
func (s *Tenancy) UpdateUser(ctx context.Context, accountID, userID string, u keyward.UserUpdate) (*keyward.User, error) {
	id, unlock, err := s.writer(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := requireAccountManager(id, accountID, "update users"); err != nil {
		return nil, err
	}
	if u.Name != nil {
		if err := validateName("name", *u.Name, true); err != nil {
			return nil, err
		}
	}
	if u.ExternalID != nil {
		if err := validateName("external_id", *u.ExternalID, false); err != nil {
			return nil, err
		}
	}
	var meta json.RawMessage
	if u.Meta != nil {
		if meta, err = normalizeMeta(*u.Meta); err != nil {
			return nil, err
		}
		if err := checkMeta(id, []byte(*u.Meta)); err != nil {
			return nil, err
		}
		if string(meta) == "{}" {
			meta = nil
		}
	}
	secretMeta, err := parseSecretMeta(u.SecretMeta, u.ClearSecretMeta)
	if err != nil {
		return nil, err
	}
	sealedMeta, err := s.apply(secretMeta, nil, keyward.UserSecretMetaAD(userID))
	if err != nil {
		return nil, err
	}
	if _, err := accountUser(ctx, s.store, accountID, userID); err != nil {
		return nil, err
	}
	ch, err := s.audit(ctx, id, "user.update", "user", userID, accountID, userUpdateDetails{UserUpdate: u, SecretMeta: secretMeta.auditValue()})
	if err != nil {
		return nil, err
	}
	var inherited bool // a change the user's cached keys must see
	out, keys, err := s.store.UpdateUser(ctx, ch, userID, func(cur *keyward.User) error {
		if cur.AccountID != accountID {
			return notFound("user", userID)
		}
		if u.Name != nil {
			cur.Name = *u.Name
		}
		if u.ExternalID != nil && *u.ExternalID != cur.ExternalID {
			cur.ExternalID = *u.ExternalID
			inherited = true
		}
		if u.Meta != nil {
			cur.Meta = meta
			inherited = true
		}
		if secretMeta.changes() {
			cur.SecretMeta = sealedMeta
			inherited = true
		}
		cur.UpdatedAt = s.utc()
		return nil
	})
	if err != nil {
		return nil, err
	}
	if inherited {
		for _, k := range keys {
			s.keyChanged(k)
		}
	}
	s.log.InfoContext(ctx, "user updated", "account_id", accountID, "user_id", userID, "keys", len(keys), "by", id.KeyID)
	return out, nil
}
