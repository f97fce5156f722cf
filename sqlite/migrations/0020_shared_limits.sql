-- Shared rate limits and credits of users and accounts
-- (docs/abuse-protection.md#shared-limits): one row per user or account
-- that has any, counted by all its keys together, next to their own. The
-- credits columns are those of keys (0003_abuse.sql); credits_remaining
-- NULL means no shared credits.
CREATE TABLE meters (
	id                      TEXT    NOT NULL PRIMARY KEY,
	level                   TEXT    NOT NULL CHECK (level IN ('user', 'account')),
	account_id              TEXT    NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	user_id                 TEXT    REFERENCES users (id) ON DELETE CASCADE,
	rate_limits             TEXT    NOT NULL DEFAULT '[]',
	credits_remaining       INTEGER CHECK (credits_remaining >= 0),
	credits_refill_amount   INTEGER,
	credits_refill_interval INTEGER,
	credits_refilled_at     TEXT,
	credits_version         INTEGER NOT NULL DEFAULT 0,
	updated_at              TEXT    NOT NULL,
	CHECK ((level = 'user' AND user_id = id) OR (level = 'account' AND user_id IS NULL AND account_id = id))
) STRICT;

CREATE INDEX meters_account ON meters (account_id);
