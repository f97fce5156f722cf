-- Key environments: the PostgreSQL twin of
-- sqlite/migrations/0017_key_environments.sql. Keys made before this
-- migration are live.
ALTER TABLE keys ADD COLUMN environment text NOT NULL DEFAULT 'live' CHECK (environment <> '');
