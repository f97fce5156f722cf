-- Bindings keyed by the master keys: the PostgreSQL twin of
-- sqlite/migrations/0016_keyed_bindings.sql.
--
-- password_bound says a provider connection's password is sealed with
-- keyward.ProviderPasswordAD (bound to the connection's id, kind, base URL
-- and user name); rows sealed before start false and are re-sealed by
-- serve at start or by rekey. chain_version is 0 for an audit entry hashed
-- with plain SHA-256 (written before this migration), V for one keyed with
-- HMAC-SHA256 under the chain key derived from master key version V.
ALTER TABLE provider_connections ADD COLUMN password_bound boolean NOT NULL DEFAULT false;
ALTER TABLE audit_log ADD COLUMN chain_version integer NOT NULL DEFAULT 0 CHECK (chain_version >= 0);
