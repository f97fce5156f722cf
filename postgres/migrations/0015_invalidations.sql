-- Nothing to change: PostgreSQL carries invalidations by LISTEN/NOTIFY
-- (postgres.NotifyBus), while SQLite's migration 15 adds the table its
-- polled bus needs. This version keeps the two schemas numbered alike.
SELECT 1;
