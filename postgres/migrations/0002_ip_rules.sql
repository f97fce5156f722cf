-- IP rules and per-key allow lists (docs/architecture.md, verification steps 2 and 6):
-- the PostgreSQL twin of sqlite/migrations/0002_ip_rules.sql.

-- An IP rule blocks or allows a network, globally (account_id NULL) or
-- for one account's keys. cidr is the masked network in CIDR notation,
-- kept as text: keyward parses and matches it itself.
CREATE TABLE ip_rules (
	id         text COLLATE "C" NOT NULL,
	account_id text COLLATE "C",
	action     text        NOT NULL,
	cidr       text        NOT NULL,
	reason     text        NOT NULL DEFAULT '',
	expires_at timestamptz,
	created_at timestamptz NOT NULL,
	created_by text COLLATE "C",
	CONSTRAINT ip_rules_pkey PRIMARY KEY (id),
	CONSTRAINT ip_rules_action_check CHECK (action IN ('block', 'allow')),
	CONSTRAINT ip_rules_account_fkey FOREIGN KEY (account_id) REFERENCES accounts (id) ON DELETE CASCADE
);

CREATE INDEX ip_rules_account ON ip_rules (account_id, id);

-- A key's own allow list of CIDRs, empty for none.
ALTER TABLE keys ADD COLUMN ip_allow text[] NOT NULL DEFAULT '{}';
