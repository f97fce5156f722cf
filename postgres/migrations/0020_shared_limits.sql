-- Shared rate limits and credits of users and accounts: the PostgreSQL
-- twin of sqlite/migrations/0020_shared_limits.sql.
CREATE TABLE meters (
	id                      text COLLATE "C" NOT NULL,
	level                   text        NOT NULL CHECK (level IN ('user', 'account')),
	account_id              text COLLATE "C" NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	user_id                 text COLLATE "C" REFERENCES users (id) ON DELETE CASCADE,
	rate_limits             jsonb       NOT NULL DEFAULT '[]',
	credits_remaining       bigint CHECK (credits_remaining >= 0),
	credits_refill_amount   bigint,
	credits_refill_interval bigint,
	credits_refilled_at     timestamptz,
	credits_version         bigint      NOT NULL DEFAULT 0,
	updated_at              timestamptz NOT NULL,
	CONSTRAINT meters_pkey PRIMARY KEY (id),
	CHECK ((level = 'user' AND user_id = id) OR (level = 'account' AND user_id IS NULL AND account_id = id))
);

CREATE INDEX meters_account ON meters (account_id);
