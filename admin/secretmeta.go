package admin

import (
	"bytes"
	"encoding/json"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/permission"
)

// Secret metadata (tenant resolution): a JSON object on a key or an account,
// sealed under the master keys with the object's id as additional data,
// returned in clear only by VerifyKey to callers holding
// keyward.PermissionVerifySecrets (or root). Reads, lists, logs, audit
// details and webhook events say at most that it was set or removed.

// secretMetaInput is a validated change of secret metadata: plain is the
// compacted JSON object to seal, or nil with clear set to remove it.
type secretMetaInput struct {
	plain []byte
	clear bool
}

// changes reports whether the input changes anything.
func (in secretMetaInput) changes() bool { return in.plain != nil || in.clear }

// auditValue is what audit details (and the webhook events made from them)
// say of the change: "set", "removed" or nothing.
func (in secretMetaInput) auditValue() string {
	switch {
	case in.plain != nil:
		return "set"
	case in.clear:
		return "removed"
	}
	return ""
}

// parseSecretMeta validates a secret_meta input (set, or cleared with
// clear): a JSON object of at most keyward.MaxSecretMetaBytes once
// compacted. Setting and clearing at once is EINVALID.
func parseSecretMeta(m *json.RawMessage, clear bool) (secretMetaInput, error) {
	if m == nil || len(bytes.TrimSpace(*m)) == 0 {
		return secretMetaInput{clear: clear}, nil
	}
	if clear {
		return secretMetaInput{}, keyward.Errorf(keyward.EINVALID, "set secret_meta or clear_secret_meta, not both")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(*m, &obj); err != nil || obj == nil {
		return secretMetaInput{}, keyward.Errorf(keyward.EINVALID, "secret_meta must be a JSON object, such as {\"dsn\": \"postgres://...\"}; use clear_secret_meta to remove it")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, *m); err != nil {
		return secretMetaInput{}, keyward.Errorf(keyward.EINVALID, "secret_meta must be a JSON object")
	}
	if buf.Len() > keyward.MaxSecretMetaBytes {
		return secretMetaInput{}, keyward.Errorf(keyward.EINVALID, "secret_meta is %d bytes compacted, more than the %d allowed: keep secrets there and other data elsewhere", buf.Len(), keyward.MaxSecretMetaBytes)
	}
	return secretMetaInput{plain: buf.Bytes()}, nil
}

// checkSecretMetaWriter refuses a user key: the services that read secret
// metadata trust it (it resolves the tenant), so only root and account
// admins (for their account's keys) may set it.
func checkSecretMetaWriter(id *keyward.Identity, in secretMetaInput) error {
	if in.changes() && id.Role == keyward.RoleUser {
		return keyward.Errorf(keyward.EFORBIDDEN, "a user key may not set secret_meta: services resolve tenants with it, so only root and account admins may")
	}
	return nil
}

// sealSecretMeta seals plain for the object whose additional data is ad.
func (s recorder) sealSecretMeta(plain, ad []byte) (*keyward.Sealed, error) {
	if s.sealer == nil {
		return nil, keyward.Errorf(keyward.EINVALID, "secret_meta cannot be stored: this keyward has no master key (configure master_keys)")
	}
	v, sealed, err := s.sealer.Seal(plain, ad)
	if err != nil {
		return nil, keyward.WrapError(keyward.EINTERNAL, err, "admin: sealing secret_meta")
	}
	return &keyward.Sealed{Version: v, Data: sealed}, nil
}

// apply returns the sealed value that replaces cur under in: cur when in
// changes nothing, nil when it clears.
func (s recorder) apply(in secretMetaInput, cur *keyward.Sealed, ad []byte) (*keyward.Sealed, error) {
	switch {
	case in.plain != nil:
		return s.sealSecretMeta(in.plain, ad)
	case in.clear:
		return nil, nil
	}
	return cur, nil
}

// openSecretMeta opens a sealed secret metadata; nil for none.
func (s recorder) openSecretMeta(v *keyward.Sealed, ad []byte, what string) (json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	if s.sealer == nil {
		return nil, keyward.Errorf(keyward.EINTERNAL, "admin: the secret_meta of %s is sealed but no master key is configured", what)
	}
	plain, err := s.sealer.Open(v.Version, v.Data, ad)
	if err != nil {
		return nil, keyward.WrapError(keyward.EINTERNAL, err, "admin: opening the secret_meta of %s", what)
	}
	return plain, nil
}

// mayReadSecrets reports whether id may receive secret metadata from
// VerifyKey.
func mayReadSecrets(id *keyward.Identity) bool {
	return isRoot(id) || permission.Holds(id.Permissions, keyward.PermissionVerifySecrets)
}

// revealSecretMeta fills the secret metadata of k (its own laid over its
// user's, keyward.MergeMeta) and of its account into a valid result.
func (s *Keys) revealSecretMeta(out *keyward.VerifyResult, k *keyward.Key) error {
	own, err := s.openSecretMeta(k.SecretMeta, keyward.KeySecretMetaAD(k.ID), "key "+k.ID)
	if err != nil {
		return err
	}
	user, err := s.openSecretMeta(k.UserSecretMeta, keyward.UserSecretMetaAD(k.UserID), "user "+k.UserID)
	if err != nil {
		return err
	}
	out.SecretMeta = keyward.MergeMeta(user, own)
	out.AccountSecretMeta, err = s.openSecretMeta(k.AccountSecretMeta, keyward.AccountSecretMetaAD(k.AccountID), "account "+k.AccountID)
	return err
}

// keyUpdateDetails is a KeyUpdate as audit details: its secret_meta says
// "set" or "removed", never the value (the shallower field hides the
// embedded one from encoding/json).
type keyUpdateDetails struct {
	keyward.KeyUpdate
	SecretMeta string `json:"secret_meta,omitempty"`
}

// userUpdateDetails is a UserUpdate as audit details, like
// keyUpdateDetails.
type userUpdateDetails struct {
	keyward.UserUpdate
	SecretMeta string `json:"secret_meta,omitempty"`
}

// accountUpdateDetails is an AccountUpdate as audit details, like
// keyUpdateDetails.
type accountUpdateDetails struct {
	keyward.AccountUpdate
	SecretMeta string `json:"secret_meta,omitempty"`
}
