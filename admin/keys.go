package admin

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/credits"
	"github.com/keyward/keyward/permission"
	"github.com/keyward/keyward/verify"
)

// Keys manages keys: keys and their tree (keytree.go), rotation policies
// and the lifecycle jobs' key changes (lifecycle.go), secret metadata
// (secretmeta.go), rate limits and credits (limits.go), imported keys
// (imports.go) and verification for trusted callers. Tenancy manages the
// accounts and users that own them.
type Keys struct {
	recorder
	*writes  // shared with Tenancy and Abuse
	store    keyStore
	hasher   *apikey.Hasher
	verifier keyEngine // nil: VerifyKey is not served
	credits  keyward.CreditLedger
	prefixes apikey.Prefixes
}

var (
	_ keyward.KeyService    = (*Keys)(nil)
	_ keyward.CreditService = (*Keys)(nil)
)

// keyStore is what Keys reads and writes.
type keyStore interface {
	// Accounts and users are read to check and resolve the owners of
	// keys (Tenancy changes them).
	Account(ctx context.Context, id string) (*keyward.Account, error)
	Accounts(ctx context.Context, p keyward.Page) ([]*keyward.Account, string, error)
	User(ctx context.Context, id string) (*keyward.User, error)
	Users(ctx context.Context, accountID string, p keyward.Page) ([]*keyward.User, string, error)
	// Roles are read to attach them to keys (Roles changes them).
	Role(ctx context.Context, accountID, name string) (*keyward.NamedRole, error)

	CreateKey(ctx context.Context, ch keyward.Change, k *keyward.Key) error
	BootstrapRootKey(ctx context.Context, ch keyward.Change, k *keyward.Key) error
	Key(ctx context.Context, id string) (*keyward.Key, error)
	Keys(ctx context.Context, f keyward.KeyFilter, p keyward.Page) ([]*keyward.Key, string, error)
	UpdateKey(ctx context.Context, ch keyward.Change, id string, fn func(*keyward.Key) error) (*keyward.Key, error)
	UpdateKeyTree(ctx context.Context, ch keyward.Change, id string, fn func(*keyward.Key) (*keyward.AuditEntry, []*keyward.Event, error)) ([]*keyward.Key, error)
	RotateKey(ctx context.Context, ch keyward.Change, id string, fn func(old *keyward.Key) (next *keyward.Key, err error)) (old, next *keyward.Key, err error)
	DeleteKey(ctx context.Context, ch keyward.Change, id string) (*keyward.Key, error)

	ImportKeys(ctx context.Context, ch keyward.Change, imports []keyward.KeyImport) error
	KeyByDigest(ctx context.Context, d keyward.KeyDigest) (*keyward.Key, error)
	KeyImportCounts(ctx context.Context) (keyward.KeyImportCounts, error)

	SetRotationPolicy(ctx context.Context, ch keyward.Change, p *keyward.RotationPolicy) error
	RotationPolicy(ctx context.Context, s keyward.RotationScope) (*keyward.RotationPolicy, error)
	DeleteRotationPolicy(ctx context.Context, ch keyward.Change, s keyward.RotationScope) (*keyward.RotationPolicy, error)
	AddKeyNotice(ctx context.Context, ch keyward.Change, n *keyward.KeyNotice) error

	// AppendAudit records a credit top-up, which a ledger may count
	// outside the store.
	AppendAudit(ctx context.Context, e *keyward.AuditEntry) error

	meterStore
}

// keyEngine is the local verification engine (verify.Engine): it answers
// VerifyKey and counts imported keys.
type keyEngine interface {
	Verify(ctx context.Context, req verify.Request) verify.Result
	ReloadImports(ctx context.Context) error
}

// MaxGrace bounds the grace window of a rotation.
const MaxGrace = 30 * 24 * time.Hour

// PermissionVerify lets a non-root key call VerifyKey.
const PermissionVerify = "keys:verify"

