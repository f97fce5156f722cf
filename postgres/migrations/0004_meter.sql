-- A key's meter: the PostgreSQL twin of sqlite/migrations/0004_meter.sql.
ALTER TABLE keys ADD COLUMN meter_id text COLLATE "C";
