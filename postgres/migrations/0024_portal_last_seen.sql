-- Portal sessions' last use: the PostgreSQL twin of
-- sqlite/migrations/0024_portal_last_seen.sql. last_seen_at is when the
-- session was last used; NULL for a session started before this column,
-- which counts from started_at.
ALTER TABLE portal_sessions ADD COLUMN last_seen_at timestamptz;
