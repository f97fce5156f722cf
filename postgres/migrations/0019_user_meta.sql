-- Users as identities: the PostgreSQL twin of
-- sqlite/migrations/0019_user_meta.sql.
ALTER TABLE users ADD COLUMN meta jsonb;
ALTER TABLE users ADD COLUMN secret_meta bytea;
ALTER TABLE users ADD COLUMN secret_meta_version integer NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN updated_at timestamptz;
UPDATE users SET updated_at = created_at;
ALTER TABLE users ALTER COLUMN updated_at SET NOT NULL;
