-- Whether a key's expires_at was set by its rotation policy (the rotation
-- job's notice period, docs/lifecycle.md) rather than by a person: a
-- rotation gives the replacement an expiry a person set, never one its
-- rotation policy scheduled. Setting or clearing the expiry by hand clears
-- the flag.
ALTER TABLE keys ADD COLUMN expiry_scheduled INTEGER NOT NULL DEFAULT 0 CHECK (expiry_scheduled IN (0, 1));

-- Expiries the rotation job scheduled before this migration: those its
-- expiry_scheduled notice is about.
UPDATE keys SET expiry_scheduled = 1 WHERE expires_at IS NOT NULL AND EXISTS (
	SELECT 1 FROM key_notices n WHERE n.key_id = keys.id AND n.kind = 'expiry_scheduled' AND n.subject = keys.expires_at);
