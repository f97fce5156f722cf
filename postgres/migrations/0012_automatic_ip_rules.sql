-- Automatic IP rules (issue 13): the PostgreSQL twin of
-- sqlite/migrations/0012_automatic_ip_rules.sql. A global block made by
-- brute-force blocking is marked automatic. It refuses every request from
-- its network except one whose key verifies VALID, while a rule made by
-- hand (false) keeps blocking everything. Blocks made before this
-- migration are recognised by what abuse detection wrote: global, no
-- creating key, and its reason.
ALTER TABLE ip_rules ADD COLUMN automatic boolean NOT NULL DEFAULT false;

UPDATE ip_rules SET automatic = true
WHERE account_id IS NULL AND action = 'block' AND created_by IS NULL
	AND reason LIKE 'keyward abuse detection: %';
