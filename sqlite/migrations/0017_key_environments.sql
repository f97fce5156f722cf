-- Key environments (docs/environments.md): every key belongs to one
-- environment, such as live or test, which picks its prefix at creation,
-- is returned by verify and can be required by a verification. Keys made
-- before this migration are live.
ALTER TABLE keys ADD COLUMN environment TEXT NOT NULL DEFAULT 'live' CHECK (environment <> '');
