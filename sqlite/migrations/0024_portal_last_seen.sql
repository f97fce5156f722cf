-- Portal sessions end after a while without a request (docs/portal.md):
-- last_seen_at is when the session was last used, written at its start and
-- then at most about once a minute while it is used; NULL for a session
-- started before this column, which counts from started_at.
ALTER TABLE portal_sessions ADD COLUMN last_seen_at TEXT;
