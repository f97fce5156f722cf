package admin

import (
	"context"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// CreateUser creates a user in an account: root, or the account's admins.
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
	u := &keyward.User{
		ID:         apikey.NewID("usr"),
		AccountID:  accountID,
		Name:       c.Name,
		ExternalID: c.ExternalID,
		CreatedAt:  s.utc(),
	}
	ch, err := s.audit(ctx, id, "user.create", "user", u.ID, accountID, map[string]any{"name": u.Name, "external_id": u.ExternalID})
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
