package keyward

import (
	"encoding/json"
	"net/netip"
	"slices"
	"time"

	"github.com/keyward/keyward/permission"
)

// Role is the tier of a key. Roles are ordered: root > account_admin > user.
type Role string

// The three key tiers.
const (
	RoleRoot         Role = "root"
	RoleAccountAdmin Role = "account_admin"
	RoleUser         Role = "user"
)

// Valid reports whether r is one of the three roles.
func (r Role) Valid() bool { return r.rank() > 0 }

// Covers reports whether a caller of role r may hold power of role o: a role
// covers itself and every role below it.
func (r Role) Covers(o Role) bool { return r.rank() >= o.rank() && o.Valid() }

func (r Role) rank() int {
	switch r {
	case RoleRoot:
		return 3
	case RoleAccountAdmin:
		return 2
	case RoleUser:
		return 1
	}
	return 0
}

// Account is a tenant. Every non-root key and every user belongs to one.
type Account struct {
	ID string `json:"id"`
	// Name is a human label, unique among accounts.
	Name string `json:"name"`
	// KeyPrefix is the prefix of this account's user keys; empty means the
	// default "kw_user".
	KeyPrefix string `json:"key_prefix,omitempty"`
	// RateLimits are the default limits of the account's keys: they apply
	// to every key of the account that sets none of its own.
	RateLimits []RateLimit `json:"rate_limits,omitempty"`
	Disabled   bool        `json:"disabled"`
	CreatedAt  time.Time   `json:"created_at"`
	UpdatedAt  time.Time   `json:"updated_at"`
	// SecretMeta is the account's secret metadata (a JSON object, such as
	// the tenant's database DSN) sealed with AccountSecretMetaAD; nil when
	// it has none. Only verifiers holding keys:verify_secrets (or root)
	// ever see it in clear.
	SecretMeta *Sealed `json:"-"`
	// HasSecretMeta says SecretMeta is set; filled by stores on reads.
	HasSecretMeta bool `json:"has_secret_meta,omitempty"`
	// Policy says what the account's keys may do beyond their role.
	Policy AccountPolicy `json:"policy"`
}

