// Package keyring encrypts data at rest with AES-256-GCM under versioned
// master keys. Every sealed value records the version of the key that sealed
// it, so a new key can be added (and become current) while data sealed under
// older keys still opens; re-encrypting under the newest version is a matter
// of Open followed by Seal.
//
// Three packages with similar names: apikey is the format and hashing of
// API keys, keyring the master keys that encrypt data at rest, keystore
// the static key file of the simple modes.
//
// Master keys are written like peppers, as ENCODING:VALUE where ENCODING is
// hex or base64 (standard or URL alphabet, padded or not), and listed as
// VERSION:ENCODING:VALUE. Each must decode to exactly 32 bytes. No error of
// this package quotes a key.
package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/keyward/keyward"
)

// KeyLen is the length of a master key in bytes (AES-256).
const KeyLen = 32

// NonceLen is the length of the random nonce at the start of every sealed
// value.
const NonceLen = 12

// keyExample shows how to write a new master key; messages point at it.
const keyExample = "hex:$(openssl rand -hex 32)"

// Keyring holds master keys by version. It is safe for concurrent use and
// never changes after New.
type Keyring struct {
	aeads map[int]cipher.AEAD
	// chain holds the audit chain key of each version (AuditChainKey).
	chain   map[int][]byte
	current int
}

// auditChainInfo is the HKDF label of the audit chain keys: a chain key is
// never the master key itself nor any other key derived from it.
const auditChainInfo = "keyward audit chain v1"

// New returns a Keyring holding keys, each written ENCODING:VALUE (see the
// package doc). The highest version is current: Seal uses it. It returns
// EINVALID, naming the version but never the key, when keys is empty, a
// version is not positive, or a key is malformed or not 32 bytes.
func New(keys map[int]keyward.Secret) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, keyward.Errorf(keyward.EINVALID, "no master key configured: add one to master_keys, e.g. 1:%s", keyExample)
	}
	k := &Keyring{aeads: make(map[int]cipher.AEAD, len(keys)), chain: make(map[int][]byte, len(keys))}
	for v, s := range keys {
		if v <= 0 {
			return nil, keyward.Errorf(keyward.EINVALID, "master key version %d is not positive: versions are 1, 2, 3, ...", v)
		}
		raw, err := decodeKey(s)
		if err != nil {
			return nil, keyward.Errorf(keyward.EINVALID, "master key version %d %v", v, err)
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, keyward.WrapError(keyward.EINTERNAL, err, "master key version %d: creating the cipher", v)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, keyward.WrapError(keyward.EINTERNAL, err, "master key version %d: creating the cipher", v)
		}
		k.aeads[v] = aead
		if k.chain[v], err = hkdf.Key(sha256.New, raw, nil, auditChainInfo, KeyLen); err != nil {
			return nil, keyward.WrapError(keyward.EINTERNAL, err, "master key version %d: deriving the audit chain key", v)
		}
		k.current = max(k.current, v)
	}
	return k, nil
}

// Current returns the version Seal uses: the highest one configured.
func (k *Keyring) Current() int { return k.current }

// AuditChainKey returns the key that chains audit entries of chain
// version version: HKDF-SHA256 of master key version with a fixed label.
// EINTERNAL, naming the version, when it is not configured.
func (k *Keyring) AuditChainKey(version int) ([]byte, error) {
	key, ok := k.chain[version]
	if !ok {
		return nil, keyward.Errorf(keyward.EINTERNAL, "master key version %d is not configured: add it back to master_keys to check the audit entries chained with it (configured: %s)", version, k.versionList())
	}
	return key, nil
}

// CurrentAuditChainKey returns the chain key new audit entries are
// chained with: that of the current version.
func (k *Keyring) CurrentAuditChainKey() *keyward.AuditChainKey {
	return &keyward.AuditChainKey{Version: k.current, Key: k.chain[k.current]}
}

// Versions returns the configured versions in increasing order.
func (k *Keyring) Versions() []int {
	vs := make([]int, 0, len(k.aeads))
	for v := range k.aeads {
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return vs
}

// Seal encrypts plaintext (which may be empty) under the current master key
// and returns that key's version and the sealed value: a fresh random
// 12-byte nonce followed by the ciphertext and tag. additionalData is
// authenticated but not stored; Open needs the same bytes, so bind it to
// what the value belongs to (a table and row id) to stop sealed values
// being moved between rows.
func (k *Keyring) Seal(plaintext, additionalData []byte) (version int, sealed []byte, err error) {
	aead := k.aeads[k.current]
	sealed = make([]byte, NonceLen, NonceLen+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(sealed); err != nil {
		return 0, nil, keyward.WrapError(keyward.EINTERNAL, err, "sealing: reading a random nonce")
	}
	return k.current, aead.Seal(sealed, sealed, plaintext, additionalData), nil
}

// Open decrypts a value that Seal returned under version with the same
// additionalData. It returns EINTERNAL when the version is not configured
// (the message says to add it to master_keys) or when the value fails
// authentication: altered, truncated, or sealed with other additional data
// or another key.
func (k *Keyring) Open(version int, sealed, additionalData []byte) ([]byte, error) {
	aead, ok := k.aeads[version]
	if !ok {
		return nil, keyward.Errorf(keyward.EINTERNAL, "master key version %d is not configured: add it to master_keys (configured: %s)", version, k.versionList())
	}
	if len(sealed) < NonceLen+aead.Overhead() {
		return nil, keyward.Errorf(keyward.EINTERNAL, "opening data sealed with master key version %d: it is %d bytes, too short to be sealed data (truncated?)", version, len(sealed))
	}
	plain, err := aead.Open(nil, sealed[:NonceLen], sealed[NonceLen:], additionalData)
	if err != nil {
		return nil, keyward.Errorf(keyward.EINTERNAL, "opening data sealed with master key version %d: authentication failed: it was altered, or sealed with other additional data or a different key under that version", version)
	}
	if plain == nil {
		plain = []byte{}
	}
	return plain, nil
}

func (k *Keyring) versionList() string {
	var b strings.Builder
	for i, v := range k.Versions() {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(v))
	}
	return b.String()
}

// Generate returns a new random master key written hex:VALUE, ready to be
// listed as VERSION:hex:VALUE.
func Generate() (keyward.Secret, error) {
	b := make([]byte, KeyLen)
	if _, err := rand.Read(b); err != nil {
		return "", keyward.WrapError(keyward.EINTERNAL, err, "generating a master key: reading random bytes")
	}
	return keyward.Secret("hex:" + hex.EncodeToString(b)), nil
}

// decodeKey returns the bytes of an ENCODING:VALUE master key. Its errors
// complete a sentence that starts with the key's name and never quote the
// value.
func decodeKey(s keyward.Secret) ([]byte, error) {
	b, err := s.Decode(keyExample)
	if err != nil {
		return nil, err
	}
	if len(b) != KeyLen {
		return nil, fmt.Errorf("is %d bytes: a master key is exactly %d random bytes, e.g. %s", len(b), KeyLen, keyExample)
	}
	return b, nil
}
