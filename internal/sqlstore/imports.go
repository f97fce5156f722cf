package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/keyward/keyward"
)

// ImportKeys inserts the keys of a batch and their digests in one write
// transaction, all or none. Each key is checked and inserted as CreateKey
// does; a digest already stored or given twice is ECONFLICT. The time of
// the import is the first key's CreatedAt.
func (s *Store) ImportKeys(ctx context.Context, ch keyward.Change, imports []keyward.KeyImport) error {
	if len(imports) == 0 {
		return nil
	}
	err := s.write(ctx, ch, func(tx *Tx) error {
		st, err := tx.PrepareContext(ctx, "INSERT INTO key_imports (key_id, digest, imported_at) VALUES (?, ?, ?)")
		if err != nil {
			return s.dbError(err, Conflicts{})
		}
		defer st.Close()
		for _, im := range imports {
			if im.Key == nil {
				return keyward.Errorf(keyward.EINVALID, "an import has no key")
			}
			if err := s.insertKey(ctx, tx, im.Key); err != nil {
				return fmt.Errorf("key %s: %w", im.Key.ID, err)
			}
			if _, err := st.ExecContext(ctx, im.Key.ID, im.Digest[:], FormatTime(im.Key.CreatedAt)); err != nil {
				return s.dbError(err, Conflicts{Unique: fmt.Sprintf("key %s: the digest is already imported", im.Key.ID)})
			}
		}
		return nil
	})
	if err != nil {
		return s.errorf("import %d keys: %w", len(imports), err)
	}
	return nil
}

// KeyByDigest returns the pending imported key with digest d. ENOTFOUND if
// none.
func (s *Store) KeyByDigest(ctx context.Context, d keyward.KeyDigest) (*keyward.Key, error) {
	k, err := s.scanKey(s.r.QueryRowContext(ctx, selectKey+" JOIN key_imports i ON i.key_id = k.id WHERE i.digest = ?", d[:]))
	if err == nil {
		err = s.fillRoles(ctx, s.r, k)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nil, s.errorf("key by digest: %w", keyward.Errorf(keyward.ENOTFOUND, "key not found"))
	}
	if err != nil {
		return nil, s.errorf("key by digest: %w", s.dbError(err, Conflicts{}))
	}
	return k, nil
}

// AdoptKey replaces the digest d of a pending key by hash h of pepper
// version v in one write transaction. The write transactions of a
// database run one after another, so of two adoptions of one digest the
// second finds it gone: ENOTFOUND.
func (s *Store) AdoptKey(ctx context.Context, d keyward.KeyDigest, h keyward.KeyHash, v int) (*keyward.Key, error) {
	if h == (keyward.KeyHash{}) || v <= 0 {
		return nil, keyward.Errorf(keyward.EINVALID, "%s: adopt key: a hash and a positive pepper version are required", s.name)
	}
	var out *keyward.Key
	err := s.WriteUnaudited(ctx, func(tx *Tx) error {
		var id string
		now := FormatTime(time.Now())
		err := tx.QueryRowContext(ctx, "UPDATE key_imports SET digest = NULL, adopted_at = ? WHERE digest = ? RETURNING key_id", now, d[:]).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return keyward.Errorf(keyward.ENOTFOUND, "no imported key waits with that digest: adopted already, or deleted")
		}
		if err != nil {
			return s.dbError(err, Conflicts{})
		}
		if _, err := tx.ExecContext(ctx, "UPDATE keys SET key_hash = ?, pepper_version = ? WHERE id = ?", h[:], v, id); err != nil {
			return s.dbError(err, Conflicts{Unique: "another key has the same hash"})
		}
		out, err = s.keyTx(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, s.errorf("adopt key: %w", err)
	}
	return out, nil
}

// KeyImportCounts counts the pending and adopted imported keys.
func (s *Store) KeyImportCounts(ctx context.Context) (keyward.KeyImportCounts, error) {
	var c keyward.KeyImportCounts
	err := s.r.QueryRowContext(ctx, "SELECT COUNT(digest), COUNT(*) - COUNT(digest) FROM key_imports").Scan(&c.Pending, &c.Adopted)
	if err != nil {
		return c, s.errorf("count imported keys: %w", s.dbError(err, Conflicts{}))
	}
	return c, nil
}
