// Package apikey defines the format of keyward's API keys: generation,
// parsing with checksum, the display start, ids, and hashing with versioned
// peppers.
//
// Three packages with similar names: apikey is the format and hashing of
// API keys, keyring the master keys that encrypt data at rest, keystore
// the static key file of the simple modes.
//
// A key is prefix + "_" + 43 base62 characters of randomness (256 bits) + 6
// base62 characters of CRC32 over everything before them:
//
//	kw_user_3vQb7Hq0N8y4J2kLm9XcA1sT5uVwYz0bC6dE8fG2hJ4kL0mN1pQ
//
// The checksum lets Parse reject typos and garbage before any hashing or
// lookup, and lets secret scanners recognise keyward keys.
package apikey

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"hash/crc32"
	"io"
	"time"
	"unsafe"

	"github.com/keyward/keyward"
)

// Key format constants.
const (
	// RandomLen is the number of base62 characters of randomness:
	// 43 * log2(62) = 256.03 bits.
	RandomLen = 43
	// ChecksumLen is the number of base62 characters of the CRC32.
	ChecksumLen = 6
	// BodyLen is the length of the part after the last underscore.
	BodyLen = RandomLen + ChecksumLen
	// MaxLen is the longest credential keyward will even look at.
	MaxLen = 128
	// StartLen is how many body characters Start keeps.
	StartLen = 4
)

// Default prefixes by tier.
const (
	PrefixRoot         = "kw_root"
	PrefixAccountAdmin = "kw_acct"
	PrefixUser         = "kw_user"
)

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// DefaultPrefix returns the prefix for keys of role r in the default
// environment of a deployment that configures no prefixes (see
// Prefixes); accountPrefix, when set, replaces the default for user keys.
func DefaultPrefix(r keyward.Role, accountPrefix string) string {
	if accountPrefix != "" && r != keyward.RoleRoot && r != keyward.RoleAccountAdmin {
		return accountPrefix
	}
	return DefaultPrefixes().tier(r)
}

// ValidPrefix reports whether p matches [a-z][a-z0-9_]{0,18}[a-z0-9].
func ValidPrefix(p string) bool {
	if len(p) < 2 || len(p) > 20 {
		return false
	}
	if p[0] < 'a' || p[0] > 'z' {
		return false
	}
	for i := 1; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' && i < len(p)-1) {
			return false
		}
	}
	return true
}

// Generate returns a new random key with the given prefix.
func Generate(prefix string) (keyward.Secret, error) {
	return generate(rand.Reader, prefix)
}

func generate(r io.Reader, prefix string) (keyward.Secret, error) {
	if !ValidPrefix(prefix) {
		return "", keyward.Errorf(keyward.EINVALID, "key prefix %q must match [a-z][a-z0-9_]{0,18}[a-z0-9]", prefix)
	}
	b := make([]byte, 0, len(prefix)+1+BodyLen)
	b = append(b, prefix...)
	b = append(b, '_')
	var err error
	if b, err = appendRandom(b, r, RandomLen); err != nil {
		return "", fmt.Errorf("apikey: generate: %w", err)
	}
	b = appendChecksum(b, crc32.ChecksumIEEE(b))
	return keyward.Secret(b), nil
}

// appendRandom appends n uniformly random base62 characters read from r,
// rejecting bytes >= 248 so every character is unbiased.
func appendRandom(b []byte, r io.Reader, n int) ([]byte, error) {
	var buf [64]byte
	for n > 0 {
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			return nil, err
		}
		for _, c := range buf {
			if c >= 248 || n == 0 {
				continue
			}
			b = append(b, alphabet[c%62])
			n--
		}
	}
	return b, nil
}

func appendChecksum(b []byte, sum uint32) []byte {
	var c [ChecksumLen]byte
	for i := ChecksumLen - 1; i >= 0; i-- {
		c[i] = alphabet[sum%62]
		sum /= 62
	}
	return append(b, c[:]...)
}

