-- Secret metadata and envelope encryption of audit details: the PostgreSQL
-- twin of sqlite/migrations/0008_secret_meta.sql.
ALTER TABLE keys ADD COLUMN secret_meta bytea;
ALTER TABLE keys ADD COLUMN secret_meta_version integer NOT NULL DEFAULT 0;

ALTER TABLE accounts ADD COLUMN secret_meta bytea;
ALTER TABLE accounts ADD COLUMN secret_meta_version integer NOT NULL DEFAULT 0;

ALTER TABLE audit_log ADD COLUMN wrapped_key bytea NOT NULL DEFAULT '';
