-- Usage analytics: verification outcomes counted per key, account and code
-- per minute, rolled up to hours and days (package usage).
--
-- key_id and account_id are '' for failures without a key (MALFORMED,
-- NOT_FOUND). No foreign keys: usage outlives the keys and accounts it
-- names. start is the beginning of the period, stored like every time
-- (UTC, fixed width). rolled is the part of count already added to the
-- next coarser granularity, so a roll-up adds only count - rolled and can
-- run any number of times.
CREATE TABLE usage_counts (
	granularity TEXT    NOT NULL CHECK (granularity IN ('minute', 'hour', 'day')),
	start       TEXT    NOT NULL,
	key_id      TEXT    NOT NULL,
	account_id  TEXT    NOT NULL,
	code        TEXT    NOT NULL,
	count       INTEGER NOT NULL CHECK (count >= 0),
	rolled      INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (granularity, start, key_id, account_id, code)
) WITHOUT ROWID;

CREATE INDEX usage_counts_key ON usage_counts (key_id, granularity, start);
CREATE INDEX usage_counts_account ON usage_counts (account_id, granularity, start);
