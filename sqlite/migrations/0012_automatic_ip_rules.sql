-- Automatic IP rules (issue 13): a global block made by brute-force
-- blocking is marked automatic. It refuses every request from its network
-- except one whose key verifies VALID, while a rule made by hand (0) keeps
-- blocking everything. Blocks made before this migration are recognised by
-- what abuse detection wrote: global, no creating key, and its reason.
ALTER TABLE ip_rules ADD COLUMN automatic INTEGER NOT NULL DEFAULT 0 CHECK (automatic IN (0, 1));

UPDATE ip_rules SET automatic = 1
WHERE account_id IS NULL AND action = 'block' AND created_by IS NULL
	AND reason LIKE 'keyward abuse detection: %';
