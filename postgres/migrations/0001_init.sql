-- Accounts, users and keys (docs/architecture.md, domain model): the PostgreSQL twin of
-- sqlite/migrations/0001_init.sql.
--
-- Ids use the "C" collation so that they sort by bytes, as page cursors and
-- Go compare them, whatever the database's collation. Times are timestamptz
-- (microseconds). Constraints are named: the store maps a violation to a
-- client-safe message by its constraint name.

CREATE TABLE accounts (
	id         text COLLATE "C" NOT NULL,
	name       text        NOT NULL,
	key_prefix text        NOT NULL DEFAULT '',
	disabled   boolean     NOT NULL DEFAULT false,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL,
	CONSTRAINT accounts_pkey PRIMARY KEY (id),
	CONSTRAINT accounts_name_key UNIQUE (name)
);

CREATE TABLE users (
	id          text COLLATE "C" NOT NULL,
	account_id  text COLLATE "C" NOT NULL,
	name        text        NOT NULL DEFAULT '',
	external_id text        NOT NULL DEFAULT '',
	created_at  timestamptz NOT NULL,
	CONSTRAINT users_pkey PRIMARY KEY (id),
	-- Target of the keys (user_id, account_id) foreign key: a user key's
	-- user must belong to the key's account.
	CONSTRAINT users_id_account_key UNIQUE (id, account_id),
	CONSTRAINT users_account_fkey FOREIGN KEY (account_id) REFERENCES accounts (id) ON DELETE CASCADE
);

CREATE INDEX users_account ON users (account_id, id);
CREATE UNIQUE INDEX users_external_id_key ON users (account_id, external_id) WHERE external_id <> '';

CREATE TABLE keys (
	id             text COLLATE "C" NOT NULL,
	key_hash       bytea       NOT NULL,
	pepper_version integer     NOT NULL,
	start          text        NOT NULL DEFAULT '',
	prefix         text        NOT NULL DEFAULT '',
	name           text        NOT NULL DEFAULT '',
	role           text        NOT NULL,
	account_id     text COLLATE "C",
	user_id        text COLLATE "C",
	permissions    text[]      NOT NULL DEFAULT '{}',
	meta           jsonb,
	expires_at     timestamptz,
	disabled       boolean     NOT NULL DEFAULT false,
	revoked_at     timestamptz,
	rotated_from   text COLLATE "C",
	grace_until    timestamptz,
	created_at     timestamptz NOT NULL,
	created_by     text COLLATE "C",
	last_used_at   timestamptz,
	updated_at     timestamptz NOT NULL,
	CONSTRAINT keys_pkey PRIMARY KEY (id),
	CONSTRAINT keys_hash_key UNIQUE (key_hash),
	CONSTRAINT keys_hash_length CHECK (length(key_hash) = 32),
	CONSTRAINT keys_role_check CHECK (role IN ('root', 'account_admin', 'user')),
	CONSTRAINT keys_owner_check CHECK ((role = 'root') = (account_id IS NULL) AND (role = 'user') = (user_id IS NOT NULL)),
	CONSTRAINT keys_account_fkey FOREIGN KEY (account_id) REFERENCES accounts (id) ON DELETE CASCADE,
	CONSTRAINT keys_user_fkey FOREIGN KEY (user_id, account_id) REFERENCES users (id, account_id) ON DELETE CASCADE
);

CREATE INDEX keys_account ON keys (account_id, id);
CREATE INDEX keys_user ON keys (user_id, id);
CREATE INDEX keys_role ON keys (role, id);
