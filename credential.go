package keyward

import (
	"context"
	"encoding/binary"
	"time"
)

// ProviderConnection is how keyward reaches a system whose tokens it
// manages (a Gitea, an n8n) for an account: the base URL and the
// credentials of an admin (Gitea) or the owner (n8n) there, kept encrypted
// with the master keys.
type ProviderConnection struct {
	ID        string `json:"id"`
	AccountID string `json:"account_id"`
	// Kind is the provider: gitea or n8n.
	Kind string `json:"kind"`
	// Name is unique among the account's connections.
	Name    string `json:"name"`
	BaseURL string `json:"base_url"`
	// Username is the admin's user name (Gitea) or the owner's email
	// (n8n).
	Username string `json:"username"`
	// SealedPassword is the password encrypted with master key
	// PasswordVersion; additional data PasswordAD, which binds it to the
	// connection's id, kind, base URL and user name.
	SealedPassword  []byte `json:"-"`
	PasswordVersion int    `json:"-"`
	// PasswordBound says SealedPassword is sealed with PasswordAD. It is
	// false only for a password sealed before keyward bound passwords to
	// where they are sent (additional data LegacyProviderPasswordAD(ID)),
	// until serve or rekey re-seals it: such a password is never opened
	// to be sent.
	PasswordBound bool `json:"-"`
	// Timeout bounds each request to the provider; 0 is the default
	// (10s).
	Timeout   Duration  `json:"timeout,omitempty"`
	CreatedBy string    `json:"created_by,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ProviderPasswordAD is the additional data of a connection's sealed
// password: it opens only as the password of connection id of that kind,
// sent to baseURL as username. Changing any of them in the database (to
// have keyward send the password elsewhere) makes the password fail to
// open. The fields are length-prefixed, so no two bindings share bytes.
func ProviderPasswordAD(id, kind, baseURL, username string) []byte {
	b := []byte("provider_connection/v2")
	for _, f := range []string{id, kind, baseURL, username} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

// PasswordAD is the additional data of c's sealed password:
// ProviderPasswordAD of its id, kind, base URL and user name.
func (c *ProviderConnection) PasswordAD() []byte {
	return ProviderPasswordAD(c.ID, c.Kind, c.BaseURL, c.Username)
}

// LegacyProviderPasswordAD is the additional data passwords were sealed
// with before they were bound to their kind, base URL and user name: the
// connection id only. Only a re-seal (serve at start, rekey) opens with
// it, to seal the password again with PasswordAD.
func LegacyProviderPasswordAD(providerID string) []byte {
	return []byte("provider_connection\x00" + providerID)
}

// CredentialStatus is where a managed credential stands.
type CredentialStatus string

// Credential statuses.
const (
	// CredentialActive works at the provider.
	CredentialActive CredentialStatus = "active"
	// CredentialRotated was replaced; it works until GraceUntil, when
	// the lifecycle job revokes it at the provider.
	CredentialRotated CredentialStatus = "rotated"
	// CredentialRevoked was revoked at the provider.
	CredentialRevoked CredentialStatus = "revoked"
	// CredentialExpired passed its expiry and was revoked at the
	// provider by the lifecycle job.
	CredentialExpired CredentialStatus = "expired"
	// CredentialOrphaned was created at the provider, but keyward could
	// neither record it normally nor revoke it again; reconcile lists it
	// until it is revoked.
	CredentialOrphaned CredentialStatus = "orphaned"
	// CredentialVanished is recorded as active but the provider no longer
	// has it (found by reconcile, marked when asked).
	CredentialVanished CredentialStatus = "vanished"
)

// ManagedCredential is a token of another system that keyward created and
// manages: recorded without its secret.
type ManagedCredential struct {
	ID string `json:"id"`
	// ProviderID is the provider connection it was created through;
	// Kind its provider.
	ProviderID string `json:"provider_id"`
	Kind       string `json:"kind"`
	AccountID  string `json:"account_id"`
	// ExternalID is the provider's id of the token; ExternalUser the
	// account at the provider that owns it.
	ExternalID   string   `json:"external_id"`
	ExternalUser string   `json:"external_user,omitempty"`
	Name         string   `json:"name"`
	Scopes       []string `json:"scopes"`
	// Hint is what the provider shows of the token (Gitea: its last eight
	// characters), if anything.
	Hint      string           `json:"hint,omitempty"`
	ExpiresAt *time.Time       `json:"expires_at"`
	Status    CredentialStatus `json:"status"`
	// RotatedFrom names the credential this one replaced; ReplacedBy the
	// one that replaced it, and GraceUntil when it is revoked then.
	RotatedFrom string     `json:"rotated_from,omitempty"`
	ReplacedBy  string     `json:"replaced_by,omitempty"`
	GraceUntil  *time.Time `json:"grace_until,omitempty"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
	CreatedBy   string     `json:"created_by,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

// CredentialFilter narrows a credential list. Empty fields match
// everything.
type CredentialFilter struct {
	AccountID  string
	ProviderID string
	Status     CredentialStatus
}

// CredentialStore is the part of Store that holds provider connections and
// managed credentials.
type CredentialStore interface {
	// CreateProviderConnection inserts c. ENOTFOUND if its account does
	// not exist, ECONFLICT if the id, or the name within the account, is
	// taken.
	CreateProviderConnection(ctx context.Context, ch Change, c *ProviderConnection) error
	// ProviderConnection returns the connection with id. ENOTFOUND if
	// none.
	ProviderConnection(ctx context.Context, id string) (*ProviderConnection, error)
	// ProviderConnections lists the connections of an account ("" for
	// all) by id.
	ProviderConnections(ctx context.Context, accountID string, p Page) (conns []*ProviderConnection, next string, err error)
	// UpdateProviderConnection loads the connection, applies fn and saves
	// the result in one transaction; the id, account and kind never
	// change (EINVALID).
	UpdateProviderConnection(ctx context.Context, ch Change, id string, fn func(*ProviderConnection) error) (*ProviderConnection, error)
	// DeleteProviderConnection deletes the connection and returns it.
	// ENOTFOUND if none; ECONFLICT while credentials created through it
	// are active, rotated or orphaned (revoke them first).
	DeleteProviderConnection(ctx context.Context, ch Change, id string) (*ProviderConnection, error)

	// CreateCredential inserts c. ENOTFOUND if its connection does not
	// exist, ECONFLICT if the id, or the external id within the
	// connection, is taken.
	CreateCredential(ctx context.Context, ch Change, c *ManagedCredential) error
	// Credential returns the credential with id. ENOTFOUND if none.
	Credential(ctx context.Context, id string) (*ManagedCredential, error)
	// Credentials lists the credentials matching f by id.
	Credentials(ctx context.Context, f CredentialFilter, p Page) (creds []*ManagedCredential, next string, err error)
	// UpdateCredential loads the credential, applies fn and saves the
	// result in one transaction; the id, connection, account and external
	// id never change (EINVALID).
	UpdateCredential(ctx context.Context, ch Change, id string, fn func(*ManagedCredential) error) (*ManagedCredential, error)
	// RotateCredential loads the credential, lets fn change it and
	// return its replacement, then saves both in one transaction.
	RotateCredential(ctx context.Context, ch Change, id string, fn func(old *ManagedCredential) (next *ManagedCredential, err error)) (old, next *ManagedCredential, err error)
}

// ExternalToken describes a token at a provider, without its secret.
type ExternalToken struct {
	// ExternalID is the provider's id of the token.
	ExternalID string `json:"external_id"`
	Name       string `json:"name"`
	// User is the account at the provider that owns the token (Gitea's
	// user name; n8n's owner).
	User   string   `json:"user,omitempty"`
	Scopes []string `json:"scopes,omitempty"`
	// ExpiresAt is when the provider stops accepting it, if it expires.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Hint is what the provider shows of the token to recognise it
	// (Gitea: its last eight characters), if anything.
	Hint      string    `json:"hint,omitempty"`
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// NewProviderConnection is what adding a connection takes.
type NewProviderConnection struct {
	// AccountID is filled with the caller's account for account admins.
	AccountID string `json:"account_id,omitempty"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	BaseURL   string `json:"base_url"`
	Username  string `json:"username"`
	// Password is kept encrypted and never shown again.
	Password string   `json:"password"`
	Timeout  Duration `json:"timeout,omitempty"`
}

