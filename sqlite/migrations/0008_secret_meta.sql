-- Secret metadata (issue 6, tenant resolution) and envelope encryption of
-- the audit log's details.
--
-- keys.secret_meta and accounts.secret_meta hold a JSON object sealed
-- (AES-256-GCM) under master key secret_meta_version, with the row's id
-- bound in as additional data; NULL (and version 0) when there is none. It
-- is never stored in clear.
--
-- audit_log.wrapped_key is the entry's data key sealed under master key
-- key_version: the details (sealed) are encrypted under that data key. The
-- hash chain covers sealed but neither wrapped_key nor, for such entries,
-- key_version, so keyward rekey can re-wrap data keys under a new master key
-- without breaking the chain. Entries written before this migration keep an
-- empty wrapped_key: their details are sealed directly under key_version.
ALTER TABLE keys ADD COLUMN secret_meta BLOB;
ALTER TABLE keys ADD COLUMN secret_meta_version INTEGER NOT NULL DEFAULT 0;

ALTER TABLE accounts ADD COLUMN secret_meta BLOB;
ALTER TABLE accounts ADD COLUMN secret_meta_version INTEGER NOT NULL DEFAULT 0;

ALTER TABLE audit_log ADD COLUMN wrapped_key BLOB NOT NULL DEFAULT x'';
