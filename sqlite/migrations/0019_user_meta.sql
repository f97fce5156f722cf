-- Users as identities (docs/identities.md): a user carries meta (a JSON
-- object, in clear) and secret metadata (a JSON object sealed under master
-- key secret_meta_version with the user's id bound in as additional data;
-- NULL and version 0 when there is none), which the user's keys inherit at
-- verification, a key's own fields winning. updated_at is when the user was
-- last changed; users made before this migration take their creation time.
ALTER TABLE users ADD COLUMN meta TEXT;
ALTER TABLE users ADD COLUMN secret_meta BLOB;
ALTER TABLE users ADD COLUMN secret_meta_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN updated_at TEXT NOT NULL DEFAULT '';
UPDATE users SET updated_at = created_at;
