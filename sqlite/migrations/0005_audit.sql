-- The audit log (docs/audit.md): admin mutations and security events,
-- each appended in the transaction of the change it records.
--
-- seq numbers the entries from 1 without gaps; the store sets it under the
-- single writer. Each row's hash covers prev_hash (the hash of the row
-- before, NULL for the first) and its fields, so an edited, deleted or
-- reordered row breaks the chain. No foreign keys: an entry outlives the
-- key, account or user it names. actor is a JSON object; sealed holds the
-- details encrypted with master key key_version (empty when none).
CREATE TABLE audit_log (
	seq         INTEGER NOT NULL PRIMARY KEY,
	time        TEXT    NOT NULL,
	actor       TEXT    NOT NULL,
	action      TEXT    NOT NULL,
	target_type TEXT    NOT NULL DEFAULT '',
	target_id   TEXT    NOT NULL DEFAULT '',
	account_id  TEXT    NOT NULL DEFAULT '',
	outcome     TEXT    NOT NULL,
	sealed      BLOB    NOT NULL DEFAULT x'',
	key_version INTEGER NOT NULL DEFAULT 0,
	prev_hash   BLOB,
	hash        BLOB    NOT NULL
) STRICT;

CREATE INDEX audit_log_account ON audit_log (account_id, seq);
CREATE INDEX audit_log_target ON audit_log (target_id, seq);
CREATE INDEX audit_log_action ON audit_log (action, seq);
CREATE INDEX audit_log_actor_key ON audit_log (json_extract(actor, '$.key_id'), seq);