// Parse checks that raw has the key format and a correct checksum and
// returns its prefix. It allocates nothing and touches no storage; ok is
// false for anything malformed.
func Parse(raw string) (prefix string, ok bool) {
	if len(raw) > MaxLen || len(raw) < 3+BodyLen {
		return "", false
	}
	sep := len(raw) - BodyLen - 1
	if raw[sep] != '_' {
		return "", false
	}
	prefix = raw[:sep]
	if !ValidPrefix(prefix) {
		return "", false
	}
	// The body's characters are ORed together and checked once: a byte
	// outside the alphabet is -1 in the table, which sets the sign bit.
	var bad int8
	body := raw[sep+1 : len(raw)-ChecksumLen]
	for i := 0; i < len(body); i++ {
		bad |= base62Values[body[i]]
	}
	var sum uint64
	for i := len(raw) - ChecksumLen; i < len(raw); i++ {
		v := base62Values[raw[i]]
		bad |= v
		sum = sum*62 + uint64(uint8(v))
	}
	if bad < 0 || sum != uint64(checksum(raw[:len(raw)-ChecksumLen])) {
		return "", false
	}
	return prefix, true
}

// base62Values maps a byte to its value in alphabet, -1 to a byte outside
// it. A table rather than comparisons: a key's characters are random, so
// the branches of comparisons would be mispredicted on most of them (Parse
// took 236 ns with them, about as long as the key's HMAC).
var base62Values = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = int8(i)
	}
	return t
}()

func base62Value(c byte) int { return int(base62Values[c]) }

// Start returns the display start of a well-formed key: its prefix, the
// underscore and the first StartLen body characters. It returns "" for a
// malformed key.
func Start(raw string) string {
	prefix, ok := Parse(raw)
	if !ok {
		return ""
	}
	return raw[:len(prefix)+1+StartLen]
}

// NewID returns a new public id: kind + "_" + 10 base62 characters of the
// time in milliseconds + 12 random base62 characters, so ids sort by
// creation time and a page cursor is simply the last id seen.
func NewID(kind string) string {
	b := make([]byte, 0, len(kind)+1+22)
	b = append(b, kind...)
	b = append(b, '_')
	b = appendTime(b, uint64(time.Now().UnixMilli()))
	b, err := appendRandom(b, rand.Reader, 12)
	if err != nil {
		// crypto/rand.Read never fails on supported platforms (Go 1.24+).
		panic("apikey: crypto/rand failed: " + err.Error())
	}
	return string(b)
}

// NewToken returns a new random token: 32 random bytes, base64url-encoded
// (the console's session ids and CSRF tokens, the portal's links and
// cookies).
func NewToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

func appendTime(b []byte, ms uint64) []byte {
	var c [10]byte
	for i := len(c) - 1; i >= 0; i-- {
		c[i] = alphabet[ms%62]
		ms /= 62
	}
	return append(b, c[:]...)
}

// checksum is crc32.ChecksumIEEE over a string. It views the string's bytes
// in place rather than converting (which would allocate and copy on the
// verification hot path); crc32 only reads them, so the string's
// immutability is kept. The hardware-accelerated crc32 is 3x faster here
// than a byte-at-a-time table loop.
func checksum(s string) uint32 {
	return crc32.ChecksumIEEE(unsafe.Slice(unsafe.StringData(s), len(s)))
}

// LooksLikeKey reports whether s has the shape of a key whatever its
// checksum says: it ends in an underscore and BodyLen base62 characters,
// after at least one character. Every key Parse accepts looks like one, a
// key with a typo too (it is still nearly all secret); no id of NewID
// does. Text a client sent is checked with it before it is echoed or
// logged (Redact).
func LooksLikeKey(s string) bool {
	if len(s) < 2+BodyLen || s[len(s)-BodyLen-1] != '_' {
		return false
	}
	for i := len(s) - BodyLen; i < len(s); i++ {
		if base62Value(s[i]) < 0 {
			return false
		}
	}
	return true
}

// RedactedKey replaces a key in text Redact returns.
const RedactedKey = "[redacted key]"

// Redact returns s with every word (a run of letters, digits and
// underscores) that LooksLikeKey replaced by RedactedKey. It returns s
// itself, without allocating, when there is none.
func Redact(s string) string {
	var b []byte
	last := 0 // s[last:start] is yet to be copied to b
	for start := 0; start < len(s); {
		if !isWordByte(s[start]) {
			start++
			continue
		}
		end := start
		for end < len(s) && isWordByte(s[end]) {
			end++
		}
		if LooksLikeKey(s[start:end]) {
			b = append(append(b, s[last:start]...), RedactedKey...)
			last = end
		}
		start = end
	}
	if b == nil {
		return s
	}
	return string(append(b, s[last:]...))
}

func isWordByte(c byte) bool { return c == '_' || base62Value(c) >= 0 }
