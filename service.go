package keyward

import (
	"context"
	"encoding/json"
	"time"

	"github.com/keyward/keyward/permission"
)

// AccountCreate is the input of AccountService.CreateAccount.
type AccountCreate struct {
	Name      string `json:"name"`
	KeyPrefix string `json:"key_prefix,omitempty"`
	// RateLimits are the default limits of the account's keys.
	RateLimits []RateLimit `json:"rate_limits,omitempty"`
	// SecretMeta is a JSON object of at most MaxSecretMetaBytes (such as
	// the tenant's database DSN), stored encrypted and returned only by
	// verify, to callers holding keys:verify_secrets (or root).
	SecretMeta json.RawMessage `json:"secret_meta,omitempty"`
	// Policy sets what the account's keys may do; unset fields keep the
	// default (allowed).
	Policy *AccountPolicyUpdate `json:"policy,omitempty"`
}

// AccountUpdate changes the fields that are set.
type AccountUpdate struct {
	Name      *string `json:"name,omitempty"`
	KeyPrefix *string `json:"key_prefix,omitempty"`
	Disabled  *bool   `json:"disabled,omitempty"`
	// RateLimits replaces the default limits; an empty list removes them.
	RateLimits *[]RateLimit `json:"rate_limits,omitempty"`
	// SecretMeta replaces the secret metadata (see AccountCreate);
	// ClearSecretMeta removes it.
	SecretMeta      *json.RawMessage `json:"secret_meta,omitempty"`
	ClearSecretMeta bool             `json:"clear_secret_meta,omitempty"`
	// Policy changes the fields of the account's policy that are set.
	Policy *AccountPolicyUpdate `json:"policy,omitempty"`
}

// AccountList is one page of accounts.
type AccountList struct {
	Items []*Account `json:"items"`
	Next  string     `json:"next,omitempty"`
}

// AccountService manages accounts. The caller is the identity in ctx.
// Implemented by admin.Tenancy (in process) and client.Client (over HTTP).
type AccountService interface {
	CreateAccount(ctx context.Context, c AccountCreate) (*Account, error)
	Account(ctx context.Context, id string) (*Account, error)
	Accounts(ctx context.Context, p Page) (*AccountList, error)
	UpdateAccount(ctx context.Context, id string, u AccountUpdate) (*Account, error)
	DeleteAccount(ctx context.Context, id string) error
}

// UserCreate is the input of UserService.CreateUser.
type UserCreate struct {
	Name       string `json:"name"`
	ExternalID string `json:"external_id,omitempty"`
	// Meta is a JSON object the user's keys inherit (User.Meta).
	Meta json.RawMessage `json:"meta,omitempty"`
	// SecretMeta is a JSON object of at most MaxSecretMetaBytes (such as
	// the user's database DSN), stored encrypted and inherited by the
	// user's keys at verify, for callers holding keys:verify_secrets.
	SecretMeta json.RawMessage `json:"secret_meta,omitempty"`
}

// UserUpdate changes the fields of a user that are set.
type UserUpdate struct {
	Name *string `json:"name,omitempty"`
	// ExternalID replaces the external id; "" removes it. ECONFLICT if
	// another user of the account has it.
	ExternalID *string `json:"external_id,omitempty"`
	// Meta replaces the meta; {} or null removes it.
	Meta *json.RawMessage `json:"meta,omitempty"`
	// SecretMeta replaces the secret metadata (see UserCreate);
	// ClearSecretMeta removes it.
	SecretMeta      *json.RawMessage `json:"secret_meta,omitempty"`
	ClearSecretMeta bool             `json:"clear_secret_meta,omitempty"`
}

// UserList is one page of users.
type UserList struct {
	Items []*User `json:"items"`
	Next  string  `json:"next,omitempty"`
}