// ProviderConnectionUpdate changes a connection; nil fields stay as they
// are. The password is kept encrypted and never shown.
type ProviderConnectionUpdate struct {
	BaseURL  *string   `json:"base_url,omitempty"`
	Username *string   `json:"username,omitempty"`
	Password *string   `json:"password,omitempty"`
	Timeout  *Duration `json:"timeout,omitempty"`
}

// ProviderConnectionList is one page of connections.
type ProviderConnectionList struct {
	Items []*ProviderConnection `json:"items"`
	Next  string                `json:"next,omitempty"`
}

// NewCredential is what creating a managed credential takes.
type NewCredential struct {
	// ProviderID is the connection to create it through.
	ProviderID string `json:"provider_id"`
	// User is the account at the provider the token is for (Gitea; empty:
	// the connection's own user). n8n keys belong to the owner.
	User   string   `json:"user,omitempty"`
	Name   string   `json:"name"`
	Scopes []string `json:"scopes,omitempty"`
	// ExpiresAt is when it must stop working: keyward's job revokes it
	// then (and n8n itself refuses it).
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// CreatedCredential is a new credential with its token, shown this once.
type CreatedCredential struct {
	Credential *ManagedCredential `json:"credential"`
	// Secret is the token; keyward does not keep it.
	Secret string `json:"secret"`
}

// CredentialList is one page of managed credentials.
type CredentialList struct {
	Items []*ManagedCredential `json:"items"`
	Next  string               `json:"next,omitempty"`
}

// CredentialVerification is the provider's verdict on a token.
type CredentialVerification struct {
	Valid bool `json:"valid"`
	// User is who the token acts as at the provider, when valid.
	User string `json:"user,omitempty"`
	// Problem says why it is not valid.
	Problem string `json:"problem,omitempty"`
}

// ReconcileRequest asks to compare a connection's tokens at the provider
// with keyward's records, and optionally to act on the differences.
type ReconcileRequest struct {
	// Users lists the accounts at the provider whose tokens are compared,
	// besides those of keyward's records and the connection's own user
	// (Gitea; n8n has only the owner's).
	Users []string `json:"users,omitempty"`
	// RevokeUnmanaged revokes the tokens at the provider that keyward
	// does not manage; MarkVanished marks the records whose token is gone
	// at the provider as vanished.
	RevokeUnmanaged bool `json:"revoke_unmanaged,omitempty"`
	MarkVanished    bool `json:"mark_vanished,omitempty"`
}

// ReconcileReport is the drift between a provider and keyward's records.
type ReconcileReport struct {
	// Unmanaged are tokens at the provider keyward does not manage
	// (created behind its back, or orphaned).
	Unmanaged []ExternalToken `json:"unmanaged"`
	// Vanished are records keyward holds as active or rotated whose token
	// is gone at the provider.
	Vanished []*ManagedCredential `json:"vanished"`
	// Revoked and Marked list what was done when asked: the external ids
	// revoked at the provider, the ids of records marked vanished.
	Revoked []string `json:"revoked,omitempty"`
	Marked  []string `json:"marked,omitempty"`
}

// CredentialService manages provider connections and the credentials
// created through them: root for every account, an account admin for its
// own; users may not.
type CredentialService interface {
	CreateProviderConnection(ctx context.Context, n NewProviderConnection) (*ProviderConnection, error)
	// UpdateProviderConnection changes a connection after checking the
	// provider accepts the result (root only).
	UpdateProviderConnection(ctx context.Context, id string, u ProviderConnectionUpdate) (*ProviderConnection, error)
	ProviderConnection(ctx context.Context, id string) (*ProviderConnection, error)
	ProviderConnections(ctx context.Context, accountID string, p Page) (*ProviderConnectionList, error)
	// TestProviderConnection checks that the provider is reachable and
	// accepts the connection's credentials; the error says what is wrong.
	TestProviderConnection(ctx context.Context, id string) error
	DeleteProviderConnection(ctx context.Context, id string) error

	CreateCredential(ctx context.Context, n NewCredential) (*CreatedCredential, error)
	Credential(ctx context.Context, id string) (*ManagedCredential, error)
	Credentials(ctx context.Context, f CredentialFilter, p Page) (*CredentialList, error)
	RevokeCredential(ctx context.Context, id string) (*ManagedCredential, error)
	// RotateCredential creates a replacement and returns it with its
	// token; the old one keeps working for grace, then the lifecycle job
	// revokes it (at once for a zero grace).
	RotateCredential(ctx context.Context, id string, grace time.Duration) (*CreatedCredential, error)
	// VerifyCredential checks token at the connection's provider.
	VerifyCredential(ctx context.Context, providerID, token string) (*CredentialVerification, error)
	Reconcile(ctx context.Context, providerID string, r ReconcileRequest) (*ReconcileReport, error)
}

// Credential events announced to webhooks.
const (
	EventCredentialCreated = "credential.created"
	EventCredentialRevoked = "credential.revoked"
	EventCredentialRotated = "credential.rotated"
	EventCredentialExpired = "credential.expired"
)
