-- The invalidation bus of processes that share one database file (keyward
-- serve and keyward gateway --data; see sqlite.Bus): each row is one
-- keyward.Invalidation in its JSON form, numbered by seq in commit order.
-- Subscribers poll for rows above the last seq they read; publishers delete
-- rows older than a minute, which no live subscriber still needs.
CREATE TABLE invalidations (
	seq        INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	payload    TEXT    NOT NULL,
	created_at TEXT    NOT NULL
);
