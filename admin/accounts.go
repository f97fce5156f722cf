package admin

import (
	"context"
	"slices"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// Tenancy manages accounts (this file) and their users (users.go): the
// owners of keys. Deleting or disabling one changes what verification
// caches hold, so it shares the write lock of Keys.
type Tenancy struct {
	recorder
	*writes  // shared with Keys and Abuse
	store    tenancyStore
	prefixes apikey.Prefixes // an account's key_prefix may not overlap them
}

var (
	_ keyward.AccountService = (*Tenancy)(nil)
	_ keyward.UserService    = (*Tenancy)(nil)
)

// tenancyStore is what Tenancy reads and writes.
type tenancyStore interface {
	CreateAccount(ctx context.Context, ch keyward.Change, a *keyward.Account) error
	Account(ctx context.Context, id string) (*keyward.Account, error)
	Accounts(ctx context.Context, p keyward.Page) ([]*keyward.Account, string, error)
	UpdateAccount(ctx context.Context, ch keyward.Change, id string, fn func(*keyward.Account) error) (*keyward.Account, error)
	DeleteAccount(ctx context.Context, ch keyward.Change, id string) ([]keyward.KeyHash, error)

	CreateUser(ctx context.Context, ch keyward.Change, u *keyward.User) error
	User(ctx context.Context, id string) (*keyward.User, error)
	Users(ctx context.Context, accountID string, p keyward.Page) ([]*keyward.User, string, error)
	UserByExternalID(ctx context.Context, accountID, externalID string) (*keyward.User, error)
	UpdateUser(ctx context.Context, ch keyward.Change, id string, fn func(*keyward.User) error) (*keyward.User, []*keyward.Key, error)
	DeleteUser(ctx context.Context, ch keyward.Change, id string) ([]keyward.KeyHash, error)

	// Credentials tells whether an account still has live external
	// credentials, which keep it from being deleted.
	Credentials(ctx context.Context, f keyward.CredentialFilter, p keyward.Page) ([]*keyward.ManagedCredential, string, error)
}

// CreateAccount creates an account. Root only.
func (s *Tenancy) CreateAccount(ctx context.Context, c keyward.AccountCreate) (*keyward.Account, error) {
	id, unlock, err := s.writer(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := requireRoot(id, "create accounts"); err != nil {
		return nil, err
	}
	if err := validateName("name", c.Name, true); err != nil {
		return nil, err
	}
	if err := validateAccountPrefix(s.prefixes, c.KeyPrefix); err != nil {
		return nil, err
	}
	if err := keyward.ValidateRateLimits(c.RateLimits); err != nil {
		return nil, err
	}
	secretMeta, err := parseSecretMeta(&c.SecretMeta, false)
	if err != nil {
		return nil, err
	}
	now := s.utc()
	a := &keyward.Account{
		ID:         apikey.NewID("acc"),
		Name:       c.Name,
		KeyPrefix:  c.KeyPrefix,
		RateLimits: slices.Clone(c.RateLimits),
		Policy:     c.Policy.Apply(keyward.AccountPolicy{}),
		CreatedAt:  now,
		UpdatedAt:  now,
	}
	if a.SecretMeta, err = s.apply(secretMeta, nil, keyward.AccountSecretMetaAD(a.ID)); err != nil {
		return nil, err
	}
	a.HasSecretMeta = a.SecretMeta != nil
	details := map[string]any{"name": a.Name, "key_prefix": a.KeyPrefix, "rate_limits": a.RateLimits, "policy": a.Policy}
	if a.HasSecretMeta {
		details["secret_meta"] = secretMeta.auditValue()
	}
	ch, err := s.audit(ctx, id, "account.create", "account", a.ID, a.ID, details)
	if err != nil {
		return nil, err
	}
	if err := s.store.CreateAccount(ctx, ch, a); err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "account created", "account_id", a.ID, "by", id.KeyID)
	return a, nil
}

// Account returns an account to root or to its admins.
func (s *Tenancy) Account(ctx context.Context, accountID string) (*keyward.Account, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := requireAccountManager(id, accountID, "read accounts"); err != nil {
		return nil, err
	}
	return s.store.Account(ctx, accountID)
}

// Accounts lists accounts. Root only.
func (s *Tenancy) Accounts(ctx context.Context, p keyward.Page) (*keyward.AccountList, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := requireRoot(id, "list accounts"); err != nil {
		return nil, err
	}
	items, next, err := s.store.Accounts(ctx, p)
	if err != nil {
		return nil, err
	}
	return &keyward.AccountList{Items: items, Next: next}, nil
}

// UpdateAccount renames, re-prefixes, disables or enables an account, or
// sets its default rate limits or its policy (keyward.AccountPolicy, which
// applies to the next key created). Root only. Disabling an account makes all
// its keys answer DISABLED at once; new default limits apply at once too.
func (s *Tenancy) UpdateAccount(ctx context.Context, accountID string, u keyward.AccountUpdate) (*keyward.Account, error) {
	id, unlock, err := s.writer(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := requireRoot(id, "update accounts"); err != nil {
		return nil, err
	}
	if u.Name != nil {
		if err := validateName("name", *u.Name, true); err != nil {
			return nil, err
		}
	}
	if u.KeyPrefix != nil {
		if err := validateAccountPrefix(s.prefixes, *u.KeyPrefix); err != nil {
			return nil, err
		}
	}
	if u.RateLimits != nil {
		if err := keyward.ValidateRateLimits(*u.RateLimits); err != nil {
			return nil, err
		}
	}
	secretMeta, err := parseSecretMeta(u.SecretMeta, u.ClearSecretMeta)
	if err != nil {
		return nil, err
	}
	sealedMeta, err := s.apply(secretMeta, nil, keyward.AccountSecretMetaAD(accountID))
	if err != nil {
		return nil, err
	}
	ch, err := s.audit(ctx, id, "account.update", "account", accountID, accountID, accountUpdateDetails{AccountUpdate: u, SecretMeta: secretMeta.auditValue()})
	if err != nil {
		return nil, err
	}
	var changed bool // a change cached keys must see
	a, err := s.store.UpdateAccount(ctx, ch, accountID, func(a *keyward.Account) error {
		if u.Name != nil {
			a.Name = *u.Name
		}
		if u.KeyPrefix != nil {
			a.KeyPrefix = *u.KeyPrefix
		}
		if u.Disabled != nil {
			changed = changed || a.Disabled != *u.Disabled
			a.Disabled = *u.Disabled
		}
		if u.RateLimits != nil {
			a.RateLimits = nilIfEmpty(slices.Clone(*u.RateLimits))
			changed = true
		}
		a.Policy = u.Policy.Apply(a.Policy)
		if secretMeta.changes() {
			// Cached keys carry their account's secret metadata.
			a.SecretMeta = sealedMeta
			changed = true
		}
		a.UpdatedAt = s.utc()
		return nil
	})
	if err != nil {
		return nil, err
	}
	if changed {
		s.accountChanged(a.ID)
	}
	s.log.InfoContext(ctx, "account updated", "account_id", a.ID, "disabled", a.Disabled, "by", id.KeyID)
	return a, nil
}

// DeleteAccount deletes an account with its users and keys. Root only.
func (s *Tenancy) DeleteAccount(ctx context.Context, accountID string) error {
	id, unlock, err := s.writer(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if err := requireRoot(id, "delete accounts"); err != nil {
		return err
	}
	if err := s.noLiveCredentials(ctx, accountID); err != nil {
		return err
	}
	ch, err := s.audit(ctx, id, "account.delete", "account", accountID, accountID, nil)
	if err != nil {
		return err
	}
	hashes, err := s.store.DeleteAccount(ctx, ch, accountID)
	if err != nil {
		return err
	}
	s.keysDeleted(hashes)
	s.accountChanged(accountID)
	s.log.InfoContext(ctx, "account deleted", "account_id", accountID, "keys", len(hashes), "by", id.KeyID)
	return nil
}

// noLiveCredentials returns ECONFLICT if the account has credentials that
// still work at their provider: deleting the account would drop their
// records and leave the tokens working, with no place left to revoke them.
func (s *Tenancy) noLiveCredentials(ctx context.Context, accountID string) error {
	for _, st := range []keyward.CredentialStatus{keyward.CredentialActive, keyward.CredentialRotated, keyward.CredentialOrphaned} {
		live, _, err := s.store.Credentials(ctx, keyward.CredentialFilter{AccountID: accountID, Status: st}, keyward.Page{Limit: 1})
		if err != nil {
			return err
		}
		if len(live) > 0 {
			return keyward.Errorf(keyward.ECONFLICT, "account %s has %s external credentials (e.g. %s): revoke them first (keyward credentials list --account %s)",
				accountID, st, live[0].ID, accountID)
		}
	}
	return nil
}
