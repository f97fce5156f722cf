-- The end-user portal (docs/portal.md).
--
-- A portal session is the grant a service made for one user of an
-- account: the permissions and environments of the keys the user may
-- manage, and where the portal leads back to. Its single-use link and,
-- once the link is used, its cookie are kept as SHA-256 hashes only. Rows
-- that ended are deleted when a new session is created; deleting the
-- account or the user deletes its sessions (and ends them).
CREATE TABLE portal_sessions (
	id              TEXT    NOT NULL PRIMARY KEY,
	link_hash       BLOB    NOT NULL UNIQUE CHECK (length(link_hash) = 32),
	session_hash    BLOB    UNIQUE CHECK (session_hash IS NULL OR length(session_hash) = 32),
	account_id      TEXT    NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	user_id         TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	external_id     TEXT    NOT NULL,
	permissions     TEXT    NOT NULL DEFAULT '[]',
	environments    TEXT    NOT NULL DEFAULT '[]',
	return_url      TEXT    NOT NULL,
	session_ttl_us  INTEGER NOT NULL CHECK (session_ttl_us > 0),
	created_by      TEXT    NOT NULL,
	created_at      TEXT    NOT NULL,
	link_expires_at TEXT    NOT NULL,
	started_at      TEXT,
	expires_at      TEXT
) STRICT;

CREATE INDEX portal_sessions_link_expires ON portal_sessions (link_expires_at) WHERE started_at IS NULL;
CREATE INDEX portal_sessions_expires ON portal_sessions (expires_at) WHERE expires_at IS NOT NULL;

-- The portal's look per account: a title and three colours, each #rrggbb
-- or '' for the default (checked here too, so nothing else reaches a
-- stylesheet).
CREATE TABLE portal_branding (
	account_id       TEXT NOT NULL PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
	title            TEXT NOT NULL DEFAULT '',
	accent_color     TEXT NOT NULL DEFAULT '' CHECK (accent_color = '' OR (length(accent_color) = 7 AND accent_color GLOB '#[0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F]')),
	background_color TEXT NOT NULL DEFAULT '' CHECK (background_color = '' OR (length(background_color) = 7 AND background_color GLOB '#[0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F]')),
	text_color       TEXT NOT NULL DEFAULT '' CHECK (text_color = '' OR (length(text_color) = 7 AND text_color GLOB '#[0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F]')),
	updated_at       TEXT NOT NULL
) STRICT;
