-- Keys imported as SHA-256 digests (docs/importing-keys.md).
--
-- An imported key is a row of keys like any other (list, get, revoke and
-- audit work on it); until its first use its key_hash is a random
-- placeholder that no raw key hashes to, and its pepper_version 0. A row
-- here marks a key as imported: digest is the SHA-256 digest of its raw key
-- while it waits for its first use, and NULL once the key is adopted
-- (re-hashed with the pepper). Rows of adopted keys stay, without digest,
-- so every instance knows keys of a foreign format exist (see
-- Store.KeyImportCounts). Deleting the key deletes its row.
CREATE TABLE key_imports (
	key_id      TEXT NOT NULL PRIMARY KEY REFERENCES keys (id) ON DELETE CASCADE,
	digest      BLOB UNIQUE CHECK (digest IS NULL OR length(digest) = 32),
	imported_at TEXT NOT NULL,
	adopted_at  TEXT,
	CHECK ((digest IS NULL) = (adopted_at IS NOT NULL))
) STRICT;
