-- Keys imported as SHA-256 digests (docs/importing-keys.md): the
-- PostgreSQL twin of sqlite/migrations/0009_key_imports.sql.
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
	key_id      text        NOT NULL,
	digest      bytea,
	imported_at timestamptz NOT NULL,
	adopted_at  timestamptz,
	CONSTRAINT key_imports_pkey PRIMARY KEY (key_id),
	CONSTRAINT key_imports_key_fkey FOREIGN KEY (key_id) REFERENCES keys (id) ON DELETE CASCADE,
	CONSTRAINT key_imports_digest_key UNIQUE (digest),
	CONSTRAINT key_imports_digest_length CHECK (digest IS NULL OR length(digest) = 32),
	CONSTRAINT key_imports_adopted CHECK ((digest IS NULL) = (adopted_at IS NOT NULL))
);
