-- The end-user portal: the PostgreSQL twin of
-- sqlite/migrations/0022_portal.sql.
CREATE TABLE portal_sessions (
	id              text COLLATE "C" NOT NULL,
	link_hash       bytea       NOT NULL,
	session_hash    bytea,
	account_id      text COLLATE "C" NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	user_id         text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	external_id     text        NOT NULL,
	permissions     text[]      NOT NULL DEFAULT '{}',
	environments    text[]      NOT NULL DEFAULT '{}',
	return_url      text        NOT NULL,
	session_ttl_us  bigint      NOT NULL CHECK (session_ttl_us > 0),
	created_by      text COLLATE "C" NOT NULL,
	created_at      timestamptz NOT NULL,
	link_expires_at timestamptz NOT NULL,
	started_at      timestamptz,
	expires_at      timestamptz,
	CONSTRAINT portal_sessions_pkey PRIMARY KEY (id),
	CONSTRAINT portal_sessions_link_hash_key UNIQUE (link_hash),
	CONSTRAINT portal_sessions_session_hash_key UNIQUE (session_hash),
	CHECK (length(link_hash) = 32),
	CHECK (session_hash IS NULL OR length(session_hash) = 32)
);

CREATE INDEX portal_sessions_link_expires ON portal_sessions (link_expires_at) WHERE started_at IS NULL;
CREATE INDEX portal_sessions_expires ON portal_sessions (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE portal_branding (
	account_id       text COLLATE "C" NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	title            text        NOT NULL DEFAULT '',
	accent_color     text        NOT NULL DEFAULT '' CHECK (accent_color ~ '^(#[0-9a-fA-F]{6})?$'),
	background_color text        NOT NULL DEFAULT '' CHECK (background_color ~ '^(#[0-9a-fA-F]{6})?$'),
	text_color       text        NOT NULL DEFAULT '' CHECK (text_color ~ '^(#[0-9a-fA-F]{6})?$'),
	updated_at       timestamptz NOT NULL,
	CONSTRAINT portal_branding_pkey PRIMARY KEY (account_id)
);
