-- Bindings keyed by the master keys (issue 13, findings 7 and 8).
--
-- password_bound says a provider connection's password is sealed with
-- keyward.ProviderPasswordAD, which binds it to the connection's id, kind,
-- base URL and user name, so that editing them in the database makes the
-- password fail to open instead of sending it elsewhere. Rows sealed
-- before (additional data: the id only) start at 0; serve re-seals them at
-- start and rekey re-seals any left, setting 1.
--
-- chain_version says how an audit entry's hash was made: 0 for the plain
-- SHA-256 of entries written before this migration, V for HMAC-SHA256
-- under the chain key derived from master key version V
-- (keyward.AuditEntry.ChainHash). Entries appended from now on are keyed.
ALTER TABLE provider_connections ADD COLUMN password_bound INTEGER NOT NULL DEFAULT 0 CHECK (password_bound IN (0, 1));
ALTER TABLE audit_log ADD COLUMN chain_version INTEGER NOT NULL DEFAULT 0 CHECK (chain_version >= 0);
