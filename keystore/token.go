package keystore

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/permission"
)

// MaxTokenLength is the longest token, in bytes, a simple mode accepts.
// Static and legacy tokens are exempt from the kw_ key format, so they may
// be long (a 4096-character token verifies); what arrives longer than this
// is refused without hashing.
const MaxTokenLength = 8192

// Identities of the simple modes that are not named in a keystore file.
const (
	// LegacyKeyID is the key id of the legacy admin key.
	LegacyKeyID = "owner"
	// DevKeyID is the key id every request gets in dev mode.
	DevKeyID = "dev"
)

// Digest returns the lowercase hex SHA-256 digest of token: the form in
// which a keystore file names a token.
func Digest(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// CheckToken reports why token could never be presented as a credential,
// or nil if it can: it must be non-empty, valid UTF-8, at most
// MaxTokenLength bytes, without control characters and without leading or
// trailing white space. Such a token could not arrive intact in an HTTP
// header, so its digest in a keystore would never match. The error never
// contains the token. It returns EINVALID.
func CheckToken(token string) error {
	switch {
	case token == "":
		return keyward.Errorf(keyward.EINVALID, "the token is empty")
	case len(token) > MaxTokenLength:
		return keyward.Errorf(keyward.EINVALID, "the token is longer than %d bytes", MaxTokenLength)
	case !utf8.ValidString(token):
		return keyward.Errorf(keyward.EINVALID, "the token is not valid UTF-8")
	case strings.ContainsFunc(token, unicode.IsControl):
		return keyward.Errorf(keyward.EINVALID, "the token contains control characters (a newline or a tab)")
	case hasSurroundingSpace(token):
		return keyward.Errorf(keyward.EINVALID, "the token begins or ends with white space")
	}
	return nil
}

func hasSurroundingSpace(s string) bool {
	first, _ := utf8.DecodeRuneInString(s)
	last, _ := utf8.DecodeLastRuneInString(s)
	return unicode.IsSpace(first) || unicode.IsSpace(last)
}

// precheck decides the keys that need no lookup: the empty key is
// MALFORMED (no credential was presented), a key that CheckToken refuses is
// NOT_FOUND (nothing with such a token can be configured, and the key is
// never trimmed into one that is). ok is true when the key must be looked
// up.
func precheck(key string) (res *keyward.VerifyResult, ok bool) {
	if key == "" {
		return &keyward.VerifyResult{Code: keyward.DecisionMalformed}, false
	}
	if CheckToken(key) != nil {
		return notFound(), false
	}
	return nil, true
}

func notFound() *keyward.VerifyResult {
	return &keyward.VerifyResult{Code: keyward.DecisionNotFound}
}

// queries holds the queries the keystore's verifiers parsed: each
// distinct query is parsed once.
var queries permission.Cache

// decide answers for a key that matched: INSUFFICIENT_PERMISSIONS if it
// lacks one of the permissions asked for, does not satisfy the query q
// (r.CompileNeeds) or has a role below r.RequireRole (root holds every
// permission), saying what is missing; else VALID with its identity,
// permissions and meta. The result shares nothing with k.
func decide(k *keyward.Key, r keyward.VerifyRequest, q *permission.Query) *keyward.VerifyResult {
	if ok, missing, role := k.Allows(r.Permissions, q, r.RequireRole); !ok {
		return &keyward.VerifyResult{Code: keyward.DecisionInsufficientPermissions, KeyID: k.ID, MissingPermissions: missing, MissingRole: role}
	}
	c := k.Clone()
	return &keyward.VerifyResult{
		Valid:       true,
		Code:        keyward.DecisionValid,
		KeyID:       c.ID,
		Identity:    keyward.IdentityOf(c, r.Agent),
		Permissions: c.Permissions,
		Meta:        c.Meta,
	}
}
