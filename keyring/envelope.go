package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"

	"github.com/keyward/keyward"
)

// Envelope encryption: a value is sealed under a random data key of its own,
// and only the data key is sealed ("wrapped") under a master key. Moving to a
// new master key then re-wraps the 32-byte data key (Rewrap) and leaves the
// sealed value as it is: the audit log's hash chain covers its entries'
// sealed details, so they must never change, yet the master key that
// protects them must be replaceable.

// SealEnvelope encrypts plaintext under a fresh random data key and wraps
// the data key under the current master key. It returns the master key's
// version, the wrapped data key and the sealed plaintext (a random nonce
// followed by ciphertext and tag). additionalData authenticates both the
// sealed value and the wrapped key; OpenEnvelope and Rewrap need the same
// bytes.
func (k *Keyring) SealEnvelope(plaintext, additionalData []byte) (version int, wrapped, sealed []byte, err error) {
	dek := make([]byte, KeyLen)
	if _, err := rand.Read(dek); err != nil {
		return 0, nil, nil, keyward.WrapError(keyward.EINTERNAL, err, "sealing: reading a random data key")
	}
	aead, err := dataAEAD(dek)
	if err != nil {
		return 0, nil, nil, err
	}
	sealed = make([]byte, NonceLen, NonceLen+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(sealed); err != nil {
		return 0, nil, nil, keyward.WrapError(keyward.EINTERNAL, err, "sealing: reading a random nonce")
	}
	sealed = aead.Seal(sealed, sealed, plaintext, additionalData)
	if version, wrapped, err = k.Seal(dek, additionalData); err != nil {
		return 0, nil, nil, err
	}
	return version, wrapped, sealed, nil
}

// OpenEnvelope decrypts a value SealEnvelope returned: it unwraps the data
// key with master key version and opens sealed with it. It returns
// EINTERNAL when the version is not configured, or when the wrapped key or
// the value fails authentication (altered, or with other additional data).
func (k *Keyring) OpenEnvelope(version int, wrapped, sealed, additionalData []byte) ([]byte, error) {
	dek, err := k.Open(version, wrapped, additionalData)
	if err != nil {
		return nil, err
	}
	if len(dek) != KeyLen {
		return nil, keyward.Errorf(keyward.EINTERNAL, "opening enveloped data: the wrapped data key is %d bytes, want %d", len(dek), KeyLen)
	}
	aead, err := dataAEAD(dek)
	if err != nil {
		return nil, err
	}
	if len(sealed) < NonceLen+aead.Overhead() {
		return nil, keyward.Errorf(keyward.EINTERNAL, "opening enveloped data: it is %d bytes, too short to be sealed data (truncated?)", len(sealed))
	}
	plain, err := aead.Open(nil, sealed[:NonceLen], sealed[NonceLen:], additionalData)
	if err != nil {
		return nil, keyward.Errorf(keyward.EINTERNAL, "opening enveloped data: authentication failed: it was altered, or does not belong with its data key or additional data")
	}
	if plain == nil {
		plain = []byte{}
	}
	return plain, nil
}

// Rewrap re-encrypts a value that Seal returned under version (a wrapped
// data key of SealEnvelope, or any other sealed value) under the current
// master key, with the same additionalData. It returns the new version and
// sealed value, and the errors of Open.
func (k *Keyring) Rewrap(version int, sealed, additionalData []byte) (int, []byte, error) {
	plain, err := k.Open(version, sealed, additionalData)
	if err != nil {
		return 0, nil, err
	}
	return k.Seal(plain, additionalData)
}

func dataAEAD(dek []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(dek)
	if err != nil {
		return nil, keyward.WrapError(keyward.EINTERNAL, err, "creating the cipher of a data key")
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, keyward.WrapError(keyward.EINTERNAL, err, "creating the cipher of a data key")
	}
	return aead, nil
}
