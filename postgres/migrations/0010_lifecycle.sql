-- Lifecycle jobs (docs/lifecycle.md): rotation policies and key notices;
-- the PostgreSQL twin of sqlite/migrations/0010_lifecycle.sql. Job locks
-- are advisory locks here: no table.

-- A rotation policy belongs to an account or to a key (exactly one of the
-- two is set). Durations are in microseconds; expire_after_us 0 means the
-- policy never expires keys.
CREATE TABLE rotation_policies (
	account_id      text COLLATE "C",
	key_id          text COLLATE "C",
	max_age_us      bigint      NOT NULL,
	expire_after_us bigint      NOT NULL DEFAULT 0,
	updated_at      timestamptz NOT NULL,
	updated_by      text        NOT NULL DEFAULT '',
	CONSTRAINT rotation_policies_account_key UNIQUE (account_id),
	CONSTRAINT rotation_policies_key_key UNIQUE (key_id),
	CONSTRAINT rotation_policies_scope_check CHECK ((account_id IS NULL) <> (key_id IS NULL)),
	CONSTRAINT rotation_policies_max_age_check CHECK (max_age_us > 0),
	CONSTRAINT rotation_policies_expire_after_check CHECK (expire_after_us >= 0),
	CONSTRAINT rotation_policies_account_fkey FOREIGN KEY (account_id) REFERENCES accounts (id) ON DELETE CASCADE,
	CONSTRAINT rotation_policies_key_fkey FOREIGN KEY (key_id) REFERENCES keys (id) ON DELETE CASCADE
);

-- What the lifecycle jobs have dealt with about a key: at most one notice
-- per kind (expired, rotation_due, expiry_scheduled), about the time
-- subject (the expiry announced, the time the key became due for
-- rotation, the expiry scheduled). Inserted in the transaction of its
-- webhook event, so each thing is announced once.
CREATE TABLE key_notices (
	key_id  text COLLATE "C" NOT NULL,
	kind    text        NOT NULL,
	subject timestamptz NOT NULL,
	at      timestamptz NOT NULL,
	CONSTRAINT key_notices_pkey PRIMARY KEY (key_id, kind),
	CONSTRAINT key_notices_kind_check CHECK (kind IN ('expired', 'rotation_due', 'expiry_scheduled')),
	CONSTRAINT key_notices_key_fkey FOREIGN KEY (key_id) REFERENCES keys (id) ON DELETE CASCADE
);

-- The jobs scan these keys only.
CREATE INDEX keys_expiring ON keys (id) WHERE expires_at IS NOT NULL;
CREATE INDEX keys_revoked ON keys (id) WHERE revoked_at IS NOT NULL;
CREATE INDEX keys_refilling ON keys (id) WHERE credits_refill_amount IS NOT NULL;
CREATE INDEX ip_rules_expiring ON ip_rules (id) WHERE expires_at IS NOT NULL;
