-- Managed credentials (issue 8, docs/providers.md): provider connections
-- and the credentials of other systems keyward created through them.
--
-- A provider connection belongs to an account and goes with it. Its
-- password is sealed under master key password_version with additional
-- data keyward.ProviderPasswordAD(id), and re-encrypted by rekey
-- (keyward.SealedProviderPassword); an empty password is stored as an
-- empty blob under version 0. timeout_ms 0 is the default timeout.
--
-- A managed credential records a token of another system, never its
-- secret. It references its connection WITHOUT cascade: while a
-- connection has credentials that may still work at the provider (active,
-- rotated, orphaned), Store.DeleteProviderConnection refuses with a
-- conflict; once all of them are finished (revoked, expired, vanished),
-- deleting the connection deletes their records with it, in the same
-- transaction. Deleting the account deletes its connections and
-- credentials (the account_id keys cascade; revoking the tokens at the
-- provider before that is the service's job). The foreign key on
-- (connection_id, account_id, kind) keeps a credential in its
-- connection's account and provider. rotated_from and replaced_by name
-- other credentials without a foreign key (NULL for none).
CREATE TABLE provider_connections (
	id               TEXT    NOT NULL PRIMARY KEY,
	account_id       TEXT    NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	kind             TEXT    NOT NULL,
	name             TEXT    NOT NULL,
	base_url         TEXT    NOT NULL,
	username         TEXT    NOT NULL DEFAULT '',
	password         BLOB    NOT NULL,
	password_version INTEGER NOT NULL DEFAULT 0,
	timeout_ms       INTEGER NOT NULL DEFAULT 0 CHECK (timeout_ms >= 0),
	created_by       TEXT    NOT NULL DEFAULT '',
	created_at       TEXT    NOT NULL,
	updated_at       TEXT    NOT NULL,
	UNIQUE (account_id, name),
	UNIQUE (id, account_id, kind)
) STRICT;

CREATE TABLE managed_credentials (
	id            TEXT NOT NULL PRIMARY KEY,
	connection_id TEXT NOT NULL,
	account_id    TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	kind          TEXT NOT NULL,
	external_id   TEXT NOT NULL,
	external_user TEXT NOT NULL DEFAULT '',
	name          TEXT NOT NULL DEFAULT '',
	scopes        TEXT NOT NULL DEFAULT '[]',
	hint          TEXT NOT NULL DEFAULT '',
	expires_at    TEXT,
	status        TEXT NOT NULL CHECK (status IN ('active', 'rotated', 'revoked', 'expired', 'orphaned', 'vanished')),
	rotated_from  TEXT,
	replaced_by   TEXT,
	grace_until   TEXT,
	revoked_at    TEXT,
	created_by    TEXT NOT NULL DEFAULT '',
	created_at    TEXT NOT NULL,
	updated_at    TEXT NOT NULL,
	UNIQUE (connection_id, external_id),
	FOREIGN KEY (connection_id, account_id, kind) REFERENCES provider_connections (id, account_id, kind)
) STRICT;

CREATE INDEX managed_credentials_account ON managed_credentials (account_id, id);
-- What the lifecycle job must revoke (Store.CredentialsDue).
CREATE INDEX managed_credentials_expiring ON managed_credentials (status, expires_at);
CREATE INDEX managed_credentials_grace ON managed_credentials (status, grace_until);