// CreateKey issues a key and returns it with its secret, shown this once.
// Root may issue any key; an account admin keys of its own account below
// root; a user keys for itself. No key may hold a permission, role or
// lifetime beyond the caller's.
func (s *Keys) CreateKey(ctx context.Context, c keyward.KeyCreate) (*keyward.CreatedKey, error) {
	id, unlock, err := s.writer(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if c.Role == "" && c.UserID != "" {
		c.Role = keyward.RoleUser
	}
	if err := s.checkCreate(id, &c); err != nil {
		return nil, err
	}
	perms, err := normalizePermissions(c.Permissions)
	if err != nil {
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
	if err := checkSecretMetaWriter(id, secretMeta); err != nil {
		return nil, err
	}
	now := s.utc()
	if c.ExpiresAt, err = futureExpiry(c.ExpiresAt, now); err != nil {
		return nil, err
	}
	if err := checkGrant(id, c.Role, perms, c.ExpiresAt); err != nil {
		return nil, err
	}
	roles, err := keyRoles(ctx, s.store, id, c.AccountID, c.Roles)
	if err != nil {
		return nil, err
	}
	ipAllow, err := s.checkIPAllow(ctx, id, c.IPAllow)
	if err != nil {
		return nil, err
	}
	limits, credits, meter, err := s.metering(ctx, id, c.RateLimits, c.Credits, now)
	if err != nil {
		return nil, err
	}
	var account keyward.Account
	if c.Role != keyward.RoleRoot {
		a, err := s.store.Account(ctx, c.AccountID)
		if err != nil {
			return nil, err
		}
		account = *a
		if err := checkMintPolicy(id, c.Role, account.Policy); err != nil {
			return nil, err
		}
	}
	if c.Role == keyward.RoleUser {
		if _, err := accountUser(ctx, s.store, c.AccountID, c.UserID); err != nil {
			return nil, err
		}
	}
	env := keyward.EnvironmentOf(c.Environment)
	prefix, err := s.prefixes.Prefix(c.Role, env, account.KeyPrefix)
	if err != nil {
		return nil, err
	}
	k := &keyward.Key{
		ID:          apikey.NewID("key"),
		Prefix:      prefix,
		Environment: env,
		Name:        c.Name,
		Role:        c.Role,
		AccountID:   c.AccountID,
		UserID:      c.UserID,
		Permissions: perms,
		Roles:       roles,
		Meta:        meta,
		ExpiresAt:   c.ExpiresAt,
		IPAllow:     ipAllow,
		RateLimits:  limits,
		MeterID:     meter,
		Credits:     credits,
		CreatedAt:   now,
		UpdatedAt:   now,
		CreatedBy:   id.KeyID,

		AccountDisabled:   account.Disabled,
		AccountRateLimits: account.RateLimits,
	}
	if k.SecretMeta, err = s.apply(secretMeta, nil, keyward.KeySecretMetaAD(k.ID)); err != nil {
		return nil, err
	}
	k.HasSecretMeta = k.SecretMeta != nil
	details := map[string]any{"role": k.Role, "environment": k.Environment, "name": k.Name, "user_id": k.UserID, "permissions": k.Permissions, "roles": k.Roles, "expires_at": k.ExpiresAt, "ip_allow": k.IPAllow, "rate_limits": k.RateLimits, "credits": k.Credits}
	if k.HasSecretMeta {
		details["secret_meta"] = secretMeta.auditValue()
	}
	ch, err := s.audit(ctx, id, "key.create", "key", k.ID, k.AccountID, details)
	if err != nil {
		return nil, err
	}
	created, err := s.issue(ctx, ch, k, s.store.CreateKey)
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "key created", "key_id", k.ID, "role", k.Role, "account_id", k.AccountID, "by", id.KeyID)
	return created, nil
}

// metering validates the rate limits and credits of a new key and applies
// the metering policy (see limits.go): only root sets them, and a key made by
// anyone else inherits its maker's limits (and a user key's meter).
func (s *Keys) metering(ctx context.Context, id *keyward.Identity, limits []keyward.RateLimit, credits *keyward.Credits, now time.Time) ([]keyward.RateLimit, *keyward.Credits, string, error) {
	if err := keyward.ValidateRateLimits(limits); err != nil {
		return nil, nil, "", err
	}
	if credits != nil {
		if err := credits.Validate(); err != nil {
			return nil, nil, "", err
		}
		c := *credits
		c.RefilledAt, c.Version = now, 0
		credits = &c
	}
	if err := checkMetering(id, limits, credits); err != nil {
		return nil, nil, "", err
	}
	if isRoot(id) {
		return limits, credits, "", nil
	}
	if id.PortalSession != "" {
		// A portal session has no key to inherit from: the shared limits
		// of its user and account bind the keys it creates.
		return nil, credits, "", nil
	}
	inherited, meter, err := s.inherited(ctx, id)
	return inherited, credits, meter, err
}

// checkCreate validates the shape of c and the caller's right to create a
// key of that role in that account for that user.
func (s *Keys) checkCreate(id *keyward.Identity, c *keyward.KeyCreate) error {
	if err := validateName("name", c.Name, false); err != nil {
		return err
	}
	if c.Environment != "" {
		if err := keyward.ValidateEnvironment("environment", c.Environment); err != nil {
			return err
		}
	}
	if err := keyward.ValidateOwner(c.Role, c.AccountID, c.UserID); err != nil {
		return err
	}
	switch id.Role {
	case keyward.RoleRoot:
		return nil
	case keyward.RoleAccountAdmin:
		if c.AccountID != id.AccountID {
			return keyward.Errorf(keyward.EFORBIDDEN, "an account_admin key may create keys only in its own account")
		}
	case keyward.RoleUser:
		if c.Role != keyward.RoleUser || c.AccountID != id.AccountID || c.UserID != id.UserID {
			return keyward.Errorf(keyward.EFORBIDDEN, "a user key may create keys only for its own user")
		}
	}
	return nil
}

// mint generates the secret of k and fills its hash, pepper version and
// start. The secret is returned to be shown once; only the hash is stored.
func (s *Keys) mint(k *keyward.Key) (*keyward.CreatedKey, error) {
	secret, err := apikey.Generate(k.Prefix)
	if err != nil {
		return nil, err
	}
	raw := secret.Reveal()
	k.Hash = s.hasher.Hash(raw)
	k.PepperVersion = s.hasher.Current()
	k.Start = apikey.Start(raw)
	if k.Permissions == nil {
		k.Permissions = []string{}
	}
	return &keyward.CreatedKey{Key: *k, Secret: raw}, nil
}

// issue mints k, stores it with save and, after the commit, tells the
// observer so any cached state for its hash is overwritten.
func (s *Keys) issue(ctx context.Context, ch keyward.Change, k *keyward.Key, save func(context.Context, keyward.Change, *keyward.Key) error) (*keyward.CreatedKey, error) {
	created, err := s.mint(k)
	if err != nil {
		return nil, err
	}
	if err := save(ctx, ch, k); err != nil {
		return nil, err
	}
	created.RolePermissions = k.RolePermissions // read by the store
	s.keyChanged(k)
	return created, nil
}

// Bootstrap creates a root key in a store that has no usable one (none, or
// only disabled, revoked or expired root keys) and returns its secret. It
// fails with ECONFLICT while a usable root key exists. The key is live,
// with the configured root prefix.
func (s *Keys) Bootstrap(ctx context.Context) (keyward.Secret, *keyward.Key, error) {
	prefix, err := s.prefixes.Prefix(keyward.RoleRoot, keyward.DefaultEnvironment, "")
	if err != nil {
		return "", nil, err
	}
	now := s.utc()
	k := &keyward.Key{
		ID:          apikey.NewID("key"),
		Prefix:      prefix,
		Environment: keyward.DefaultEnvironment,
		Name:        "bootstrap root key",
		Role:        keyward.RoleRoot,
		CreatedAt:   now,
		UpdatedAt:   now,
	}
	ch, err := s.audit(ctx, systemIdentity, "key.bootstrap", "key", k.ID, "", nil)
	if err != nil {
		return "", nil, err
	}
	created, err := s.issue(ctx, ch, k, s.store.BootstrapRootKey)
	if err != nil {
		return "", nil, err
	}
	s.log.InfoContext(ctx, "root key bootstrapped", "key_id", k.ID)
	return keyward.Secret(created.Secret), &created.Key, nil
}

// Key returns a key the caller may see.
func (s *Keys) Key(ctx context.Context, keyID string) (*keyward.Key, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	k, err := s.visibleKey(ctx, id, keyID)
	if err != nil || k.Credits == nil || s.credits == nil {
		return k, err
	}
	// The store's count may trail a ledger that counts elsewhere (Redis).
	if k.Credits, err = s.credits.Credits(ctx, keyID, s.utc()); err != nil {
		return nil, err
	}
	return k, nil
}

func (s *Keys) visibleKey(ctx context.Context, id *keyward.Identity, keyID string) (*keyward.Key, error) {
	k, err := s.store.Key(ctx, keyID)
	if err != nil {
		return nil, err
	}
	if !canSeeKey(id, k) {
		return nil, notFound("key", keyID)
	}
	return k, nil
}

// Keys lists the keys the caller may see: all for root, its account's for
// an admin, its own for a user. A filter outside that scope finds nothing.
func (s *Keys) Keys(ctx context.Context, f keyward.KeyFilter, p keyward.Page) (*keyward.KeyList, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	switch id.Role {
	case keyward.RoleAccountAdmin:
		if f.AccountID != "" && f.AccountID != id.AccountID {
			return nil, notFound("account", f.AccountID)
		}
		f.AccountID = id.AccountID
	case keyward.RoleUser:
		if (f.AccountID != "" && f.AccountID != id.AccountID) || (f.UserID != "" && f.UserID != id.UserID) {
			return &keyward.KeyList{Items: []*keyward.Key{}}, nil
		}
		f.AccountID, f.UserID = id.AccountID, id.UserID
	}
	if f.Role != "" && !f.Role.Valid() {
		return nil, keyward.Errorf(keyward.EINVALID, "role must be root, account_admin or user")
	}
	if f.Environment != "" {
		if err := keyward.ValidateEnvironment("environment", f.Environment); err != nil {
			return nil, err
		}
	}
	items, next, err := s.store.Keys(ctx, f, p)
	if err != nil {
		return nil, err
	}
	return &keyward.KeyList{Items: items, Next: next}, nil
}

// UpdateKey changes a key's name, permissions, named roles, meta, expiry,
// allow list or disabled flag. Permissions, roles, expiry and allow list
// may not exceed the caller's.
func (s *Keys) UpdateKey(ctx context.Context, keyID string, u keyward.KeyUpdate) (*keyward.Key, error) {
	id, unlock, err := s.writer(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	current, err := s.visibleKey(ctx, id, keyID)
	if err != nil {
		return nil, err
	}
	var perms []string
	if u.Permissions != nil {
		if perms, err = normalizePermissions(*u.Permissions); err != nil {
			return nil, err
		}
	}
	if u.Name != nil {
		if err := validateName("name", *u.Name, false); err != nil {
			return nil, err
		}
	}
	var roles []string
	if u.Roles != nil {
		if roles, err = keyRoles(ctx, s.store, id, current.AccountID, *u.Roles); err != nil {
			return nil, err
		}
	}
	var meta []byte
	if u.Meta != nil {
		if meta, err = normalizeMeta(*u.Meta); err != nil {
			return nil, err
		}
		if err := checkMeta(id, meta); err != nil {
			return nil, err
		}
	}
	var ipAllow []netip.Prefix
	if u.IPAllow != nil {
		if ipAllow, err = s.checkIPAllow(ctx, id, *u.IPAllow); err != nil {
			return nil, err
		}
	}
	if u.RateLimits != nil {
		if err := keyward.ValidateRateLimits(*u.RateLimits); err != nil {
			return nil, err
		}
		if err := requireRoot(id, "change rate limits"); err != nil {
			return nil, err
		}
	}
	if u.ExpiresAt != nil && u.ClearExpiry {
		return nil, keyward.Errorf(keyward.EINVALID, "set expires_at or clear_expiry, not both")
	}
	secretMeta, err := parseSecretMeta(u.SecretMeta, u.ClearSecretMeta)
	if err != nil {
		return nil, err
	}
	if err := checkSecretMetaWriter(id, secretMeta); err != nil {
		return nil, err
	}
	// Sealed outside the store's transaction; the key's id, which the
	// additional data binds it to, never changes.
	sealedMeta, err := s.apply(secretMeta, nil, keyward.KeySecretMetaAD(keyID))
	if err != nil {
		return nil, err
	}
	ch, err := s.audit(ctx, id, "key.update", "key", keyID, current.AccountID, keyUpdateDetails{KeyUpdate: u, SecretMeta: secretMeta.auditValue()})
	if err != nil {
		return nil, err
	}
	now := s.utc()
	k, err := s.store.UpdateKey(ctx, ch, keyID, func(k *keyward.Key) error {
		if u.Name != nil {
			k.Name = *u.Name
		}
		if u.Permissions != nil {
			k.Permissions = perms
		}
		if u.Roles != nil {
			k.Roles = roles
		}
		if u.Meta != nil {
			k.Meta = meta
		}
		if u.ExpiresAt != nil {
			t := u.ExpiresAt.UTC().Truncate(time.Microsecond)
			k.ExpiresAt, k.ExpiryScheduled = &t, false
		}
		if u.ClearExpiry {
			k.ExpiresAt, k.ExpiryScheduled = nil, false
		}
		if u.Disabled != nil {
			k.Disabled = *u.Disabled
		}
		if u.IPAllow != nil {
			k.IPAllow = ipAllow
		}
		if u.RateLimits != nil {
			k.RateLimits = nilIfEmpty(slices.Clone(*u.RateLimits))
		}
		if secretMeta.changes() {
			k.SecretMeta = sealedMeta
		}
		if u.Permissions != nil || u.ExpiresAt != nil || u.ClearExpiry {
			if err := checkGrant(id, k.Role, k.Permissions, k.ExpiresAt); err != nil {
				return err
			}
		}
		k.UpdatedAt = now
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.keyChanged(k)
	s.log.InfoContext(ctx, "key updated", "key_id", k.ID, "disabled", k.Disabled, "by", id.KeyID)
	return k, nil
}

// RevokeKey makes a key stop working at once, also one in a rotation grace
// window. Revoking a revoked key changes nothing: no audit entry, no
// webhook event, no cache notice; it returns the key as it is.
func (s *Keys) RevokeKey(ctx context.Context, keyID string) (*keyward.Key, error) {
	id, unlock, err := s.writer(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	current, err := s.visibleKey(ctx, id, keyID)
	if err != nil {
		return nil, err
	}
	ch, err := s.audit(ctx, id, "key.revoke", "key", keyID, current.AccountID, nil)
	if err != nil {
		return nil, err
	}
	now := s.utc()
	k, err := s.store.UpdateKey(ctx, ch, keyID, func(k *keyward.Key) error {
		if revokedAt(k, now) {
			return errUnchanged // aborts the transaction, audit entry and event included
		}
		return revokeAt(now)(k)
	})
	if errors.Is(err, errUnchanged) {
		return s.store.Key(ctx, keyID)
	}
	if err != nil {
		return nil, err
	}
	s.keyChanged(k)
	s.log.InfoContext(ctx, "key revoked", "key_id", k.ID, "by", id.KeyID)
	return k, nil
}

// revokeAt returns the UpdateKey function that revokes a key at now: a key
// revoked already stays as it is, one in a rotation grace window stops at
// now.
func revokeAt(now time.Time) func(*keyward.Key) error {
	return func(k *keyward.Key) error {
		if revokedAt(k, now) {
			return nil
		}
		k.RevokedAt = &now
		k.UpdatedAt = now
		return nil
	}
}

// RotateKey issues a replacement for a key with the same role, owner,
// permissions, meta, rotation policy and expiry, except an expiry that the
// rotation policy scheduled (ExpiryScheduled): the replacement is due again
// only after the policy's max age. The old key keeps working for r.Grace.
func (s *Keys) RotateKey(ctx context.Context, keyID string, r keyward.KeyRotate) (*keyward.CreatedKey, error) {
	id, unlock, err := s.writer(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	grace := time.Duration(r.Grace)
	if grace > MaxGrace {
		return nil, keyward.Errorf(keyward.EINVALID, "grace %s is longer than the maximum %s", grace, MaxGrace)
	}
	current, err := s.visibleKey(ctx, id, keyID)
	if err != nil {
		return nil, err
	}
	// Read outside the rotation's transaction: its function must not call
	// the store.
	ownIPAllow, err := s.callerIPAllow(ctx, id)
	if err != nil {
		return nil, err
	}
	// The replacement takes over what remains of the credits, live (the
	// store's count may trail a Redis ledger); the old key keeps none.
	var live *keyward.Credits
	if current.Credits != nil && s.credits != nil {
		if live, err = s.credits.Credits(ctx, keyID, s.utc()); err != nil {
			return nil, err
		}
	}
	now := s.utc()
	var created *keyward.CreatedKey
	nextID := apikey.NewID("key")
	ch, err := s.audit(ctx, id, "key.rotate", "key", keyID, current.AccountID, map[string]any{"new_key_id": nextID, "grace": grace.String()})
	if err != nil {
		return nil, err
	}
	old, _, err := s.store.RotateKey(ctx, ch, keyID, func(old *keyward.Key) (*keyward.Key, error) {
		if old.RevokedAt != nil {
			if old.GraceUntil != nil {
				return nil, keyward.Errorf(keyward.ECONFLICT, "key %s was already rotated", old.ID)
			}
			return nil, keyward.Errorf(keyward.ECONFLICT, "key %s is revoked: create a new key instead", old.ID)
		}
		// The replacement's secret goes to the caller: it may not work
		// from networks the caller's own key may not.
		if err := withinIPAllow(ownIPAllow, old.IPAllow); err != nil {
			return nil, err
		}
		end := now.Add(grace)
		old.RevokedAt = &end
		if grace > 0 {
			old.GraceUntil = &end
		}
		old.UpdatedAt = now
		next := old.Clone()
		next.ID = nextID
		next.RevokedAt, next.GraceUntil, next.LastUsedAt = nil, nil, nil
		next.RotatedFrom = old.ID
		next.CreatedAt, next.UpdatedAt = now, now
		next.CreatedBy = id.KeyID
		next.MeterID = old.Meter()
		if old.ExpiryScheduled {
			next.ExpiresAt, next.ExpiryScheduled = nil, false
		}
		if err := checkGrant(id, next.Role, next.Permissions, next.ExpiresAt); err != nil {
			return nil, err
		}
		// The replacement keeps the key's named roles: their permissions
		// are granted again too.
		if err := checkHeld(id, next.RolePermissions); err != nil {
			return nil, err
		}
		// The secret metadata moves to the replacement, sealed for its id.
		if old.SecretMeta != nil {
			plain, err := s.openSecretMeta(old.SecretMeta, keyward.KeySecretMetaAD(old.ID), "key "+old.ID)
			if err != nil {
				return nil, err
			}
			if next.SecretMeta, err = s.sealSecretMeta(plain, keyward.KeySecretMetaAD(next.ID)); err != nil {
				return nil, err
			}
		}
		if old.Credits != nil {
			old.Credits = credits.Fresh(&keyward.Credits{}, now, credits.NextVersion(old.Credits.Version, now))
		}
		if next.Credits != nil {
			if live != nil {
				next.Credits.Remaining, next.Credits.RefilledAt = live.Remaining, live.RefilledAt
			}
			next.Credits.Version = 0
		}
		var err error
		if created, err = s.mint(next); err != nil {
			return nil, err
		}
		return next, nil
	})
	if err != nil {
		return nil, err
	}
	if old.Credits != nil && s.credits != nil {
		// The store holds the old key's credits at zero; a ledger
		// counting elsewhere (Redis) must be told too.
		cleared, err := s.credits.SetCredits(ctx, keyward.Change{}, old.ID, &keyward.Credits{}, s.utc())
		if err != nil {
			s.log.ErrorContext(ctx, "rotated key's credits not cleared in the ledger: clear them with keyward credits set", "key_id", old.ID, "err", err)
		} else {
			old = cleared
		}
	}
	s.keyChanged(old)
	s.keyChanged(&created.Key)
	s.log.InfoContext(ctx, "key rotated", "key_id", old.ID, "new_key_id", created.ID, "grace", grace, "by", id.KeyID)
	return created, nil
}

// DeleteKey deletes a key; it stops verifying at once.
func (s *Keys) DeleteKey(ctx context.Context, keyID string) error {
	id, unlock, err := s.writer(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	k, err := s.visibleKey(ctx, id, keyID)
	if err != nil {
		return err
	}
	if k.Role == keyward.RoleRoot && k.Status(s.utc()) == keyward.DecisionValid {
		other, err := s.otherUsableRoot(ctx, keyID)
		if err != nil {
			return err
		}
		if !other {
			return keyward.Errorf(keyward.ECONFLICT, "key %s is the last usable root key: create another root key first", keyID)
		}
	}
	ch, err := s.audit(ctx, id, "key.delete", "key", keyID, k.AccountID, nil)
	if err != nil {
		return err
	}
	if k, err = s.store.DeleteKey(ctx, ch, keyID); err != nil {
		return err
	}
	s.keysDeleted([]keyward.KeyHash{k.Hash})
	s.log.InfoContext(ctx, "key deleted", "key_id", k.ID, "by", id.KeyID)
	return nil
}

// otherUsableRoot reports whether a root key other than keyID is usable
// now (Key.Status VALID), as BootstrapRootKey counts them: deleting keyID
// then leaves the store manageable without a bootstrap.
func (s *Keys) otherUsableRoot(ctx context.Context, keyID string) (bool, error) {
	now := s.utc()
	p := keyward.Page{Limit: keyward.MaxPageLimit}
	for {
		roots, next, err := s.store.Keys(ctx, keyward.KeyFilter{Role: keyward.RoleRoot}, p)
		if err != nil {
			return false, err
		}
		for _, k := range roots {
			if k.ID != keyID && k.Status(now) == keyward.DecisionValid {
				return true, nil
			}
		}
		if next == "" {
			return false, nil
		}
		p.After = next
	}
}

// VerifyKey verifies a key for a trusted caller: root, or a key holding
// keys:verify or keys:verify_secrets. A non-root caller learns nothing about
// keys of other accounts: they answer NOT_FOUND. The secret metadata of a
// valid key and of its account is returned, opened, only to root and to
// callers holding keys:verify_secrets.
func (s *Keys) VerifyKey(ctx context.Context, r keyward.VerifyRequest) (*keyward.VerifyResult, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if !isRoot(id) && !permission.Holds(id.Permissions, PermissionVerify) && !mayReadSecrets(id) {
		return nil, keyward.Errorf(keyward.EFORBIDDEN, "verifying keys needs a root key or a key with the %s permission", PermissionVerify)
	}
	if err := validateAgent(r.Agent); err != nil {
		return nil, err
	}
	req, err := verify.NewRequest(r)
	if err != nil {
		return nil, err
	}
	if !isRoot(id) {
		// Another account's key is not found, before any of its
		// limits or credits is spent.
		req.Account = id.AccountID
	}
	res := s.verifier.Verify(ctx, req)
	out := res.VerifyResult()
	if out.Valid && mayReadSecrets(id) {
		if err := s.revealSecretMeta(out, res.Key()); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// WhoAmI returns the caller's identity.
func (s *Keys) WhoAmI(ctx context.Context) (*keyward.Identity, error) {
	return caller(ctx)
}
