package verify

import (
	"context"
	"time"

	"github.com/keyward/keyward"
)

// Imported keys (docs/importing-keys.md). A key imported as a SHA-256
// digest may have any format, so the engine must not answer MALFORMED for a
// token it cannot parse while such keys exist; and until its first use it
// is stored under its digest, not its peppered hash. The engine keeps the
// store's import counts (keyward.KeyImportCounts) in memory and:
//
//   - while no imported key exists, answers MALFORMED for a token that is
//     not of keyward's format without hashing it, as always;
//   - while imported keys exist (pending or adopted), hashes such a token
//     and looks it up like any key: through the cache, with negative
//     entries, so a repeated unknown token costs one lookup per
//     NegativeTTL;
//   - while some wait for their first use (pending), follows a miss of the
//     peppered hash with a lookup by digest and, if the key found verifies,
//     adopts it: AdoptKey re-hashes it with the current pepper and removes
//     the digest, in the store's transaction, inside the collapsed miss.
//
// The counts are read at start, every Config.ImportRefresh (so instances
// that share a store see another's import within that interval), and at
// once through ReloadImports on the instance that imports.

// DefaultImportRefresh is the default of Config.ImportRefresh.
const DefaultImportRefresh = 10 * time.Second

// MaxImportedKeyLen is the longest token looked up as an imported key of a
// foreign format; longer ones are MALFORMED unheard. It is the longest token
// the keystore simple mode accepts (keystore.MaxTokenLength).
const MaxImportedKeyLen = 8192

// ImportLoader is the part of keyward.Store the engine uses for imported
// keys; see the Store methods of the same names.
type ImportLoader interface {
	KeyByDigest(ctx context.Context, d keyward.KeyDigest) (*keyward.Key, error)
	AdoptKey(ctx context.Context, d keyward.KeyDigest, h keyward.KeyHash, v int) (*keyward.Key, error)
	KeyImportCounts(ctx context.Context) (keyward.KeyImportCounts, error)
}

var _ ImportLoader = keyward.Store(nil)

// importState is what the engine knows of the store's imported keys.
type importState struct {
	pending bool // some wait for their first use
	any     bool // some exist, pending or adopted
}

// unknownImports is the state before the counts could be read: imported
// keys may exist, so none is refused for want of a lookup.
var unknownImports = importState{pending: true, any: true}

// ReloadImports reads the store's import counts. The instance that imports
// keys calls it at once; the others do every Config.ImportRefresh. When
// more keys wait than before, it drops the negative cache entries, so a key
// refused a moment before its import verifies at once. Without an
// ImportLoader it does nothing. If the counts cannot be read, those read
// before stay in force.
func (e *Engine) ReloadImports(ctx context.Context) error {
	if e.imports == nil {
		return nil
	}
	e.importMu.Lock()
	defer e.importMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, e.loadTimeout)
	defer cancel()
	c, err := e.imports.KeyImportCounts(ctx)
	if err != nil {
		return err
	}
	if c.Pending > e.importPending {
		e.dropNegatives()
	}
	e.importPending = c.Pending
	e.importState.Store(&importState{pending: c.Pending > 0, any: c.Pending+c.Adopted > 0})
	return nil
}

// mayBeImported reports whether a token that is not of keyward's format
// must be looked up all the same: an imported key may have that format.
func (e *Engine) mayBeImported(raw string) bool {
	return e.imports != nil && mayBeImportedKey(raw) && e.importState.Load().any
}

// importsPending reports whether imported keys may wait for their first
// use.
func (e *Engine) importsPending() bool {
	return e.imports != nil && e.importState.Load().pending
}

// adopt adopts k, the key found by the digest of raw on a miss of its
// peppered hash h, if it verifies: re-hashes it to h with the current
// pepper and removes its digest. A key that does not verify (disabled,
// revoked, expired) is returned as it is, not adopted: it answers its
// status, and is adopted on a use once it verifies (enabled, say).
//
// If the adoption fails, the key is returned all the same (it was found,
// and the store said what it is) and a later load tries again, so no key is
// lost; if another instance adopted it first, it is read by its new hash.
func (e *Engine) adopt(ctx context.Context, h keyward.KeyHash, raw string, k *keyward.Key) (*keyward.Key, error) {
	if k.Status(e.now()) != keyward.DecisionValid {
		return k, nil
	}
	adopted, err := e.imports.AdoptKey(ctx, keyward.DigestOf(raw), h, e.hasher.Current())
	switch keyward.ErrorCode(err) {
	case "":
		e.log.InfoContext(ctx, "imported key adopted: re-hashed with the pepper, its SHA-256 digest removed", "key_id", adopted.ID)
		return adopted, nil
	case keyward.ENOTFOUND:
		return keyByHashes(ctx, e.keys, e.hasher, h, raw)
	default:
		e.log.WarnContext(ctx, "adopting an imported key failed; it verifies by its digest until a later load adopts it", "key_id", k.ID, "err", err)
		return k, nil
	}
}

// dropNegatives removes every negative cache entry.
func (e *Engine) dropNegatives() {
	e.cache.gen.Add(1)
	e.scan(func(s *shard) {
		e.cache.negCount.Add(-int64(len(s.neg)))
		clear(s.neg)
	})
}
