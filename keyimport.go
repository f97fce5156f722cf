package keyward

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Importing keys hashed elsewhere (docs/importing-keys.md). A service that
// kept its keys as SHA-256 digests (a keystore file) hands keyward the
// digests with their identities; keyward stores each as a key whose secret
// it does not know yet, beside its digest. The first time the raw key is
// verified, keyward recognises it by its digest, re-hashes it with the
// pepper (KeyHash) and removes the digest: the key is "adopted", and from
// then on it is a key like any other.

// KeyDigest is the SHA-256 digest of a raw key: the form in which keys
// hashed elsewhere are imported. Unlike a KeyHash it needs no pepper, so a
// stolen digest lets a guess be confirmed; keyward keeps one only until
// the key's first use.
type KeyDigest [sha256.Size]byte

// DigestOf returns the SHA-256 digest of raw.
func DigestOf(raw string) KeyDigest { return sha256.Sum256([]byte(raw)) }

// KeyImport is one key of a Store.ImportKeys batch. Key is stored as
// CreateKey stores it; its Hash is a random placeholder that no raw key
// hashes to (its secret is unknown until first use) and its PepperVersion
// 0. Digest is the SHA-256 digest of its raw key.
type KeyImport struct {
	Key    *Key
	Digest KeyDigest
}

// KeyImportCounts counts the imported keys of a store: those still waiting
// for their first use (their digest is stored) and those adopted since (re-
// hashed with the pepper, digest removed). Deleting a key removes it from
// the counts.
type KeyImportCounts struct {
	Pending int64 `json:"pending"`
	Adopted int64 `json:"adopted"`
}

// Bounds of a KeyImportRequest.
const (
	// MaxImportKeys is the most keys one import request holds; the CLI
	// sends a longer file in several requests.
	MaxImportKeys = 1000
)

// KeyImportEntry is one key of a KeyImportRequest: the SHA-256 hex digest of
// its raw key and who it speaks for.
type KeyImportEntry struct {
	// SHA256 is the lowercase or uppercase hex SHA-256 digest of the raw
	// key (64 characters).
	SHA256 string `json:"sha256"`
	// Name labels the key, as in KeyCreate.
	Name string `json:"name,omitempty"`
	// Role is root, account_admin or user; empty means user when User is
	// set, else account_admin.
	Role Role `json:"role,omitempty"`
	// Account is the id or the name of the key's account (none for root).
	Account string `json:"account,omitempty"`
	// User is the id or the external id (within Account) of the key's
	// user; required for role user.
	User        string          `json:"user,omitempty"`
	Permissions []string        `json:"permissions,omitempty"`
	Meta        json.RawMessage `json:"meta,omitempty"`
	ExpiresAt   *time.Time      `json:"expires_at,omitempty"`
	// Environment is one the deployment's key_prefixes define, as in
	// KeyCreate; empty means DefaultEnvironment.
	Environment string `json:"environment,omitempty"`
	// Line is where the entry was read from (a file's line), named in
	// errors about it; 0 names the entry by its position instead.
	Line int `json:"line,omitempty"`
}

// KeyImportRequest is the input of KeyImportService.ImportKeys.
type KeyImportRequest struct {
	Keys []KeyImportEntry `json:"keys"`
	// DryRun checks every entry as an import would, and writes nothing:
	// the result names no ids. A client that sends a long file in several
	// requests checks them all first, so a bad entry changes nothing.
	DryRun bool `json:"dry_run,omitempty"`
}

// ImportedKey names a key an import created (no id in a dry run).
type ImportedKey struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
	Line int    `json:"line,omitempty"`
}

// KeyImportResult answers a KeyImportRequest: the keys created, in the
// request's order, and the import counts of the store after it.
type KeyImportResult struct {
	Imported []ImportedKey   `json:"imported"`
	Counts   KeyImportCounts `json:"counts"`
}

// KeyImportService imports keys hashed elsewhere. Implemented by
// admin.Keys (in process) and client.Client (over HTTP).
type KeyImportService interface {
	// ImportKeys creates the keys of r, all or none. Root only
	// (EFORBIDDEN). EINVALID for a bad entry (bad hex, a wrong length, a
	// bad role or field), ENOTFOUND for an unknown account or user,
	// ECONFLICT for a digest already imported or given twice; the message
	// names the entry (its Line, or its position).
	ImportKeys(ctx context.Context, r KeyImportRequest) (*KeyImportResult, error)
}

// ParseDigest reads a SHA-256 hex digest, in either case (EINVALID). Its
// errors never quote the value.
func ParseDigest(s string) (KeyDigest, error) {
	var d KeyDigest
	if len(s) != hex.EncodedLen(len(d)) {
		return d, Errorf(EINVALID, "sha256 must be the 64 hex characters of the SHA-256 digest of the raw key, not %d characters (printf '%%s' \"$TOKEN\" | sha256sum)", len(s))
	}
	if _, err := hex.Decode(d[:], []byte(s)); err != nil {
		return d, Errorf(EINVALID, "sha256 is not hex: use the 64 hex characters of the SHA-256 digest of the raw key")
	}
	return d, nil
}