// UserService manages the users of an account. Implemented by admin.Tenancy
// and client.Client.
type UserService interface {
	CreateUser(ctx context.Context, accountID string, c UserCreate) (*User, error)
	User(ctx context.Context, accountID, id string) (*User, error)
	Users(ctx context.Context, accountID string, p Page) (*UserList, error)
	// UserByExternalID returns the account's user with that external id.
	UserByExternalID(ctx context.Context, accountID, externalID string) (*User, error)
	UpdateUser(ctx context.Context, accountID, id string, u UserUpdate) (*User, error)
	DeleteUser(ctx context.Context, accountID, id string) error
}

// KeyCreate is the input of KeyService.CreateKey. AccountID is required
// unless Role is root; UserID is required when Role is user (and only then).
type KeyCreate struct {
	AccountID   string          `json:"account_id,omitempty"`
	UserID      string          `json:"user_id,omitempty"`
	Role        Role            `json:"role"`
	Name        string          `json:"name,omitempty"`
	Permissions []string        `json:"permissions,omitempty"`
	Meta        json.RawMessage `json:"meta,omitempty"`
	// Roles names named roles of the account (NamedRole) the key holds
	// besides Permissions.
	Roles []string `json:"roles,omitempty"`
	// Environment is the key's environment, one the deployment's
	// key_prefixes define; empty means DefaultEnvironment. It picks the
	// key's prefix.
	Environment string `json:"environment,omitempty"`
	// SecretMeta is a JSON object of at most MaxSecretMetaBytes (such as
	// a per-tenant database DSN), stored encrypted and returned only by
	// verify, to callers holding keys:verify_secrets (or root).
	SecretMeta json.RawMessage `json:"secret_meta,omitempty"`
	ExpiresAt  *time.Time      `json:"expires_at,omitempty"`
	// IPAllow restricts the key to these networks (CIDRs or addresses);
	// see Key.IPAllow.
	IPAllow []string `json:"ip_allow,omitempty"`
	// RateLimits are the key's named limits; none means the account's
	// defaults apply.
	RateLimits []RateLimit `json:"rate_limits,omitempty"`
	// Credits, when set, gives the key a quota; RefilledAt is ignored
	// (the period starts at creation).
	Credits *Credits `json:"credits,omitempty"`
}

// CreatedKey is a new key with its secret. The secret is shown this once;
// keyward keeps only its hash.
type CreatedKey struct {
	Key
	// Secret is the raw key, serialised as "key".
	Secret string `json:"key"`
}

// KeyUpdate changes the fields that are set. Permissions replace the whole
// list; ClearExpiry removes the expiry.
type KeyUpdate struct {
	Name        *string          `json:"name,omitempty"`
	Permissions *[]string        `json:"permissions,omitempty"`
	Meta        *json.RawMessage `json:"meta,omitempty"`
	ExpiresAt   *time.Time       `json:"expires_at,omitempty"`
	ClearExpiry bool             `json:"clear_expiry,omitempty"`
	Disabled    *bool            `json:"disabled,omitempty"`
	// Roles replaces the key's named roles; an empty list removes them.
	Roles *[]string `json:"roles,omitempty"`
	// IPAllow replaces the key's allow list; an empty list removes it.
	IPAllow *[]string `json:"ip_allow,omitempty"`
	// RateLimits replaces the key's limits; an empty list removes them
	// (the account's defaults apply again).
	RateLimits *[]RateLimit `json:"rate_limits,omitempty"`
	// SecretMeta replaces the secret metadata (see KeyCreate);
	// ClearSecretMeta removes it.
	SecretMeta      *json.RawMessage `json:"secret_meta,omitempty"`
	ClearSecretMeta bool             `json:"clear_secret_meta,omitempty"`
}

// KeyRotate is the input of KeyService.RotateKey: the old key keeps working
// for Grace (0: it stops at once), the new one works at once.
type KeyRotate struct {
	Grace Duration `json:"grace,omitempty"`
}

// KeyList is one page of keys.
type KeyList struct {
	Items []*Key `json:"items"`
	Next  string `json:"next,omitempty"`
}

