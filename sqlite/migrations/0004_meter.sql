-- A key's meter: the id whose rate limit buckets it counts against, when
-- not its own (a rotation's replacement, a key made by a user key). NULL:
-- its own id.
ALTER TABLE keys ADD COLUMN meter_id TEXT;
