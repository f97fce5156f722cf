// Package signature signs and verifies webhook requests by the Standard
// Webhooks scheme (https://www.standardwebhooks.com/): three headers,
// webhook-id, webhook-timestamp (Unix seconds) and webhook-signature, the
// last a space-separated list of "v1,<base64 HMAC-SHA256>" over
// id + "." + timestamp + "." + body, keyed with the endpoint secret
// ("whsec_" + base64 of 24 to 64 random bytes).
//
// Receivers that follow the spec, with any Standard Webhooks library, verify
// what keyward sends; keyward's own tests verify with an implementation
// written from the spec alone.
package signature

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward"
)

// Header names, as the spec writes them; http.Header canonicalises them.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every endpoint secret.
const SecretPrefix = "whsec_"

// Secret lengths in bytes, before base64: the spec allows 24 to 64.
const (
	MinSecretLen = 24
	MaxSecretLen = 64
	// NewSecretLen is the length of a secret NewSecret generates.
	NewSecretLen = 32
)

// DefaultTolerance is how far a timestamp may be from the receiver's clock,
// either way, when Verify is given no tolerance: the spec's five minutes.
const DefaultTolerance = 5 * time.Minute

// version is the only signature scheme produced and checked: symmetric
// HMAC-SHA256. Entries of other schemes in the header are ignored.
const version = "v1"

// NewSecret returns a new random endpoint secret, "whsec_" followed by the
// standard base64 of NewSecretLen bytes.
func NewSecret() (keyward.Secret, error) {
	b := make([]byte, NewSecretLen)
	if _, err := rand.Read(b); err != nil {
		return "", keyward.WrapError(keyward.EINTERNAL, err, "generating a webhook secret: reading random bytes")
	}
	return keyward.Secret(SecretPrefix + base64.StdEncoding.EncodeToString(b)), nil
}

// ParseSecret returns the HMAC key of an endpoint secret written
// "whsec_<standard base64>". It returns EINVALID, never quoting the secret,
// when the prefix is missing, the rest is not standard base64, or it decodes
// to fewer than MinSecretLen or more than MaxSecretLen bytes.
func ParseSecret(s string) ([]byte, error) {
	val, ok := strings.CutPrefix(strings.TrimSpace(s), SecretPrefix)
	if !ok {
		return nil, keyward.Errorf(keyward.EINVALID, "webhook secret must start with %s: leave it empty to have keyward generate one", SecretPrefix)
	}
	b, err := base64.StdEncoding.DecodeString(val)
	if err != nil {
		// The base64 error gives the offending position, not the value,
		// but the message needs neither.
		return nil, keyward.Errorf(keyward.EINVALID, "webhook secret is not %s followed by standard base64: leave it empty to have keyward generate one", SecretPrefix)
	}
	if len(b) < MinSecretLen || len(b) > MaxSecretLen {
		return nil, keyward.Errorf(keyward.EINVALID, "webhook secret is %d bytes: use %d to %d random bytes, e.g. %s$(openssl rand -base64 32)", len(b), MinSecretLen, MaxSecretLen, SecretPrefix)
	}
	return b, nil
}

// Sign returns the webhook-signature header value, "v1,<base64>", for a
// message with id sent at ts (truncated to the second) with body, under the
// secret's HMAC key (from ParseSecret).
func Sign(secret []byte, id string, ts time.Time, body []byte) string {
	return version + "," + base64.StdEncoding.EncodeToString(mac(secret, id, strconv.FormatInt(ts.Unix(), 10), body))
}

// SetHeaders sets the webhook-id, webhook-timestamp and webhook-signature
// headers of a message with id sent at ts with body.
func SetHeaders(h http.Header, secret []byte, id string, ts time.Time, body []byte) {
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, Sign(secret, id, ts, body))
}

// Verify checks that h and body are a message signed with secret (the HMAC
// key from ParseSecret) and sent within tolerance of now, either way
// (DefaultTolerance when tolerance is not positive). Any one of the v1
// signatures in the header may match; entries of other versions are
// ignored. It returns EINVALID when a header is missing or malformed and
// EUNAUTHORIZED when the timestamp is out of tolerance or no signature
// matches; the message says which.
func Verify(secret []byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	id := h.Get(HeaderID)
	tsText := h.Get(HeaderTimestamp)
	sigs := h.Get(HeaderSignature)
	for _, m := range []struct{ name, val string }{{HeaderID, id}, {HeaderTimestamp, tsText}, {HeaderSignature, sigs}} {
		if m.val == "" {
			return keyward.Errorf(keyward.EINVALID, "webhook: missing %s header", m.name)
		}
	}
	sec, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return keyward.Errorf(keyward.EINVALID, "webhook: %s header is not a Unix time in seconds", HeaderTimestamp)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	ts := time.Unix(sec, 0)
	if d := now.Sub(ts); d > tolerance {
		return keyward.Errorf(keyward.EUNAUTHORIZED, "webhook: %s is %s old, more than the %s allowed: the message is stale or replayed (or a clock is wrong)", HeaderTimestamp, d.Truncate(time.Second), tolerance)
	} else if d < -tolerance {
		// ts.Sub(now), not -d: Sub saturates, and negating the minimum
		// duration overflows.
		return keyward.Errorf(keyward.EUNAUTHORIZED, "webhook: %s is %s in the future, more than the %s allowed: check the sender's clock (and that it sends seconds, not milliseconds)", HeaderTimestamp, ts.Sub(now).Truncate(time.Second), tolerance)
	}

	want := mac(secret, id, tsText, body)
	seen := false
	for entry := range strings.FieldsSeq(sigs) {
		v, sig, ok := strings.Cut(entry, ",")
		if !ok || v != version {
			continue
		}
		seen = true
		got, err := base64.StdEncoding.DecodeString(sig)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	if !seen {
		return keyward.Errorf(keyward.EINVALID, "webhook: %s header holds no %s signature", HeaderSignature, version)
	}
	return keyward.Errorf(keyward.EUNAUTHORIZED, "webhook: no signature matches: the body or headers were altered, or it was signed with another secret")
}

// mac returns HMAC-SHA256(secret, id + "." + timestamp + "." + body). The
// timestamp is the header's text, so Verify signs exactly what it received.
func mac(secret []byte, id, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}