// User is a person or service inside an account.
type User struct {
	ID        string `json:"id"`
	AccountID string `json:"account_id"`
	Name      string `json:"name"`
	// ExternalID is the caller's own id for this user, unique per account
	// when set. Verify returns it in the identity of the user's keys.
	ExternalID string `json:"external_id,omitempty"`
	// Meta is a JSON object the user's keys inherit: verify returns it
	// merged under each key's own meta (MergeMeta), a key's fields winning.
	Meta json.RawMessage `json:"meta,omitempty"`
	// SecretMeta is the user's secret metadata sealed with
	// UserSecretMetaAD; nil when it has none. Like a key's, it is never
	// listed nor returned by a get: verify returns it, opened and merged
	// under the key's own, to callers holding keys:verify_secrets.
	SecretMeta *Sealed `json:"-"`
	// HasSecretMeta says SecretMeta is set; filled by stores on reads.
	HasSecretMeta bool      `json:"has_secret_meta,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	// UpdatedAt is when the user was last changed (its creation, for a
	// user never updated).
	UpdatedAt time.Time `json:"updated_at"`
}

// KeyHash is HMAC-SHA256(pepper[v], raw key): the only form in which a key's
// secret is stored.
type KeyHash [32]byte

// Key is an issued API key, without its secret.
type Key struct {
	ID string `json:"id"`
	// Hash identifies the key in storage; it is never sent to clients.
	Hash          KeyHash `json:"-"`
	PepperVersion int     `json:"-"`
	// Start is the prefix plus the first four characters of the body, for
	// people to recognise a key.
	Start  string `json:"start"`
	Prefix string `json:"prefix"`
	// Environment is the key's environment (live, test...): it picks the
	// prefix at creation, verify returns it, and a verification may
	// require one (WRONG_ENVIRONMENT). It never changes; a rotation keeps
	// it. Stores write an empty one as DefaultEnvironment.
	Environment string          `json:"environment"`
	Name        string          `json:"name"`
	Role        Role            `json:"role"`
	AccountID   string          `json:"account_id,omitempty"`
	UserID      string          `json:"user_id,omitempty"`
	Permissions []string        `json:"permissions"`
	Meta        json.RawMessage `json:"meta,omitempty"`
	// Roles names the named roles of the key's account it holds
	// (NamedRole), sorted: it holds their permissions too.
	Roles []string `json:"roles,omitempty"`
	// SecretMeta is the key's secret metadata sealed with
	// KeySecretMetaAD; nil when it has none. It is never listed nor
	// returned by a get: only verify returns it, opened, to callers
	// holding keys:verify_secrets (or root).
	SecretMeta *Sealed `json:"-"`
	// HasSecretMeta says SecretMeta is set; filled by stores on reads.
	HasSecretMeta bool       `json:"has_secret_meta,omitempty"`
	ExpiresAt     *time.Time `json:"expires_at"`
	// ExpiryScheduled says ExpiresAt was set by the key's rotation policy
	// (the notice period of the rotation job), not by a person: a
	// rotation does not give it to the replacement. Setting or clearing
	// the expiry by hand clears it.
	ExpiryScheduled bool `json:"expiry_scheduled,omitempty"`
	// IPAllow, when not empty, lists the only networks the key verifies
	// from (IP_NOT_ALLOWED elsewhere, and when the client address is
	// unknown). Sorted, without duplicates.
	IPAllow []netip.Prefix `json:"ip_allow,omitempty"`
	// RateLimits are the key's named limits (RATE_LIMITED beyond them);
	// when empty, the account's default limits apply.
	RateLimits []RateLimit `json:"rate_limits,omitempty"`
	// MeterID, when set, is the key whose rate limit buckets this key
	// counts against: the key it replaced by rotation (so a rotation
	// never refills the limits), or the user key that created it (so a
	// user minting keys never multiplies its limits). Empty: its own.
	MeterID string `json:"meter_id,omitempty"`
	// Credits, when set, is the key's quota (USAGE_EXCEEDED when spent).
	// In a key read from the cache it is a snapshot: the ledger holds the
	// live count.
	Credits  *Credits `json:"credits,omitempty"`
	Disabled bool     `json:"disabled"`
	// RevokedAt is when the key stops working: the moment of a revoke, or
	// the end of the grace window of a rotated key.
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	// RotatedFrom names the key this one replaced.
	RotatedFrom string `json:"rotated_from,omitempty"`
	// GraceUntil is set on a rotated key: it keeps verifying until then.
	GraceUntil *time.Time `json:"grace_until,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	// CreatedBy is the id of the key that created this one; empty for the
	// bootstrap root key.
	CreatedBy  string     `json:"created_by,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	UpdatedAt  time.Time  `json:"updated_at"`

	// AccountDisabled mirrors the owning account's flag, filled by stores
	// on reads so a verification needs one lookup.
	AccountDisabled bool `json:"-"`
	// AccountRateLimits mirrors the owning account's default limits,
	// filled by stores on reads like AccountDisabled.
	AccountRateLimits []RateLimit `json:"-"`
	// AccountSecretMeta mirrors the owning account's sealed secret
	// metadata, filled by stores on reads like AccountDisabled, so verify
	// can return it without another lookup.
	AccountSecretMeta *Sealed `json:"-"`
	// RolePermissions are the permissions of the key's roles, filled by
	// stores on reads like AccountDisabled (sorted, without duplicates; nil
	// without roles), so a verification needs one lookup.
	RolePermissions []string `json:"-"`
	// UserExternalID, UserMeta and UserSecretMeta mirror the owning user's
	// external id, meta and sealed secret metadata (for a key with a
	// user), filled by stores on reads like AccountDisabled, so verify
	// answers with them without another lookup.
	UserExternalID string          `json:"-"`
	UserMeta       json.RawMessage `json:"-"`
	UserSecretMeta *Sealed         `json:"-"`
	// UserMeter and AccountMeter mirror the shared rate limits and credits
	// of the key's user and account (nil when they have none), filled by
	// stores on reads like AccountDisabled, so a verification counts every
	// level without another lookup.
	UserMeter    *Meter `json:"-"`
	AccountMeter *Meter `json:"-"`
}

// Meter returns the id whose rate limit buckets the key counts against:
// MeterID, or its own id.
func (k *Key) Meter() string {
	if k.MeterID != "" {
		return k.MeterID
	}
	return k.ID
}

// EffectiveRateLimits returns the limits that apply to the key: its own, or
// the account's defaults when it sets none.
func (k *Key) EffectiveRateLimits() []RateLimit {
	if len(k.RateLimits) > 0 {
		return k.RateLimits
	}
	return k.AccountRateLimits
}

// Status returns the decision the key's own state gives at now: VALID,
// DISABLED, REVOKED or EXPIRED, checked in that order.
func (k *Key) Status(now time.Time) Decision {
	switch {
	case k.Disabled || k.AccountDisabled:
		return DecisionDisabled
	case k.RevokedAt != nil && !now.Before(*k.RevokedAt):
		return DecisionRevoked
	case k.ExpiresAt != nil && !now.Before(*k.ExpiresAt):
		return DecisionExpired
	}
	return DecisionValid
}

// HasPermissions reports whether the key holds every permission in want:
// one of its effective permissions (EffectivePermissions) covers each
// (permission.Covers: "memories:*" covers "memories:read"). Root keys hold
// all permissions.
func (k *Key) HasPermissions(want []string) bool {
	return k.Role == RoleRoot || permission.HoldsAll(k.EffectivePermissions(), want)
}

// Allows reports whether the key holds every permission in want and
// satisfies q (nil: no query) with its effective permissions
// (EffectivePermissions) and, when role is set, whether it meets the guard
// role (HasRole: its tier covers role, or it holds the named role). It also
// returns what the key lacks: the missing permissions
// (permission.Set.Missing), and role when the role refused. Root keys hold
// all permissions.
func (k *Key) Allows(want []string, q *permission.Query, role Role) (ok bool, missing []string, missingRole Role) {
	if role != "" && !k.HasRole(role) {
		missingRole = role
	}
	if k.Role != RoleRoot {
		missing = permission.NewSet(k.EffectivePermissions()).Missing(want, q)
	}
	return missing == nil && missingRole == "", missing, missingRole
}

// Clone returns a deep copy of k.
func (k *Key) Clone() *Key {
	c := *k
	c.Permissions = slices.Clone(k.Permissions)
	c.Roles = slices.Clone(k.Roles)
	c.RolePermissions = slices.Clone(k.RolePermissions)
	c.Meta = slices.Clone(k.Meta)
	c.IPAllow = slices.Clone(k.IPAllow)
	c.RateLimits = slices.Clone(k.RateLimits)
	c.AccountRateLimits = slices.Clone(k.AccountRateLimits)
	c.SecretMeta = k.SecretMeta.Clone()
	c.AccountSecretMeta = k.AccountSecretMeta.Clone()
	c.UserMeta = slices.Clone(k.UserMeta)
	c.UserSecretMeta = k.UserSecretMeta.Clone()
	c.Credits = k.Credits.clone()
	c.UserMeter, c.AccountMeter = k.UserMeter.Clone(), k.AccountMeter.Clone()
	c.ExpiresAt = cloneTime(k.ExpiresAt)
	c.RevokedAt = cloneTime(k.RevokedAt)
	c.GraceUntil = cloneTime(k.GraceUntil)
	c.LastUsedAt = cloneTime(k.LastUsedAt)
	return &c
}

func cloneTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	c := *t
	return &c
}

// Identity is who a verified key speaks for.
type Identity struct {
	KeyID     string `json:"key_id"`
	AccountID string `json:"account_id,omitempty"`
	UserID    string `json:"user_id,omitempty"`
	// ExternalID is the external id of the key's user (User.ExternalID),
	// when it has one.
	ExternalID string `json:"external_id,omitempty"`
	Role       Role   `json:"role"`
	// Agent is the agent named by the request (X-Keyward-Agent); it is
	// informational and never grants anything.
	Agent       string   `json:"agent,omitempty"`
	Permissions []string `json:"permissions,omitempty"`
	// Roles names the key's named roles (Key.Roles); Permissions are its
	// effective permissions (Key.EffectivePermissions).
	Roles []string `json:"roles,omitempty"`
	// ExpiresAt is when the key stops working: its expiry or, for a key
	// rotated with a grace window, the end of the window, whichever is
	// first.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Retiring is set for a rotated key in its grace window: it still
	// authenticates, but may not change anything (use its replacement).
	Retiring bool `json:"retiring,omitempty"`
	// Environment is the key's environment (Key.Environment); empty for
	// keys that have none (those of a keystore file).
	Environment string `json:"environment,omitempty"`
	// PortalSession is the id of the portal session acting (KeyID is the
	// same id), empty for a key: the portal's customer acts as a user of
	// its account within what the session granted (PortalSession.Identity).
	PortalSession string `json:"-"`
}

// IdentityOf returns the identity of key k acting through agent.
func IdentityOf(k *Key, agent string) *Identity {
	id := &Identity{
		KeyID:       k.ID,
		AccountID:   k.AccountID,
		UserID:      k.UserID,
		ExternalID:  k.UserExternalID,
		Role:        k.Role,
		Agent:       agent,
		Permissions: k.EffectivePermissions(),
		Roles:       k.Roles,
		ExpiresAt:   k.ExpiresAt,
		Retiring:    k.RevokedAt != nil,
		Environment: k.Environment,
	}
	if k.RevokedAt != nil && (k.ExpiresAt == nil || k.RevokedAt.Before(*k.ExpiresAt)) {
		id.ExpiresAt = k.RevokedAt
	}
	return id
}

// DefaultEnvironment is the environment of a key created without one, and
// of every key made before keys had environments.
const DefaultEnvironment = "live"

// MaxEnvironmentLen bounds the length of an environment name.
const MaxEnvironmentLen = 16

// EnvironmentOf returns env, or DefaultEnvironment when env is empty.
func EnvironmentOf(env string) string {
	if env == "" {
		return DefaultEnvironment
	}
	return env
}

// ValidateEnvironment checks that env is an environment name:
// [a-z][a-z0-9]{0,15}. It returns EINVALID naming field.
func ValidateEnvironment(field, env string) error {
	ok := len(env) > 0 && len(env) <= MaxEnvironmentLen && env[0] >= 'a' && env[0] <= 'z'
	for i := 1; ok && i < len(env); i++ {
		c := env[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
	}
	if !ok {
		return Errorf(EINVALID, "%s %q is not an environment name: use a lowercase letter and up to %d lowercase letters or digits, such as live or test", field, env, MaxEnvironmentLen-1)
	}
	return nil
}

// ValidateOwner checks that a key's role and owner fit together: a root key
// belongs to no account, an account_admin key to an account and no user, a
// user key to an account and one of its users. It returns EINVALID.
func ValidateOwner(r Role, accountID, userID string) error {
	switch r {
	case RoleRoot:
		if accountID != "" || userID != "" {
			return Errorf(EINVALID, "a root key belongs to no account: omit account_id and user_id")
		}
	case RoleAccountAdmin:
		if accountID == "" || userID != "" {
			return Errorf(EINVALID, "an account_admin key needs account_id and no user_id")
		}
	case RoleUser:
		if accountID == "" || userID == "" {
			return Errorf(EINVALID, "a user key needs account_id and user_id")
		}
	default:
		return Errorf(EINVALID, "role %q is not one of root, account_admin, user", r)
	}
	return nil
}

// ValidateRecord checks what every store's schema requires of a key about
// to be written, with clear messages (EINVALID): an id, a hash, a role that
// fits its owner (ValidateOwner), named roles only on a key of an account, an environment name or none, valid rate limits and credits, secret
// meta that is sealed, and meta that is JSON.
func (k *Key) ValidateRecord() error {
	if k.ID == "" {
		return Errorf(EINVALID, "key id is required")
	}
	if k.Hash == (KeyHash{}) {
		return Errorf(EINVALID, "key hash is required")
	}
	if err := ValidateOwner(k.Role, k.AccountID, k.UserID); err != nil {
		return err
	}
	if k.Environment != "" {
		if err := ValidateEnvironment("key environment", k.Environment); err != nil {
			return err
		}
	}
	if err := ValidateRateLimits(k.RateLimits); err != nil {
		return err
	}
	if err := ValidateKeyRoles(k.AccountID, k.Roles); err != nil {
		return err
	}
	if err := k.SecretMeta.ValidateRecord("key secret_meta"); err != nil {
		return err
	}
	if k.Credits != nil {
		if err := k.Credits.Validate(); err != nil {
			return err
		}
	}
	return ValidateMeta(k.Meta)
}

// ValidateMeta checks that a key's meta, when set, is JSON (EINVALID).
func ValidateMeta(m json.RawMessage) error {
	if len(m) > 0 && !json.Valid(m) {
		return Errorf(EINVALID, "key meta must be valid JSON")
	}
	return nil
}
