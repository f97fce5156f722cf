// Package keystore holds keyward's simple modes, for services that want
// "one key, or a few" and no database (docs/simple-modes.md):
//
//   - Keystore, a static file mapping the SHA-256 digests of tokens to
//     identities (Load, Parse);
//   - LegacyKey, the single admin key of older deployments, which speaks for
//     identity "owner" with role root (Legacy);
//   - Dev, which lets every request through as identity "dev", and only on
//     a loopback listener (NewDev).
//
// Each implements keyward.KeyVerifier, so the gateway, the forward-auth
// endpoint and the middleware use them as they use the verification engine;
// Chain combines several. Static tokens are exempt from the kw_ key format:
// any printable token verifies (see CheckToken). All three fail closed: a
// file or key that could open the door by mistake is an error at start, and
// a zero value verifies nothing. See docs/simple-modes.md.
//
// Three packages with similar names: apikey is the format and hashing of
// API keys, keyring the master keys that encrypt data at rest, keystore
// the static key file of the simple modes.
package keystore

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/keyward/keyward"
)

// Keystore verifies tokens against a static keystore file. It is
// immutable once parsed and safe for concurrent use. The zero value holds
// no keys.
type Keystore struct {
	entries map[[sha256.Size]byte]*entry
}

type entry struct {
	digest [sha256.Size]byte
	line   int // in the file, for round-trip tests and messages
	key    keyward.Key
}

var _ keyward.KeyVerifier = (*Keystore)(nil)

// Load reads and parses the keystore file at path. See Parse.
func Load(path string) (*Keystore, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	defer f.Close()
	return Parse(f, path)
}

// VerifyKey implements keyward.KeyVerifier. The presented key is hashed
// with SHA-256 and looked up by digest; the digest found is compared with
// it again in constant time. The answer is MALFORMED for an empty key,
// NOT_FOUND for any key that is not in the file (including one that differs
// only in case or white space: keys are never trimmed),
// INSUFFICIENT_PERMISSIONS when the entry lacks a permission asked for, the
// query or the role (root holds all permissions), else VALID with the
// entry's identity, permissions and meta. It returns an error only for a
// request that cannot be verified (VerifyRequest.CompileNeeds).
func (k *Keystore) VerifyKey(_ context.Context, r keyward.VerifyRequest) (*keyward.VerifyResult, error) {
	q, err := r.CompileNeeds(&queries)
	if err != nil {
		return nil, err
	}
	if res, ok := precheck(r.Key); !ok {
		return res, nil
	}
	sum := sha256.Sum256([]byte(r.Key))
	e, ok := k.entries[sum]
	if !ok || subtle.ConstantTimeCompare(e.digest[:], sum[:]) != 1 {
		return notFound(), nil
	}
	return decide(&e.key, r, q), nil
}

// Len returns the number of keys in the keystore.
func (k *Keystore) Len() int { return len(k.entries) }

// IDs returns the ids of the keys, sorted.
func (k *Keystore) IDs() []string {
	ids := make([]string, 0, len(k.entries))
	for _, e := range k.entries {
		ids = append(ids, e.key.ID)
	}
	slices.Sort(ids)
	return ids
}

// FileError lists every problem found in a keystore file, each naming the
// entry it is about. Its message is one line and never quotes a value that
// could be a token.
type FileError struct {
	// Name is the file's name as given to Parse.
	Name string
	// Problems are the problems, in file order.
	Problems []string
}

func (e *FileError) Error() string {
	return fmt.Sprintf("keystore %s: %s", e.Name, strings.Join(e.Problems, "; "))
}
