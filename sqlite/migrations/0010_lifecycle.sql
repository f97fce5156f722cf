-- Lifecycle jobs (docs/lifecycle.md): job locks, rotation policies and key
-- notices.

-- A lock of Store.TryLock: held by holder (a random token) until
-- expires_at unless released. A single SQLite file has a single writer, but
-- several processes may open it; the lease makes a job run on one of them
-- at a time.
CREATE TABLE job_locks (
	name       TEXT NOT NULL PRIMARY KEY,
	holder     TEXT NOT NULL,
	expires_at TEXT NOT NULL
) STRICT;

-- A rotation policy belongs to an account or to a key (exactly one of the
-- two is set). Durations are in microseconds; expire_after_us 0 means the
-- policy never expires keys.
CREATE TABLE rotation_policies (
	account_id      TEXT UNIQUE REFERENCES accounts (id) ON DELETE CASCADE,
	key_id          TEXT UNIQUE REFERENCES keys (id) ON DELETE CASCADE,
	max_age_us      INTEGER NOT NULL CHECK (max_age_us > 0),
	expire_after_us INTEGER NOT NULL DEFAULT 0 CHECK (expire_after_us >= 0),
	updated_at      TEXT    NOT NULL,
	updated_by      TEXT    NOT NULL DEFAULT '',
	CHECK ((account_id IS NULL) <> (key_id IS NULL))
) STRICT;

-- What the lifecycle jobs have dealt with about a key: at most one notice
-- per kind (expired, rotation_due, expiry_scheduled), about the time
-- subject (the expiry announced, the time the key became due for
-- rotation, the expiry scheduled). Inserted in the transaction of its
-- webhook event, so each thing is announced once.
CREATE TABLE key_notices (
	key_id  TEXT NOT NULL REFERENCES keys (id) ON DELETE CASCADE,
	kind    TEXT NOT NULL CHECK (kind IN ('expired', 'rotation_due', 'expiry_scheduled')),
	subject TEXT NOT NULL,
	at      TEXT NOT NULL,
	PRIMARY KEY (key_id, kind)
) STRICT;

-- The jobs scan these keys only.
CREATE INDEX keys_expiring ON keys (id) WHERE expires_at IS NOT NULL;
CREATE INDEX keys_revoked ON keys (id) WHERE revoked_at IS NOT NULL;
CREATE INDEX keys_refilling ON keys (id) WHERE credits_refill_amount IS NOT NULL;
CREATE INDEX ip_rules_expiring ON ip_rules (id) WHERE expires_at IS NOT NULL;
