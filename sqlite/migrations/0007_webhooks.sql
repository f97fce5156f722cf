-- Webhooks (issue 6): endpoints, the outbox of events, and deliveries.
--
-- webhook_events is the outbox: write methods insert the events their
-- context carries in the transaction of the change. The dispatcher fans
-- each undispatched event out to the endpoints that want it (one
-- webhook_deliveries row per event and endpoint, so an event reaches an
-- endpoint once however often fan-out runs) and marks it dispatched.
-- Deliveries are claimed with a lease (locked_until), so one that was in
-- flight when an instance died is retried after the lease.
-- webhook_attempts is the delivery log: one row per HTTP attempt.
CREATE TABLE webhook_endpoints (
	id              TEXT    NOT NULL PRIMARY KEY,
	account_id      TEXT    REFERENCES accounts (id) ON DELETE CASCADE,
	url             TEXT    NOT NULL,
	description     TEXT    NOT NULL DEFAULT '',
	events          TEXT    NOT NULL DEFAULT '[]',
	secret          BLOB    NOT NULL,
	secret_version  INTEGER NOT NULL,
	disabled        INTEGER NOT NULL DEFAULT 0,
	disabled_reason TEXT    NOT NULL DEFAULT '',
	created_by      TEXT    NOT NULL DEFAULT '',
	created_at      TEXT    NOT NULL,
	updated_at      TEXT    NOT NULL
) STRICT;

CREATE INDEX webhook_endpoints_account ON webhook_endpoints (account_id, id);

CREATE TABLE webhook_events (
	id         TEXT    NOT NULL PRIMARY KEY,
	type       TEXT    NOT NULL,
	time       TEXT    NOT NULL,
	account_id TEXT    NOT NULL DEFAULT '',
	data       TEXT    NOT NULL,
	dispatched INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX webhook_events_pending ON webhook_events (dispatched, id);

CREATE TABLE webhook_deliveries (
	event_id        TEXT    NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
	endpoint_id     TEXT    NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
	state           TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at TEXT    NOT NULL,
	locked_until    TEXT    NOT NULL DEFAULT '',
	last_status     INTEGER NOT NULL DEFAULT 0,
	last_error      TEXT    NOT NULL DEFAULT '',
	updated_at      TEXT    NOT NULL,
	PRIMARY KEY (event_id, endpoint_id)
) STRICT;

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, event_id);

CREATE TABLE webhook_attempts (
	event_id    TEXT    NOT NULL,
	endpoint_id TEXT    NOT NULL,
	attempt     INTEGER NOT NULL,
	time        TEXT    NOT NULL,
	status      INTEGER NOT NULL DEFAULT 0,
	error       TEXT    NOT NULL DEFAULT '',
	duration_us INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (endpoint_id, event_id, attempt),
	FOREIGN KEY (event_id, endpoint_id) REFERENCES webhook_deliveries (event_id, endpoint_id) ON DELETE CASCADE
) STRICT;
