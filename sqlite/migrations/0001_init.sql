-- Accounts, users and keys (docs/architecture.md, domain model).
--
-- Times are TEXT in UTC, fixed width with microseconds
-- ("2006-01-02T15:04:05.000000Z"), so they sort and compare as strings.

CREATE TABLE accounts (
	id         TEXT    NOT NULL PRIMARY KEY,
	name       TEXT    NOT NULL UNIQUE,
	key_prefix TEXT    NOT NULL DEFAULT '',
	disabled   INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
	created_at TEXT    NOT NULL,
	updated_at TEXT    NOT NULL
) STRICT;

CREATE TABLE users (
	id          TEXT NOT NULL PRIMARY KEY,
	account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	name        TEXT NOT NULL DEFAULT '',
	external_id TEXT NOT NULL DEFAULT '',
	created_at  TEXT NOT NULL,
	-- Target of the keys (user_id, account_id) foreign key: a user key's
	-- user must belong to the key's account.
	UNIQUE (id, account_id)
) STRICT;

CREATE INDEX users_account ON users (account_id, id);
CREATE UNIQUE INDEX users_external_id ON users (account_id, external_id) WHERE external_id <> '';

CREATE TABLE keys (
	id             TEXT    NOT NULL PRIMARY KEY,
	key_hash       BLOB    NOT NULL UNIQUE CHECK (length(key_hash) = 32),
	pepper_version INTEGER NOT NULL,
	start          TEXT    NOT NULL DEFAULT '',
	prefix         TEXT    NOT NULL DEFAULT '',
	name           TEXT    NOT NULL DEFAULT '',
	role           TEXT    NOT NULL CHECK (role IN ('root', 'account_admin', 'user')),
	account_id     TEXT    REFERENCES accounts (id) ON DELETE CASCADE,
	user_id        TEXT,
	permissions    TEXT    NOT NULL DEFAULT '[]',
	meta           TEXT,
	expires_at     TEXT,
	disabled       INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
	revoked_at     TEXT,
	rotated_from   TEXT,
	grace_until    TEXT,
	created_at     TEXT    NOT NULL,
	created_by     TEXT,
	last_used_at   TEXT,
	updated_at     TEXT    NOT NULL,
	FOREIGN KEY (user_id, account_id) REFERENCES users (id, account_id) ON DELETE CASCADE,
	CHECK ((role = 'root') = (account_id IS NULL)),
	CHECK ((role = 'user') = (user_id IS NOT NULL))
) STRICT;

CREATE INDEX keys_account ON keys (account_id, id);
CREATE INDEX keys_user ON keys (user_id, id);
CREATE INDEX keys_role ON keys (role, id);