// VerifyRequest asks whether a key is valid for some permissions.
type VerifyRequest struct {
	Key string `json:"key"`
	// Permissions the key must hold, all of them; a held wildcard covers
	// them ("memories:*" covers "memories:read", docs/permissions.md).
	Permissions []string `json:"permissions,omitempty"`
	// Query is a permission query the key must satisfy besides
	// Permissions: permissions joined by AND and OR, AND binding tighter,
	// with parentheses ("memories:read AND (search:run OR admin:*)"). A
	// query that does not parse is an EQUERY error naming the position.
	Query string `json:"query,omitempty"`
	// RequireRole, when set, is the least role the key must have: root,
	// account_admin or user (a role covers those below it), or a named
	// role the key must hold (Key.HasRole).
	RequireRole Role `json:"require_role,omitempty"`
	// Agent names the agent acting with the key; it is echoed in the
	// identity and grants nothing.
	Agent string `json:"agent,omitempty"`
	// IP is the address of the client that presented the key, when known;
	// IP rules are checked against it.
	IP string `json:"ip,omitempty"`
	// Limits names which of the key's rate limits this call counts
	// against (manual ones included); empty means all of them but the
	// manual ones (RateLimit.Manual).
	Limits []string `json:"limits,omitempty"`
	// ManualLimits names manual limits this call counts against besides
	// those Limits selects: with Limits empty, the key's other limits and
	// these (Unkey's verifyKey ratelimits, docs/unkey.md).
	ManualLimits []string `json:"manual_limits,omitempty"`
	// Cost is what the call spends from each rate limit and from the
	// key's credits; 0 means 1.
	Cost int64 `json:"cost,omitempty"`
	// Environment, when set, is the environment the key must be in: a
	// key of another answers WRONG_ENVIRONMENT.
	Environment string `json:"environment,omitempty"`
}

// CompileNeeds checks what r asks of the key beyond its validity and
// returns its query parsed with c (nil when it has none): EINVALID for a
// require_role that is neither a tier nor a role name, EQUERY for a query that does not parse
// (QueryError). Every verifier calls it before looking the key up, so a
// bad request is refused whatever the key.
func (r *VerifyRequest) CompileNeeds(c *permission.Cache) (*permission.Query, error) {
	if r.RequireRole != "" {
		if err := ValidateRequiredRole(r.RequireRole); err != nil {
			return nil, err
		}
	}
	if r.Query == "" {
		return nil, nil
	}
	q, err := c.Parse(r.Query)
	if err != nil {
		return nil, QueryError(err)
	}
	return q, nil
}

// VerifyResult is the answer to a VerifyRequest. Code says why a key is not
// valid; only the caller of verify (a trusted service) sees it.
type VerifyResult struct {
	Valid       bool            `json:"valid"`
	Code        Decision        `json:"code"`
	KeyID       string          `json:"key_id,omitempty"`
	Identity    *Identity       `json:"identity,omitempty"`
	Permissions []string        `json:"permissions,omitempty"`
	Meta        json.RawMessage `json:"meta,omitempty"`
	ExpiresAt   *time.Time      `json:"expires_at"`
	// MissingPermissions, with INSUFFICIENT_PERMISSIONS, are the
	// permissions the key lacks: those of Permissions it does not hold,
	// then those of Query that kept it from being satisfied (of a failed
	// OR, each alternative).
	MissingPermissions []string `json:"missing_permissions,omitempty"`
	// MissingRole, with INSUFFICIENT_PERMISSIONS, is RequireRole when the
	// key's role is below it.
	MissingRole Role `json:"missing_role,omitempty"`
	// Environment is the key's environment, whenever the key was found.
	Environment string `json:"environment,omitempty"`
	// RateLimits is the state of each limit the call counted against,
	// when the key was found valid up to its limits (VALID, RATE_LIMITED,
	// or USAGE_EXCEEDED: a call refused for credits has counted against
	// the limits).
	RateLimits []RateLimitStatus `json:"rate_limits,omitempty"`
	// CreditsRemaining is what the key has left after this call, when it
	// has credits and the call reached them (VALID or USAGE_EXCEEDED):
	// the least of what its own, its user's and its account's credits
	// hold.
	CreditsRemaining *int64 `json:"credits_remaining,omitempty"`
	// LimitLevel, with RATE_LIMITED or USAGE_EXCEEDED, names the level
	// whose limits or credits refused the call: key, user or account
	// (docs/abuse-protection.md#shared-limits).
	LimitLevel LimitLevel `json:"limit_level,omitempty"`
	// SecretMeta and AccountSecretMeta are the secret metadata of the key
	// and of its account, in clear, when the key is VALID and the caller
	// holds keys:verify_secrets (or is root); absent otherwise.
	SecretMeta        json.RawMessage `json:"secret_meta,omitempty"`
	AccountSecretMeta json.RawMessage `json:"account_secret_meta,omitempty"`
	// Name is the key's name, UserMeta its user's own meta (Meta has it
	// merged with the key's) and UserRateLimits its user's shared rate
	// limits, when the key is VALID. They are answered in process only
	// (verify.Engine, admin.Keys: the Unkey v2 API's verifyKey), not by
	// the /v1 API, whose callers read them with the key.
	Name           string          `json:"-"`
	UserMeta       json.RawMessage `json:"-"`
	UserRateLimits []RateLimit     `json:"-"`
}

