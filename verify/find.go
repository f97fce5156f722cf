package verify

import (
	"context"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// KeyFinder is the part of keyward.Store that finds the key a raw token
// denotes; see the Store methods of the same names.
type KeyFinder interface {
	KeyByHash(ctx context.Context, h keyward.KeyHash) (*keyward.Key, error)
	KeyByDigest(ctx context.Context, d keyward.KeyDigest) (*keyward.Key, error)
}

var _ KeyFinder = keyward.Store(nil)

// hashFinder and digestFinder are the two halves of a KeyFinder.
type (
	hashFinder interface {
		KeyByHash(ctx context.Context, h keyward.KeyHash) (*keyward.Key, error)
	}
	digestFinder interface {
		KeyByDigest(ctx context.Context, d keyward.KeyDigest) (*keyward.Key, error)
	}
)

// FindKey returns the key that the raw token denotes, found in the store
// exactly as Verify finds it on a cache miss: by its peppered hash under
// the current pepper, then under each older one, then by its SHA-256 digest
// (a key imported as a digest that waits for its first use,
// docs/importing-keys.md). A token of any format is looked up, as Verify
// does while imported keys exist, up to MaxImportedKeyLen bytes. Unlike
// Verify it neither caches nor adopts, and it decides nothing about the
// key's status. ENOTFOUND if no key is the token's.
//
// It is how the admin service finds the key of a token reported leaked, so
// that a leak report and verification agree on what a token is.
func FindKey(ctx context.Context, store KeyFinder, hasher *apikey.Hasher, raw string) (*keyward.Key, error) {
	if _, ok := apikey.Parse(raw); !ok && !mayBeImportedKey(raw) {
		return nil, keyward.Errorf(keyward.ENOTFOUND, "no key has this token")
	}
	k, _, err := findKey(ctx, store, store, hasher, hasher.Hash(raw), raw)
	return k, err
}

// findKey finds the key of raw, whose hash under the current pepper is h:
// by h, by its hashes under older peppers, then, with digests, by its
// SHA-256 digest; byDigest says the key was found by digest (an imported
// key waiting for its first use). A key adopted by another instance
// between the two lookups is read by h again. ENOTFOUND if none.
func findKey(ctx context.Context, hashes hashFinder, digests digestFinder, hasher *apikey.Hasher, h keyward.KeyHash, raw string) (k *keyward.Key, byDigest bool, err error) {
	k, err = keyByHashes(ctx, hashes, hasher, h, raw)
	if digests == nil || keyward.ErrorCode(err) != keyward.ENOTFOUND {
		return k, false, err
	}
	k, err = digests.KeyByDigest(ctx, keyward.DigestOf(raw))
	if keyward.ErrorCode(err) == keyward.ENOTFOUND {
		k, err = keyByHashes(ctx, hashes, hasher, h, raw)
		return k, false, err
	}
	return k, err == nil, err
}

// keyByHashes reads the key of hash h from the store, then the hashes of
// raw under older peppers.
func keyByHashes(ctx context.Context, hashes hashFinder, hasher *apikey.Hasher, h keyward.KeyHash, raw string) (*keyward.Key, error) {
	k, err := hashes.KeyByHash(ctx, h)
	for _, v := range hasher.Versions()[1:] {
		if keyward.ErrorCode(err) != keyward.ENOTFOUND {
			break
		}
		k, err = hashes.KeyByHash(ctx, hasher.HashVersion(raw, v))
	}
	return k, err
}

// mayBeImportedKey reports whether raw, not of keyward's format, could be
// an imported key's token: it is not empty and not longer than
// MaxImportedKeyLen.
func mayBeImportedKey(raw string) bool {
	return raw != "" && len(raw) <= MaxImportedKeyLen
}
