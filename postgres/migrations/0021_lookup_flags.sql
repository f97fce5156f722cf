-- Flags that let the verification path read a key with its account and
-- user alone:
-- the PostgreSQL twin of sqlite/migrations/0021_lookup_flags.sql. The
-- trigger functions keep the search path they were created with (the
-- store's schema), so a statement from a session with another path, such
-- as a schema-qualified DELETE, still finds the tables.
ALTER TABLE keys ADD COLUMN has_roles boolean NOT NULL DEFAULT FALSE;
UPDATE keys SET has_roles = TRUE WHERE id IN (SELECT key_id FROM key_roles);

CREATE FUNCTION key_roles_flag() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		UPDATE keys SET has_roles = TRUE WHERE id = NEW.key_id AND NOT has_roles;
	ELSE
		UPDATE keys SET has_roles = EXISTS (SELECT 1 FROM key_roles WHERE key_id = OLD.key_id)
		WHERE id = OLD.key_id;
	END IF;
	RETURN NULL;
END $$;

CREATE TRIGGER key_roles_flag AFTER INSERT OR DELETE ON key_roles
	FOR EACH ROW EXECUTE FUNCTION key_roles_flag();

ALTER TABLE users ADD COLUMN has_meter boolean NOT NULL DEFAULT FALSE;
UPDATE users SET has_meter = TRUE WHERE id IN (SELECT id FROM meters WHERE level = 'user');
ALTER TABLE accounts ADD COLUMN has_meter boolean NOT NULL DEFAULT FALSE;
UPDATE accounts SET has_meter = TRUE WHERE id IN (SELECT id FROM meters WHERE level = 'account');

CREATE FUNCTION meters_flag() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		IF NEW.level = 'user' THEN
			UPDATE users SET has_meter = TRUE WHERE id = NEW.id;
		ELSE
			UPDATE accounts SET has_meter = TRUE WHERE id = NEW.id;
		END IF;
	ELSIF OLD.level = 'user' THEN
		UPDATE users SET has_meter = FALSE WHERE id = OLD.id;
	ELSE
		UPDATE accounts SET has_meter = FALSE WHERE id = OLD.id;
	END IF;
	RETURN NULL;
END $$;

CREATE TRIGGER meters_flag AFTER INSERT OR DELETE ON meters
	FOR EACH ROW EXECUTE FUNCTION meters_flag();
