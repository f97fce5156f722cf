-- Rate limits, credits and anomalies (docs/architecture.md, verification steps 5 and 7).

-- A key's named rate limits, and an account's defaults for its keys that
-- set none: a JSON array of {"name", "limit", "window"}, empty for none.
ALTER TABLE keys ADD COLUMN rate_limits TEXT NOT NULL DEFAULT '[]';
ALTER TABLE accounts ADD COLUMN rate_limits TEXT NOT NULL DEFAULT '[]';

-- A key's credits; credits_remaining NULL means it has none. The refill
-- interval is in nanoseconds, both refill columns NULL for no refill.
-- credits_version orders the write-backs of a counter kept outside the
-- store; every spend and refill in the store raises it.
ALTER TABLE keys ADD COLUMN credits_remaining INTEGER CHECK (credits_remaining >= 0);
ALTER TABLE keys ADD COLUMN credits_refill_amount INTEGER;
ALTER TABLE keys ADD COLUMN credits_refill_interval INTEGER;
ALTER TABLE keys ADD COLUMN credits_refilled_at TEXT;
ALTER TABLE keys ADD COLUMN credits_version INTEGER NOT NULL DEFAULT 0;

-- Findings of the anomaly rules. No foreign keys: an anomaly outlives the
-- key and account it names. type, severity and action are checked by
-- keyward, so a new rule needs no migration. details is a JSON object.
CREATE TABLE anomalies (
	id           TEXT NOT NULL PRIMARY KEY,
	type         TEXT NOT NULL,
	severity     TEXT NOT NULL,
	account_id   TEXT,
	key_id       TEXT,
	ip           TEXT,
	details      TEXT,
	action       TEXT NOT NULL DEFAULT '',
	action_error TEXT NOT NULL DEFAULT '',
	created_at   TEXT NOT NULL
) STRICT;

CREATE INDEX anomalies_account ON anomalies (account_id, id);
CREATE INDEX anomalies_key ON anomalies (key_id, id);
