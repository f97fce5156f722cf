-- Named roles (docs/permissions.md#named-roles): an account's named sets
-- of permissions, such as reader = [memories:read, search:*], attached to
-- its keys. A key holds its own permissions and those of its roles; a
-- change of a role reaches every key holding it at once. Deleting a role
-- detaches it from its keys; deleting a key or an account deletes its
-- attachments.
CREATE TABLE roles (
	account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	name        TEXT NOT NULL CHECK (name <> ''),
	permissions TEXT NOT NULL DEFAULT '[]',
	created_at  TEXT NOT NULL,
	updated_at  TEXT NOT NULL,
	PRIMARY KEY (account_id, name)
) STRICT;

-- The roles attached to each key, in the key's account.
CREATE TABLE key_roles (
	key_id     TEXT NOT NULL REFERENCES keys (id) ON DELETE CASCADE,
	account_id TEXT NOT NULL,
	role_name  TEXT NOT NULL,
	PRIMARY KEY (key_id, role_name),
	FOREIGN KEY (account_id, role_name) REFERENCES roles (account_id, name) ON DELETE CASCADE
) STRICT;

CREATE INDEX key_roles_role ON key_roles (account_id, role_name);
