-- Managed credentials: the PostgreSQL twin of
-- sqlite/migrations/0011_credentials.sql, which explains the tables.
CREATE TABLE provider_connections (
	id               text COLLATE "C" NOT NULL,
	account_id       text COLLATE "C" NOT NULL,
	kind             text        NOT NULL,
	name             text        NOT NULL,
	base_url         text        NOT NULL,
	username         text        NOT NULL DEFAULT '',
	password         bytea       NOT NULL,
	password_version integer     NOT NULL DEFAULT 0,
	timeout_ms       bigint      NOT NULL DEFAULT 0,
	created_by       text        NOT NULL DEFAULT '',
	created_at       timestamptz NOT NULL,
	updated_at       timestamptz NOT NULL,
	CONSTRAINT provider_connections_pkey PRIMARY KEY (id),
	CONSTRAINT provider_connections_name_key UNIQUE (account_id, name),
	CONSTRAINT provider_connections_id_account_kind_key UNIQUE (id, account_id, kind),
	CONSTRAINT provider_connections_timeout_check CHECK (timeout_ms >= 0),
	CONSTRAINT provider_connections_account_fkey FOREIGN KEY (account_id) REFERENCES accounts (id) ON DELETE CASCADE
);

CREATE TABLE managed_credentials (
	id            text COLLATE "C" NOT NULL,
	connection_id text COLLATE "C" NOT NULL,
	account_id    text COLLATE "C" NOT NULL,
	kind          text        NOT NULL,
	external_id   text        NOT NULL,
	external_user text        NOT NULL DEFAULT '',
	name          text        NOT NULL DEFAULT '',
	scopes        jsonb       NOT NULL DEFAULT '[]',
	hint          text        NOT NULL DEFAULT '',
	expires_at    timestamptz,
	status        text        NOT NULL,
	rotated_from  text COLLATE "C",
	replaced_by   text COLLATE "C",
	grace_until   timestamptz,
	revoked_at    timestamptz,
	created_by    text        NOT NULL DEFAULT '',
	created_at    timestamptz NOT NULL,
	updated_at    timestamptz NOT NULL,
	CONSTRAINT managed_credentials_pkey PRIMARY KEY (id),
	CONSTRAINT managed_credentials_external_key UNIQUE (connection_id, external_id),
	CONSTRAINT managed_credentials_status_check CHECK (status IN ('active', 'rotated', 'revoked', 'expired', 'orphaned', 'vanished')),
	CONSTRAINT managed_credentials_account_fkey FOREIGN KEY (account_id) REFERENCES accounts (id) ON DELETE CASCADE,
	CONSTRAINT managed_credentials_connection_fkey FOREIGN KEY (connection_id, account_id, kind)
		REFERENCES provider_connections (id, account_id, kind)
);

CREATE INDEX managed_credentials_account ON managed_credentials (account_id, id);
-- What the lifecycle job must revoke (Store.CredentialsDue).
CREATE INDEX managed_credentials_expiring ON managed_credentials (expires_at) WHERE status = 'active';
CREATE INDEX managed_credentials_grace ON managed_credentials (grace_until) WHERE status = 'rotated';
