-- Webhooks: the PostgreSQL twin of sqlite/migrations/0007_webhooks.sql.
CREATE TABLE webhook_endpoints (
	id              text COLLATE "C" NOT NULL PRIMARY KEY,
	account_id      text COLLATE "C" REFERENCES accounts (id) ON DELETE CASCADE,
	url             text        NOT NULL,
	description     text        NOT NULL DEFAULT '',
	events          jsonb       NOT NULL DEFAULT '[]',
	secret          bytea       NOT NULL,
	secret_version  integer     NOT NULL,
	disabled        boolean     NOT NULL DEFAULT false,
	disabled_reason text        NOT NULL DEFAULT '',
	created_by      text        NOT NULL DEFAULT '',
	created_at      timestamptz NOT NULL,
	updated_at      timestamptz NOT NULL
);

CREATE INDEX webhook_endpoints_account ON webhook_endpoints (account_id, id);

CREATE TABLE webhook_events (
	id         text COLLATE "C" NOT NULL PRIMARY KEY,
	type       text        NOT NULL,
	time       timestamptz NOT NULL,
	account_id text COLLATE "C" NOT NULL DEFAULT '',
	data       json        NOT NULL,
	dispatched boolean     NOT NULL DEFAULT false
);

CREATE INDEX webhook_events_pending ON webhook_events (id) WHERE NOT dispatched;

CREATE TABLE webhook_deliveries (
	event_id        text COLLATE "C" NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
	endpoint_id     text COLLATE "C" NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
	state           text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
	attempts        integer     NOT NULL DEFAULT 0,
	next_attempt_at timestamptz NOT NULL,
	locked_until    timestamptz,
	last_status     integer     NOT NULL DEFAULT 0,
	last_error      text        NOT NULL DEFAULT '',
	updated_at      timestamptz NOT NULL,
	PRIMARY KEY (event_id, endpoint_id)
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, event_id);

CREATE TABLE webhook_attempts (
	event_id    text COLLATE "C" NOT NULL,
	endpoint_id text COLLATE "C" NOT NULL,
	attempt     integer     NOT NULL,
	time        timestamptz NOT NULL,
	status      integer     NOT NULL DEFAULT 0,
	error       text        NOT NULL DEFAULT '',
	duration_us bigint      NOT NULL DEFAULT 0,
	PRIMARY KEY (endpoint_id, event_id, attempt),
	FOREIGN KEY (event_id, endpoint_id) REFERENCES webhook_deliveries (event_id, endpoint_id) ON DELETE CASCADE
);
