-- Usage analytics: the PostgreSQL twin of sqlite/migrations/0006_usage.sql.
--
-- key_id and account_id are '' for failures without a key. rolled is the
-- part of count already added to the next coarser granularity.
CREATE TABLE usage_counts (
	granularity text             NOT NULL,
	start       timestamptz      NOT NULL,
	key_id      text COLLATE "C" NOT NULL,
	account_id  text COLLATE "C" NOT NULL,
	code        text COLLATE "C" NOT NULL,
	count       bigint           NOT NULL,
	rolled      bigint           NOT NULL DEFAULT 0,
	CONSTRAINT usage_counts_pkey PRIMARY KEY (granularity, start, key_id, account_id, code),
	CONSTRAINT usage_counts_granularity_check CHECK (granularity IN ('minute', 'hour', 'day')),
	CONSTRAINT usage_counts_count_check CHECK (count >= 0)
);

CREATE INDEX usage_counts_key ON usage_counts (key_id, granularity, start);
CREATE INDEX usage_counts_account ON usage_counts (account_id, granularity, start);
