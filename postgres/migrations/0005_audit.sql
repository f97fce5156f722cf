-- The audit log (docs/audit.md): the PostgreSQL twin of
-- sqlite/migrations/0005_audit.sql.
--
-- seq numbers the entries from 1 without gaps; the store sets it under an
-- advisory lock of the schema held to the end of the appending transaction.
-- Each row's hash covers prev_hash (the hash of the row before, NULL for the
-- first) and its fields, so an edited, deleted or reordered row breaks the
-- chain. No foreign keys: an entry outlives the key, account or user it
-- names. sealed holds the details encrypted with master key key_version
-- (empty when none).
CREATE TABLE audit_log (
	seq         bigint      NOT NULL,
	time        timestamptz NOT NULL,
	actor       jsonb       NOT NULL,
	action      text        NOT NULL,
	target_type text        NOT NULL DEFAULT '',
	target_id   text COLLATE "C" NOT NULL DEFAULT '',
	account_id  text COLLATE "C" NOT NULL DEFAULT '',
	outcome     text        NOT NULL,
	sealed      bytea       NOT NULL DEFAULT '',
	key_version integer     NOT NULL DEFAULT 0,
	prev_hash   bytea,
	hash        bytea       NOT NULL,
	CONSTRAINT audit_log_pkey PRIMARY KEY (seq)
);

CREATE INDEX audit_log_account ON audit_log (account_id, seq);
CREATE INDEX audit_log_target ON audit_log (target_id, seq);
CREATE INDEX audit_log_action ON audit_log (action, seq);
CREATE INDEX audit_log_actor_key ON audit_log ((actor->>'key_id'), seq);
