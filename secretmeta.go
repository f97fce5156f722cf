package keyward

import (
	"context"
	"slices"
)

// PermissionVerifySecrets lets a non-root key that may verify keys also
// receive the secret metadata of the keys it verifies (VerifyResult's
// SecretMeta and AccountSecretMeta). It implies the right to verify.
const PermissionVerifySecrets = "keys:verify_secrets"

// MaxSecretMetaBytes bounds the secret metadata of a key or an account: a
// JSON object of at most this many bytes, compacted.
const MaxSecretMetaBytes = 8 << 10

// Sealed is a value encrypted at rest (AES-256-GCM) under master key
// Version. What it was sealed for is bound into it as additional data (see
// KeySecretMetaAD), so it opens only there.
type Sealed struct {
	Version int
	Data    []byte
}

// Clone returns a deep copy of s; nil stays nil.
func (s *Sealed) Clone() *Sealed {
	if s == nil {
		return nil
	}
	return &Sealed{Version: s.Version, Data: slices.Clone(s.Data)}
}

// KeySecretMetaAD is the additional data of a key's sealed secret
// metadata: it opens only as the secret metadata of that key.
func KeySecretMetaAD(keyID string) []byte { return []byte("key_secret_meta\x00" + keyID) }

// AccountSecretMetaAD is the additional data of an account's sealed secret
// metadata: it opens only as the secret metadata of that account.
func AccountSecretMetaAD(accountID string) []byte {
	return []byte("account_secret_meta\x00" + accountID)
}

// UserSecretMetaAD is the additional data of a user's sealed secret
// metadata: it opens only as the secret metadata of that user.
func UserSecretMetaAD(userID string) []byte { return []byte("user_secret_meta\x00" + userID) }

// SealedKind names a column of values sealed at rest under master keys,
// which a rekey re-encrypts under the newest master key.
type SealedKind string

// The kinds of sealed values.
const (
	// SealedKeySecretMeta is keys.secret_meta; additional data
	// KeySecretMetaAD(id).
	SealedKeySecretMeta SealedKind = "key_secret_meta"
	// SealedAccountSecretMeta is accounts.secret_meta; additional data
	// AccountSecretMetaAD(id).
	SealedAccountSecretMeta SealedKind = "account_secret_meta"
	// SealedUserSecretMeta is users.secret_meta; additional data
	// UserSecretMetaAD(id).
	SealedUserSecretMeta SealedKind = "user_secret_meta"
	// SealedWebhookSecret is webhook_endpoints.secret; additional data
	// WebhookSecretAD(id).
	SealedWebhookSecret SealedKind = "webhook_secret"
	// SealedProviderPassword is provider_connections.password;
	// additional data ProviderPasswordAD of the row's id, kind, base URL
	// and user name (LegacyProviderPasswordAD(id) for a row sealed before
	// that binding, which Reseal passes even under keep, to be bound).
	SealedProviderPassword SealedKind = "provider_password"
	// SealedAuditKey is the data key of an audit entry's details
	// (envelope encryption), wrapped by a master key; the id is the
	// entry's Seq in decimal, the additional data the entry's
	// DetailsAD.
	// Rewrapping it leaves the sealed details, and so the hash chain,
	// untouched.
	SealedAuditKey SealedKind = "audit_key"
	// SealedAuditDetails are the details of audit entries written before
	// envelope encryption, sealed directly under a master key. The hash
	// chain covers them, so they cannot be re-encrypted: Reseal never
	// passes them, and SealedCounts counts them so an operator knows
	// which master key versions must stay configured to read them.
	SealedAuditDetails SealedKind = "audit_details"
)

// ResealKinds are the kinds Reseal re-encrypts, in the order a rekey walks
// them.
var ResealKinds = []SealedKind{SealedKeySecretMeta, SealedAccountSecretMeta, SealedUserSecretMeta, SealedWebhookSecret, SealedProviderPassword, SealedAuditKey}

// SealedValue is one value sealed at rest, as Reseal passes it.
type SealedValue struct {
	Kind SealedKind
	// ID is the row's id (an audit entry's Seq in decimal).
	ID      string
	Version int
	Data    []byte
	// AD is the additional data the value is to be sealed with, and was
	// sealed with unless LegacyAD is set.
	AD []byte
	// LegacyAD, when set, is the additional data the value was sealed
	// with before its kind bound more (a provider password sealed with
	// LegacyProviderPasswordAD): open it with LegacyAD, seal it with AD.
	LegacyAD []byte
}

// ResealFunc re-encrypts one value: it returns the value sealed under
// another version with the same additional data. An error stops Reseal;
// the batch it was in is rolled back.
type ResealFunc func(v SealedValue) (*Sealed, error)

// ResealBatch is the most values Reseal rewrites in one transaction.
const ResealBatch = 200

// SealedCount is how many values of a kind are sealed under a version.
type SealedCount struct {
	Kind    SealedKind `json:"kind"`
	Version int        `json:"version"`
	Count   int64      `json:"count"`
}

// SealedStore is the part of Store that walks the values sealed at rest,
// for re-encrypting them under a new master key (keyward rekey).
type SealedStore interface {
	// Reseal passes every value of kind sealed under a version other than
	// keep to fn and stores what fn returns in its place, ResealBatch
	// values per transaction. A value changed since it was read (a write
	// racing the rekey) is left as it is. It returns how many values it
	// rewrote; a second call with the same keep rewrites none. Provider
	// passwords not yet bound (SealedValue.LegacyAD) are passed under any
	// version, and stored bound. EINVALID
	// for a kind not in ResealKinds.
	Reseal(ctx context.Context, kind SealedKind, keep int, fn ResealFunc) (int64, error)
	// SealedCounts counts the sealed values of every kind by master key
	// version: the kinds of ResealKinds in order, then
	// SealedAuditDetails, each by increasing version. Kinds and versions
	// with no values are left out.
	SealedCounts(ctx context.Context) ([]SealedCount, error)
}

// SealedAD returns the additional data of the value of kind in row id:
// what it was sealed with. An audit key's (its entry's DetailsAD) and a
// provider password's (ProviderPasswordAD) need more of the row than its
// id: nil here, and stores fill SealedValue.AD themselves.
func SealedAD(kind SealedKind, id string) []byte {
	switch kind {
	case SealedKeySecretMeta:
		return KeySecretMetaAD(id)
	case SealedAccountSecretMeta:
		return AccountSecretMetaAD(id)
	case SealedUserSecretMeta:
		return UserSecretMetaAD(id)
	case SealedWebhookSecret:
		return WebhookSecretAD(id)
	}
	return nil
}

// ValidateRecord returns EINVALID, naming what, unless s is nil (no value)
// or has the shape of a sealed value: a positive version and some bytes.
func (s *Sealed) ValidateRecord(what string) error {
	if s != nil && (s.Version <= 0 || len(s.Data) == 0) {
		return Errorf(EINVALID, "%s must be sealed under a master key version before it is stored", what)
	}
	return nil
}
