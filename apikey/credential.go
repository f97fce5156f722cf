package apikey

import (
	"net/http"
	"strings"

	"github.com/keyward/keyward"
)

// Header names a credential may arrive in.
const (
	HeaderAuthorization = "Authorization"
	HeaderAPIKey        = "X-API-Key"
)

// Credential errors. Both are EUNAUTHORIZED: the request carries no usable
// credential.
var (
	// ErrNoCredential means neither header was sent.
	ErrNoCredential = keyward.Errorf(keyward.EUNAUTHORIZED, `no API key: send it as "Authorization: Bearer <key>" or "X-API-Key: <key>"`)
	// ErrAmbiguousCredential means the two headers disagree.
	ErrAmbiguousCredential = keyward.Errorf(keyward.EUNAUTHORIZED, "Authorization and X-API-Key carry different keys: send one")
	// ErrBadAuthorization means Authorization is not a Bearer credential.
	ErrBadAuthorization = keyward.Errorf(keyward.EUNAUTHORIZED, `Authorization must be "Bearer <key>"`)
)

// FromRequest extracts the credential of r from its Authorization: Bearer
// or X-API-Key header. It never reads the query string: keys in URLs end up
// in access logs. See FromHeaders.
func FromRequest(r *http.Request) (string, error) {
	return FromHeaders(r.Header)
}

// FromHeaders extracts a credential from headers. Both headers present with
// different values is an error; each header must appear at most once.
func FromHeaders(h http.Header) (string, error) {
	auths, keys := h.Values(HeaderAuthorization), h.Values(HeaderAPIKey)
	if len(auths) > 1 || len(keys) > 1 {
		return "", ErrAmbiguousCredential
	}
	var bearer, key string
	if len(auths) == 1 {
		scheme, token, ok := strings.Cut(strings.TrimSpace(auths[0]), " ")
		token = strings.TrimSpace(token)
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			return "", ErrBadAuthorization
		}
		bearer = token
	}
	if len(keys) == 1 {
		key = strings.TrimSpace(keys[0])
		if key == "" {
			return "", ErrNoCredential
		}
	}
	switch {
	case bearer != "" && key != "" && bearer != key:
		return "", ErrAmbiguousCredential
	case bearer != "":
		return bearer, nil
	case key != "":
		return key, nil
	}
	return "", ErrNoCredential
}