// RateLimitStatus is the state of one rate limit after a verification.
type RateLimitStatus struct {
	Name   string   `json:"name"`
	Limit  int64    `json:"limit"`
	Window Duration `json:"window"`
	// Manual says the limit counted because the call named it
	// (RateLimit.Manual).
	Manual bool `json:"manual,omitempty"`
	// Allowed says whether this limit admitted the call.
	Allowed bool `json:"allowed"`
	// Level is the level the limit belongs to when the key's user or
	// account has shared limits (key, user or account); empty otherwise.
	Level LimitLevel `json:"level,omitempty"`
	// Remaining is the cost the limit would still admit now.
	Remaining int64 `json:"remaining"`
	// ResetMS is how many milliseconds until the limit is full again.
	ResetMS int64 `json:"reset_ms"`
	// RetryAfterMS is how many milliseconds until the same call would be
	// admitted by this limit; 0 when Allowed.
	RetryAfterMS int64 `json:"retry_after_ms,omitempty"`
}

// KeyVerifier verifies a credential presented to a protected service. It is
// what the gateway, the forward-auth endpoint and the middleware depend on,
// implemented in process (verify.Engine), by a remote keyward
// (client.Client) and by the simple modes (a static keystore, one legacy
// key). A key outcome, valid or not, is a result; an error means no
// decision could be made (the caller answers 503).
type KeyVerifier interface {
	VerifyKey(ctx context.Context, r VerifyRequest) (*VerifyResult, error)
}

// KeyService manages keys and verifies them.
type KeyService interface {
	CreateKey(ctx context.Context, c KeyCreate) (*CreatedKey, error)
	Key(ctx context.Context, id string) (*Key, error)
	Keys(ctx context.Context, f KeyFilter, p Page) (*KeyList, error)
	UpdateKey(ctx context.Context, id string, u KeyUpdate) (*Key, error)
	RevokeKey(ctx context.Context, id string) (*Key, error)
	// RevokeKeyCascade revokes the key and its descendants (keytree.go).
	RevokeKeyCascade(ctx context.Context, id string) (*KeyRevocation, error)
	RotateKey(ctx context.Context, id string, r KeyRotate) (*CreatedKey, error)
	DeleteKey(ctx context.Context, id string) error
	VerifyKey(ctx context.Context, r VerifyRequest) (*VerifyResult, error)
	WhoAmI(ctx context.Context) (*Identity, error)
}

// Duration is a time.Duration that reads and writes as a Go duration string
// ("24h", "90m") in JSON.
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return Errorf(EINVALID, "invalid duration %q: use a Go duration such as 30s, 15m or 24h", b)
	}
	if v < 0 {
		return Errorf(EINVALID, "duration %q must not be negative", b)
	}
	*d = Duration(v)
	return nil
}
