-- Flags that let the verification path read a key with its account and
-- user alone (docs/architecture.md, "The key lookup"): keys.has_roles says
-- whether the key has named roles attached (key_roles), users.has_meter and
-- accounts.has_meter whether the user or account has shared limits
-- (meters). Triggers keep them: a flag is set in
-- the statement that adds the first row, so it is never false while a row
-- exists; it is cleared when the last row goes.
ALTER TABLE keys ADD COLUMN has_roles INTEGER NOT NULL DEFAULT 0 CHECK (has_roles IN (0, 1));
UPDATE keys SET has_roles = 1 WHERE id IN (SELECT key_id FROM key_roles);

CREATE TRIGGER key_roles_flag_insert AFTER INSERT ON key_roles BEGIN
	UPDATE keys SET has_roles = 1 WHERE id = NEW.key_id AND has_roles = 0;
END;

CREATE TRIGGER key_roles_flag_delete AFTER DELETE ON key_roles BEGIN
	UPDATE keys SET has_roles = EXISTS (SELECT 1 FROM key_roles WHERE key_id = OLD.key_id)
	WHERE id = OLD.key_id;
END;

ALTER TABLE users ADD COLUMN has_meter INTEGER NOT NULL DEFAULT 0 CHECK (has_meter IN (0, 1));
UPDATE users SET has_meter = 1 WHERE id IN (SELECT id FROM meters WHERE level = 'user');
ALTER TABLE accounts ADD COLUMN has_meter INTEGER NOT NULL DEFAULT 0 CHECK (has_meter IN (0, 1));
UPDATE accounts SET has_meter = 1 WHERE id IN (SELECT id FROM meters WHERE level = 'account');

CREATE TRIGGER meters_flag_insert AFTER INSERT ON meters BEGIN
	UPDATE users SET has_meter = 1 WHERE NEW.level = 'user' AND id = NEW.id;
	UPDATE accounts SET has_meter = 1 WHERE NEW.level = 'account' AND id = NEW.id;
END;

CREATE TRIGGER meters_flag_delete AFTER DELETE ON meters BEGIN
	UPDATE users SET has_meter = 0 WHERE OLD.level = 'user' AND id = OLD.id;
	UPDATE accounts SET has_meter = 0 WHERE OLD.level = 'account' AND id = OLD.id;
END;
