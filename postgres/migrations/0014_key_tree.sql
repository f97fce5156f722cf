-- Cascading revocation and the account policy on minting keys
-- (keyward.AccountPolicy, docs/api.md).

-- The descendants of a key are found through created_by (the key that
-- created each key), one level after another.
CREATE INDEX keys_created_by ON keys (created_by) WHERE created_by IS NOT NULL;

-- Whether the account's user keys may create keys, and its account_admin
-- keys account_admin keys. Existing accounts keep what they could always do.
ALTER TABLE accounts ADD COLUMN users_may_mint_keys boolean NOT NULL DEFAULT true;
ALTER TABLE accounts ADD COLUMN admins_may_mint_admin_keys boolean NOT NULL DEFAULT true;
