-- Whether a key's expiry was set by its rotation policy: the PostgreSQL
-- twin of sqlite/migrations/0013_expiry_scheduled.sql, which explains it.
ALTER TABLE keys ADD COLUMN expiry_scheduled boolean NOT NULL DEFAULT false;

UPDATE keys k SET expiry_scheduled = true WHERE k.expires_at IS NOT NULL AND EXISTS (
	SELECT 1 FROM key_notices n WHERE n.key_id = k.id AND n.kind = 'expiry_scheduled' AND n.subject = k.expires_at);
