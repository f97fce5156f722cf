-- IP rules and per-key allow lists (docs/architecture.md, verification steps 2 and 6).

-- An IP rule blocks or allows a network, globally (account_id NULL) or
-- for one account's keys. cidr is the masked network in CIDR notation.
CREATE TABLE ip_rules (
	id         TEXT NOT NULL PRIMARY KEY,
	account_id TEXT REFERENCES accounts (id) ON DELETE CASCADE,
	action     TEXT NOT NULL CHECK (action IN ('block', 'allow')),
	cidr       TEXT NOT NULL,
	reason     TEXT NOT NULL DEFAULT '',
	expires_at TEXT,
	created_at TEXT NOT NULL,
	created_by TEXT
) STRICT;

CREATE INDEX ip_rules_account ON ip_rules (account_id, id);

-- A key's own allow list: a JSON array of CIDRs, empty for none.
ALTER TABLE keys ADD COLUMN ip_allow TEXT NOT NULL DEFAULT '[]';
