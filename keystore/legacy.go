package keystore

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"unicode/utf8"

	"github.com/keyward/keyward"
)

// MinLegacyKeyLength is the length, in characters, below which Legacy
// warns that the legacy key is guessable.
const MinLegacyKeyLength = 16

// LegacyKey verifies the single admin key of older deployments
// (KEYWARD_ADMIN_API_KEY): it speaks for identity "owner" (LegacyKeyID)
// with role root. It keeps only the key's SHA-256 digest and compares
// digests in constant time, so neither the key's contents nor its length
// leak through timing. Safe for concurrent use. The zero value verifies
// nothing: VerifyKey returns an error.
type LegacyKey struct {
	digest [sha256.Size]byte
	key    *keyward.Key
}

var _ keyward.KeyVerifier = (*LegacyKey)(nil)

// Legacy returns the verifier of the legacy admin key. An empty key is an
// error (unset the variable to turn the legacy key off), and so is a key
// CheckToken refuses: with white space around it or a control character in
// it, it could never be presented. A key shorter than MinLegacyKeyLength
// characters is accepted with a warning on logger (nil means
// slog.Default()); neither the key nor its length is ever logged. Errors
// are EINVALID and never contain the key.
func Legacy(key keyward.Secret, logger *slog.Logger) (*LegacyKey, error) {
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("component", "keystore")
	k := key.Reveal()
	if k == "" {
		return nil, keyward.Errorf(keyward.EINVALID, "the legacy admin key is empty: set it to a long random value (openssl rand -hex 32), or unset it to turn the legacy key off")
	}
	if err := CheckToken(k); err != nil {
		return nil, keyward.Errorf(keyward.EINVALID, "the legacy admin key cannot be presented in an HTTP header, so it would never match: %s; fix the value (often a trailing newline read from a file)", keyward.ErrorMessage(err))
	}
	if utf8.RuneCountInString(k) < MinLegacyKeyLength {
		logger.Warn("the legacy admin key is shorter than 16 characters: it can be guessed; use a long random value such as the output of openssl rand -hex 32")
	}
	logger.Info("legacy admin key enabled", "key_id", LegacyKeyID, "role", keyward.RoleRoot)
	return &LegacyKey{
		digest: sha256.Sum256([]byte(k)),
		key:    &keyward.Key{ID: LegacyKeyID, Role: keyward.RoleRoot},
	}, nil
}

// VerifyKey implements keyward.KeyVerifier: VALID with identity "owner",
// role root, for the legacy key (root holds every permission); MALFORMED for
// an empty key; NOT_FOUND for anything else, including the key with a
// different case or white space around it. It returns an error only for a
// request that cannot be verified (VerifyRequest.CompileNeeds) and on the
// zero LegacyKey.
func (l *LegacyKey) VerifyKey(_ context.Context, r keyward.VerifyRequest) (*keyward.VerifyResult, error) {
	if l.key == nil {
		return nil, keyward.Errorf(keyward.EINTERNAL, "keystore: LegacyKey not made by keystore.Legacy")
	}
	q, err := r.CompileNeeds(&queries)
	if err != nil {
		return nil, err
	}
	if res, ok := precheck(r.Key); !ok {
		return res, nil
	}
	sum := sha256.Sum256([]byte(r.Key))
	if subtle.ConstantTimeCompare(sum[:], l.digest[:]) != 1 {
		return notFound(), nil
	}
	return decide(l.key, r, q), nil
}
