package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/keyward/keyward"
)

// importConflicts are the messages of the constraints an import can break,
// beside those of the key it inserts.
func importConflicts(k *keyward.Key) conflicts {
	return conflicts{
		"key_imports_digest_key": fmt.Sprintf("key %s: the digest is already imported", k.ID),
		"key_imports_pkey":       fmt.Sprintf("key %s is already imported", k.ID),
	}
}

// ImportKeys inserts the keys of a batch and their digests in one
// transaction, all or none. Each key is checked and inserted as CreateKey
// does; a digest already stored or given twice is ECONFLICT. The time of
// the import is each key's CreatedAt.
func (s *Store) ImportKeys(ctx context.Context, ch keyward.Change, imports []keyward.KeyImport) error {
	if len(imports) == 0 {
		return nil
	}
	stored := make([]*keyward.Key, len(imports))
	err := s.write(ctx, ch, func(tx pgx.Tx) error {
		for i, im := range imports {
			if im.Key == nil {
				return keyward.Errorf(keyward.EINVALID, "an import has no key")
			}
			k, err := s.insertKey(ctx, tx, im.Key)
			if err != nil {
				return fmt.Errorf("key %s: %w", im.Key.ID, err)
			}
			stored[i] = k
			if _, err := tx.Exec(ctx, "INSERT INTO key_imports (key_id, digest, imported_at) VALUES ($1, $2, $3)",
				im.Key.ID, im.Digest[:], im.Key.CreatedAt); err != nil {
				return s.dbError(err, importConflicts(im.Key))
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: import %d keys: %w", len(imports), err)
	}
	for i, im := range imports {
		im.Key.AccountDisabled, im.Key.AccountRateLimits = stored[i].AccountDisabled, stored[i].AccountRateLimits
	}
	return nil
}

// KeyByDigest returns the pending imported key with digest d. ENOTFOUND if
// none.
func (s *Store) KeyByDigest(ctx context.Context, d keyward.KeyDigest) (*keyward.Key, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, selectKey+" JOIN key_imports i ON i.key_id = k.id WHERE i.digest = $1", d[:]))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: key by digest: %w", keyward.Errorf(keyward.ENOTFOUND, "key not found"))
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: key by digest: %w", s.dbError(err, nil))
	}
	return k, nil
}

// adoptKey clears the digest and sets the hash in one statement. Of two
// concurrent adoptions of one digest, the second waits for the first's
// row lock, then finds the digest gone (read committed re-checks the
// WHERE clause on the updated row) and changes nothing.
const adoptKey = `WITH i AS (
	UPDATE key_imports SET digest = NULL, adopted_at = now() WHERE digest = $1 RETURNING key_id
)
UPDATE keys AS k SET key_hash = $2, pepper_version = $3 FROM i WHERE k.id = i.key_id` + returningKey

// AdoptKey replaces the digest d of a pending key by hash h of pepper
// version v, atomically. ENOTFOUND if no key waits with digest d.
func (s *Store) AdoptKey(ctx context.Context, d keyward.KeyDigest, h keyward.KeyHash, v int) (*keyward.Key, error) {
	if h == (keyward.KeyHash{}) || v <= 0 {
		return nil, keyward.Errorf(keyward.EINVALID, "postgres: adopt key: a hash and a positive pepper version are required")
	}
	k, err := scanKey(s.pool.QueryRow(ctx, adoptKey, d[:], h[:], v))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: adopt key: %w", keyward.Errorf(keyward.ENOTFOUND, "no imported key waits with that digest: adopted already, or deleted"))
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: adopt key: %w", s.dbError(err, conflicts{"keys_hash_key": "another key has the same hash"}))
	}
	return k, nil
}

// KeyImportCounts counts the pending and adopted imported keys.
func (s *Store) KeyImportCounts(ctx context.Context) (keyward.KeyImportCounts, error) {
	var c keyward.KeyImportCounts
	err := s.pool.QueryRow(ctx, "SELECT count(digest), count(*) - count(digest) FROM key_imports").Scan(&c.Pending, &c.Adopted)
	if err != nil {
		return c, fmt.Errorf("postgres: count imported keys: %w", s.dbError(err, nil))
	}
	return c, nil
}
