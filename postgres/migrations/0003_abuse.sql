-- Rate limits, credits and anomalies (docs/architecture.md, verification steps 5 and 7):
-- the PostgreSQL twin of sqlite/migrations/0003_abuse.sql.

-- A key's named rate limits, and an account's defaults for its keys that
-- set none: a JSON array of {"name", "limit", "window"}, empty for none.
ALTER TABLE keys ADD COLUMN rate_limits jsonb NOT NULL DEFAULT '[]';
ALTER TABLE accounts ADD COLUMN rate_limits jsonb NOT NULL DEFAULT '[]';

-- A key's credits; credits_remaining NULL means it has none. The refill
-- interval is in nanoseconds, both refill columns NULL for no refill.
-- credits_version orders the write-backs of a counter kept outside the
-- store; every spend and refill in the store raises it.
ALTER TABLE keys
	ADD COLUMN credits_remaining       bigint,
	ADD COLUMN credits_refill_amount   bigint,
	ADD COLUMN credits_refill_interval bigint,
	ADD COLUMN credits_refilled_at     timestamptz,
	ADD COLUMN credits_version         bigint NOT NULL DEFAULT 0,
	ADD CONSTRAINT keys_credits_remaining_check CHECK (credits_remaining >= 0);

-- Findings of the anomaly rules. No foreign keys: an anomaly outlives the
-- key and account it names. type, severity and action are checked by
-- keyward, so a new rule needs no migration.
CREATE TABLE anomalies (
	id           text COLLATE "C" NOT NULL,
	type         text        NOT NULL,
	severity     text        NOT NULL,
	account_id   text COLLATE "C",
	key_id       text COLLATE "C",
	ip           text,
	details      jsonb,
	action       text        NOT NULL DEFAULT '',
	action_error text        NOT NULL DEFAULT '',
	created_at   timestamptz NOT NULL,
	CONSTRAINT anomalies_pkey PRIMARY KEY (id)
);

CREATE INDEX anomalies_account ON anomalies (account_id, id);
CREATE INDEX anomalies_key ON anomalies (key_id, id);
