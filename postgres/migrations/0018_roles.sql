-- Named roles: the PostgreSQL twin of sqlite/migrations/0018_roles.sql.
CREATE TABLE roles (
	account_id  text COLLATE "C" NOT NULL,
	name        text COLLATE "C" NOT NULL,
	permissions text[]      NOT NULL DEFAULT '{}',
	created_at  timestamptz NOT NULL,
	updated_at  timestamptz NOT NULL,
	CONSTRAINT roles_pkey PRIMARY KEY (account_id, name),
	CONSTRAINT roles_name_check CHECK (name <> ''),
	CONSTRAINT roles_account_fkey FOREIGN KEY (account_id) REFERENCES accounts (id) ON DELETE CASCADE
);

CREATE TABLE key_roles (
	key_id     text COLLATE "C" NOT NULL,
	account_id text COLLATE "C" NOT NULL,
	role_name  text COLLATE "C" NOT NULL,
	CONSTRAINT key_roles_pkey PRIMARY KEY (key_id, role_name),
	CONSTRAINT key_roles_key_fkey FOREIGN KEY (key_id) REFERENCES keys (id) ON DELETE CASCADE,
	CONSTRAINT key_roles_role_fkey FOREIGN KEY (account_id, role_name) REFERENCES roles (account_id, name) ON DELETE CASCADE
);

CREATE INDEX key_roles_role ON key_roles (account_id, role_name);
