package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keyward/keyward"
)

// keyCols are the columns of a key under the alias k, in scanKey's order;
// scanKey then reads its account's disabled flag (false for root keys) and
// rate limits.
const keyCols = `k.id, k.key_hash, k.pepper_version, k.start, k.prefix, k.name, k.role,
	COALESCE(k.account_id, ''), COALESCE(k.user_id, ''), k.permissions, k.meta, k.expires_at, k.disabled,
	k.revoked_at, COALESCE(k.rotated_from, ''), k.grace_until, k.created_at, COALESCE(k.created_by, ''),
	k.last_used_at, k.updated_at, k.ip_allow, k.rate_limits, COALESCE(k.meter_id, ''), k.credits_remaining, k.credits_refill_amount,
	k.credits_refill_interval, k.credits_refilled_at, k.credits_version, k.secret_meta, k.secret_meta_version,
	k.expiry_scheduled`

// returningKey ends an INSERT, UPDATE or DELETE on keys AS k with the key
// as scanKey reads it.
const returningKey = " RETURNING " + keyCols +
	", COALESCE((SELECT a.disabled FROM accounts a WHERE a.id = k.account_id), false)" +
	", COALESCE((SELECT a.rate_limits FROM accounts a WHERE a.id = k.account_id), '[]')" +
	", (SELECT a.secret_meta FROM accounts a WHERE a.id = k.account_id)" +
	", COALESCE((SELECT a.secret_meta_version FROM accounts a WHERE a.id = k.account_id), 0)"

// selectKey reads keys with their account's disabled flag and rate limits;
// it is completed by a WHERE clause.
const selectKey = "SELECT " + keyCols + ", COALESCE(a.disabled, false), COALESCE(a.rate_limits, '[]')" +
	", a.secret_meta, COALESCE(a.secret_meta_version, 0)" +
	" FROM keys k LEFT JOIN accounts a ON a.id = k.account_id"

// keyConflicts are the messages of the constraints a key insert can break.
func keyConflicts(k *keyward.Key) conflicts {
	return conflicts{
		"keys_pkey":         fmt.Sprintf("key %s already exists", k.ID),
		"keys_hash_key":     "a key with the same hash already exists",
		"keys_account_fkey": fmt.Sprintf("account %s not found", k.AccountID),
		"keys_user_fkey":    fmt.Sprintf("user %s not found in account %s", k.UserID, k.AccountID),
	}
}

// CreateKey inserts k. ENOTFOUND if its account or user does not exist (or
// the user is not in the account), ECONFLICT if the id or hash is taken,
// EINVALID if the role does not match the account and user or the meta is
// not JSON. It fills k.AccountDisabled, k.AccountRateLimits and
// k.AccountSecretMeta from the account, so a caller that caches k caches the
// state a read would return.
func (s *Store) CreateKey(ctx context.Context, ch keyward.Change, k *keyward.Key) error {
	var stored *keyward.Key
	err := s.write(ctx, ch, func(tx pgx.Tx) error {
		var err error
		stored, err = s.insertKey(ctx, tx, k)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: create key %s: %w", k.ID, err)
	}
	k.AccountDisabled, k.AccountRateLimits, k.AccountSecretMeta = stored.AccountDisabled, stored.AccountRateLimits, stored.AccountSecretMeta
	return nil
}

// BootstrapRootKey inserts k, a root key, only if the database holds no
// root key usable at k.CreatedAt (neither disabled, revoked nor expired:
// keyward.Key.Status VALID); ECONFLICT otherwise. Bootstraps serialise on an advisory
// lock of the schema, held to the end of the transaction, so of concurrent
// bootstraps from any number of instances exactly one inserts.
func (s *Store) BootstrapRootKey(ctx context.Context, ch keyward.Change, k *keyward.Key) error {
	if k.Role != keyward.RoleRoot {
		return keyward.Errorf(keyward.EINVALID, "postgres: bootstrap root key %s: the bootstrap key must have role root, not %q", k.ID, k.Role)
	}
	err := s.write(ctx, ch, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey(s.schema, "bootstrap")); err != nil {
			return s.dbError(err, nil)
		}
		// Read committed: this statement's snapshot is taken after the lock
		// is held, so it sees the key of a bootstrap that committed before.
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM keys WHERE role = 'root' AND NOT disabled
			AND (revoked_at IS NULL OR revoked_at > $1) AND (expires_at IS NULL OR expires_at > $1))`, k.CreatedAt).Scan(&exists); err != nil {
			return s.dbError(err, nil)
		}
		if exists {
			return keyward.Errorf(keyward.ECONFLICT, "a usable root key already exists")
		}
		_, err := s.insertKey(ctx, tx, k)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: bootstrap root key %s: %w", k.ID, err)
	}
	return nil
}

// insertKey checks k's shape and inserts it; the foreign keys check its
// account and user. It returns the key as stored.
func (s *Store) insertKey(ctx context.Context, q querier, k *keyward.Key) (*keyward.Key, error) {
	if err := k.ValidateRecord(); err != nil {
		return nil, err
	}
	stored, err := scanKey(q.QueryRow(ctx, insertOneKey, keyRow(k)...))
	if err != nil {
		return nil, s.dbError(err, keyConflicts(k))
	}
	return stored, nil
}

// keyColumns are the columns a key is inserted with, in keyRow's order.
var keyColumns = append([]string{"id", "key_hash", "pepper_version", "start", "prefix", "name", "role",
	"account_id", "user_id", "permissions", "meta", "expires_at", "disabled", "revoked_at", "rotated_from",
	"grace_until", "created_at", "created_by", "last_used_at", "updated_at", "ip_allow", "rate_limits", "meter_id"},
	append(creditColumns, "secret_meta", "secret_meta_version", "expiry_scheduled")...)

// insertOneKey is the INSERT of insertKey, returning the key as stored.
var insertOneKey = func() string {
	params := make([]string, len(keyColumns))
	for i := range params {
		params[i] = "$" + strconv.Itoa(i+1)
	}
	return "INSERT INTO keys AS k (" + strings.Join(keyColumns, ", ") + ") VALUES (" + strings.Join(params, ", ") + ")" + returningKey
}()

// keyRow returns the values of k for keyColumns.
func keyRow(k *keyward.Key) []any {
	row := []any{k.ID, k.Hash[:], k.PepperVersion, k.Start, k.Prefix, k.Name, string(k.Role),
		nullString(k.AccountID), nullString(k.UserID), permissions(k.Permissions), nullJSON(k.Meta), k.ExpiresAt,
		k.Disabled, k.RevokedAt, nullString(k.RotatedFrom), k.GraceUntil,
		k.CreatedAt, nullString(k.CreatedBy), k.LastUsedAt, k.UpdatedAt, prefixStrings(k.IPAllow),
		encodeRateLimits(k.RateLimits), nullString(k.MeterID)}
	return append(append(append(row, creditArgs(k.Credits)...), sealedArgs(k.SecretMeta)...), k.ExpiryScheduled)
}

// batchConflicts are the messages of the constraints CreateKeys can break;
// COPY does not tell which row broke them.
var batchConflicts = conflicts{
	"keys_pkey":         "a key of the batch has an id that already exists",
	"keys_hash_key":     "a key of the batch has a hash that already exists",
	"keys_account_fkey": "an account of the batch was not found",
	"keys_user_fkey":    "a user of the batch was not found in its account",
}

// CreateKeys inserts keys with one COPY in one transaction, all or none;
// the foreign keys check their accounts and users. A conflict names no
// key. It fills AccountDisabled and AccountRateLimits of every key once the
// transaction has committed.
func (s *Store) CreateKeys(ctx context.Context, ch keyward.Change, keys []*keyward.Key) error {
	if len(keys) == 0 {
		return nil
	}
	var accountIDs []string
	seen := map[string]bool{}
	for _, k := range keys {
		if err := k.ValidateRecord(); err != nil {
			return fmt.Errorf("postgres: create %d keys: key %s: %w", len(keys), k.ID, err)
		}
		if k.AccountID != "" && !seen[k.AccountID] {
			seen[k.AccountID] = true
			accountIDs = append(accountIDs, k.AccountID)
		}
	}
	accounts := map[string]*keyward.Account{}
	err := s.write(ctx, ch, func(tx pgx.Tx) error {
		i := 0
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"keys"}, keyColumns, pgx.CopyFromFunc(func() ([]any, error) {
			if i == len(keys) {
				return nil, nil
			}
			i++
			return keyRow(keys[i-1]), nil
		}))
		if err != nil {
			return s.dbError(err, batchConflicts)
		}
		if len(accountIDs) == 0 {
			return nil
		}
		rows, err := tx.Query(ctx, "SELECT "+accountCols+" FROM accounts WHERE id = ANY($1)", accountIDs)
		if err != nil {
			return s.dbError(err, nil)
		}
		as, err := collect(rows, scanAccount)
		for _, a := range as {
			accounts[a.ID] = a
		}
		return s.dbError(err, nil)
	})
	if err != nil {
		return fmt.Errorf("postgres: create %d keys: %w", len(keys), err)
	}
	for _, k := range keys {
		k.AccountDisabled, k.AccountRateLimits, k.AccountSecretMeta = false, nil, nil
		if a := accounts[k.AccountID]; a != nil {
			k.AccountDisabled, k.AccountRateLimits, k.AccountSecretMeta = a.Disabled, a.RateLimits, a.SecretMeta
		}
	}
	return nil
}

// Key returns the key with id. ENOTFOUND if none.
func (s *Store) Key(ctx context.Context, id string) (*keyward.Key, error) {
	k, err := s.keyByID(ctx, s.pool, id, "")
	if err != nil {
		return nil, fmt.Errorf("postgres: key %s: %w", id, err)
	}
	return k, nil
}

// KeyByHash returns the key with hash h, with AccountDisabled filled.
// ENOTFOUND if none. It is one prepared statement on the hash's unique
// index.
func (s *Store) KeyByHash(ctx context.Context, h keyward.KeyHash) (*keyward.Key, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, selectKey+" WHERE k.key_hash = $1", h[:]))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: key by hash: %w", keyward.Errorf(keyward.ENOTFOUND, "key not found"))
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: key by hash: %w", s.dbError(err, nil))
	}
	return k, nil
}

// keyByID reads a key; lock is "" or a locking clause.
func (s *Store) keyByID(ctx context.Context, q querier, id, lock string) (*keyward.Key, error) {
	k, err := scanKey(q.QueryRow(ctx, selectKey+" WHERE k.id = $1 "+lock, id))
	if err != nil {
		return nil, s.rowError(err, "key", id)
	}
	return k, nil
}

// rowError maps a failed read of the kind of row with id (a key, an
// account, a webhook endpoint, ...): ENOTFOUND "kind id not found" for no
// row, else the database error.
func (s *Store) rowError(err error, kind, id string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return keyward.Errorf(keyward.ENOTFOUND, "%s %s not found", kind, id)
	}
	return s.dbError(err, nil)
}

// Keys lists the keys matching f by id after p.After.
func (s *Store) Keys(ctx context.Context, f keyward.KeyFilter, p keyward.Page) ([]*keyward.Key, string, error) {
	query, args := selectKey+" WHERE true", []any(nil)
	for _, c := range []struct{ col, v string }{
		{"k.account_id", f.AccountID}, {"k.user_id", f.UserID}, {"k.role", string(f.Role)},
	} {
		if c.v != "" {
			args = append(args, c.v)
			query += " AND " + c.col + " = $" + strconv.Itoa(len(args))
		}
	}
	query, args = pageQuery(query, "k.id", ascending, args, p)
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: list keys: %w", s.dbError(err, nil))
	}
	keys, err := collect(rows, scanKey)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: list keys: %w", s.dbError(err, nil))
	}
	keys, next := page(keys, p, func(k *keyward.Key) string { return k.ID })
	return keys, next, nil
}

// UpdateKey locks the key, applies fn and saves the result in one
// transaction; an error from fn aborts it unchanged and is returned. fn
// must not change the id, hash, pepper version, role, account or user
// (EINVALID). It returns the key as stored.
func (s *Store) UpdateKey(ctx context.Context, ch keyward.Change, id string, fn func(*keyward.Key) error) (*keyward.Key, error) {
	var out *keyward.Key
	err := s.write(ctx, ch, func(tx pgx.Tx) error {
		k, err := s.keyByID(ctx, tx, id, "FOR UPDATE OF k")
		if err != nil {
			return err
		}
		orig := k.Clone()
		if err := fn(k); err != nil {
			return err
		}
		out, err = s.saveKey(ctx, tx, orig, k)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: update key %s: %w", id, err)
	}
	return out, nil
}

// keyTreeQuery selects and locks the key with id $1 and its descendants.
const keyTreeQuery = `WITH RECURSIVE tree(id) AS (
		SELECT id FROM keys WHERE id = $1
		UNION SELECT c.id FROM keys c JOIN tree t ON c.created_by = t.id)
	` + selectKey + ` WHERE k.id IN (SELECT id FROM tree) FOR UPDATE OF k`

// UpdateKeyTree locks the key with id and its descendants and calls fn on
// each, in one transaction (see keyward.Store).
func (s *Store) UpdateKeyTree(ctx context.Context, ch keyward.Change, id string, fn func(*keyward.Key) (*keyward.AuditEntry, []*keyward.Event, error)) ([]*keyward.Key, error) {
	var changed []*keyward.Key
	err := s.write(ctx, ch, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, keyTreeQuery, id)
		if err != nil {
			return s.dbError(err, nil)
		}
		tree, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*keyward.Key, error) { return scanKey(r) })
		if err != nil {
			return s.dbError(err, nil)
		}
		tree = keyward.KeyTreeOrder(id, tree)
		if len(tree) == 0 {
			return keyward.Errorf(keyward.ENOTFOUND, "key %s not found", id)
		}
		for _, k := range tree {
			orig := k.Clone()
			e, events, err := fn(k)
			if err != nil {
				return err
			}
			if e == nil {
				continue
			}
			stored, err := s.saveKey(ctx, tx, orig, k)
			if err != nil {
				return err
			}
			if err := s.insertEvents(ctx, tx, events); err != nil {
				return err
			}
			if err := s.appendAudit(ctx, tx, e); err != nil {
				return err
			}
			changed = append(changed, stored)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: update key tree of %s: %w", id, err)
	}
	return changed, nil
}

// RotateKey locks the key, lets fn change it and return its replacement,
// then saves both in one transaction: either the old key is updated, the
// new one inserted and the old key's own rotation policy moved to it, or
// nothing changes. It returns both as stored.
func (s *Store) RotateKey(ctx context.Context, ch keyward.Change, id string, fn func(old *keyward.Key) (*keyward.Key, error)) (old, next *keyward.Key, err error) {
	err = s.write(ctx, ch, func(tx pgx.Tx) error {
		k, err := s.keyByID(ctx, tx, id, "FOR UPDATE OF k")
		if err != nil {
			return err
		}
		orig := k.Clone()
		n, err := fn(k)
		if err != nil {
			return err
		}
		if n == nil {
			return keyward.Errorf(keyward.EINVALID, "rotation produced no replacement key")
		}
		if old, err = s.saveKey(ctx, tx, orig, k); err != nil {
			return err
		}
		if next, err = s.insertKey(ctx, tx, n); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "UPDATE rotation_policies SET key_id = $1 WHERE key_id = $2", n.ID, id)
		return s.dbError(err, nil)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: rotate key %s: %w", id, err)
	}
	return old, next, nil
}

// saveKey writes the mutable fields of k, loaded (and locked) as orig, and
// returns the key as stored.
func (s *Store) saveKey(ctx context.Context, tx pgx.Tx, orig, k *keyward.Key) (*keyward.Key, error) {
	if k.ID != orig.ID || k.Hash != orig.Hash || k.PepperVersion != orig.PepperVersion ||
		k.Role != orig.Role || k.AccountID != orig.AccountID || k.UserID != orig.UserID {
		return nil, keyward.Errorf(keyward.EINVALID, "the id, hash, role, account and user of a key cannot change")
	}
	if err := k.ValidateRecord(); err != nil {
		return nil, err
	}
	args := []any{k.Start, k.Prefix, k.Name, permissions(k.Permissions), nullJSON(k.Meta),
		k.ExpiresAt, k.Disabled, k.RevokedAt, nullString(k.RotatedFrom), k.GraceUntil,
		k.CreatedAt, nullString(k.CreatedBy), k.LastUsedAt, k.UpdatedAt,
		prefixStrings(k.IPAllow), encodeRateLimits(k.RateLimits), nullString(k.MeterID)}
	args = append(append(append(args, creditArgs(k.Credits)...), sealedArgs(k.SecretMeta)...), k.ExpiryScheduled, k.ID)
	stored, err := scanKey(tx.QueryRow(ctx, `UPDATE keys AS k SET start = $1, prefix = $2, name = $3,
		permissions = $4, meta = $5, expires_at = $6, disabled = $7, revoked_at = $8, rotated_from = $9,
		grace_until = $10, created_at = $11, created_by = $12, last_used_at = $13, updated_at = $14,
		ip_allow = $15, rate_limits = $16, meter_id = $17, credits_remaining = $18, credits_refill_amount = $19,
		credits_refill_interval = $20, credits_refilled_at = $21, credits_version = $22,
		secret_meta = $23, secret_meta_version = $24, expiry_scheduled = $25
		WHERE k.id = $26`+returningKey, args...))
	if err != nil {
		return nil, s.dbError(err, nil)
	}
	return stored, nil
}

// DeleteKey deletes the key with id and returns it as it was.
func (s *Store) DeleteKey(ctx context.Context, ch keyward.Change, id string) (*keyward.Key, error) {
	var k *keyward.Key
	err := s.write(ctx, ch, func(tx pgx.Tx) error {
		var err error
		k, err = scanKey(tx.QueryRow(ctx, "DELETE FROM keys AS k WHERE k.id = $1"+returningKey, id))
		if err != nil {
			return s.rowError(err, "key", id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: delete key %s: %w", id, err)
	}
	return k, nil
}

// touchKeys raises last_used_at to the latest use of each key in one
// statement. The rows are locked in id order first, so concurrent batches
// from several instances cannot deadlock on each other.
const touchKeys = `WITH u AS (
		SELECT t.id, max(t.at) AS at FROM unnest($1::text[], $2::timestamptz[]) AS t(id, at) GROUP BY t.id
	), locked AS MATERIALIZED (
		SELECT k.id FROM keys k JOIN u ON u.id = k.id
		WHERE k.last_used_at IS NULL OR k.last_used_at < u.at
		ORDER BY k.id FOR UPDATE OF k
	)
	UPDATE keys k SET last_used_at = GREATEST(k.last_used_at, u.at)
	FROM u, locked WHERE k.id = u.id AND k.id = locked.id`

// TouchKeys raises last_used_at of each key to the given time, never
// lowering it, in one statement. Unknown ids are ignored.
func (s *Store) TouchKeys(ctx context.Context, uses []keyward.KeyUse) error {
	if len(uses) == 0 {
		return nil
	}
	ids, ats := make([]string, len(uses)), make([]time.Time, len(uses))
	for i, u := range uses {
		ids[i], ats[i] = u.ID, u.At
	}
	if _, err := s.pool.Exec(ctx, touchKeys, ids, ats); err != nil {
		return fmt.Errorf("postgres: touch %d keys: %w", len(uses), s.dbError(err, nil))
	}
	return nil
}

func scanKey(row pgx.Row) (*keyward.Key, error) {
	var (
		k           keyward.Key
		hash, meta  []byte
		role        string
		createdAt   time.Time
		updatedAt   time.Time
		permissions []string
		ipAllow     []string
		rateLimits  []byte
		accountRLs  []byte
		credits     storedCredits

		secret, accountSecret               []byte
		secretVersion, accountSecretVersion int
	)
	dest := []any{&k.ID, &hash, &k.PepperVersion, &k.Start, &k.Prefix, &k.Name, &role,
		&k.AccountID, &k.UserID, &permissions, &meta, &k.ExpiresAt, &k.Disabled,
		&k.RevokedAt, &k.RotatedFrom, &k.GraceUntil, &createdAt, &k.CreatedBy,
		&k.LastUsedAt, &updatedAt, &ipAllow, &rateLimits, &k.MeterID}
	dest = append(append(dest, credits.dest()...), &secret, &secretVersion, &k.ExpiryScheduled,
		&k.AccountDisabled, &accountRLs, &accountSecret, &accountSecretVersion)
	err := row.Scan(dest...)
	if err != nil {
		return nil, err
	}
	if k.Hash, err = toHash(hash); err != nil {
		return nil, fmt.Errorf("key %s: %w", k.ID, err)
	}
	k.Role = keyward.Role(role)
	k.SecretMeta, k.AccountSecretMeta = storedSealed(secret, secretVersion), storedSealed(accountSecret, accountSecretVersion)
	k.HasSecretMeta = k.SecretMeta != nil
	k.Permissions = permissions
	if k.Permissions == nil {
		k.Permissions = []string{}
	}
	if meta != nil {
		k.Meta = json.RawMessage(meta)
	}
	for _, c := range ipAllow {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("key %s: stored ip_allow: %w", k.ID, err)
		}
		k.IPAllow = append(k.IPAllow, p)
	}
	if k.RateLimits, err = decodeRateLimits(rateLimits); err != nil {
		return nil, fmt.Errorf("key %s: stored rate_limits: %w", k.ID, err)
	}
	if k.AccountRateLimits, err = decodeRateLimits(accountRLs); err != nil {
		return nil, fmt.Errorf("key %s: stored account rate_limits: %w", k.ID, err)
	}
	k.Credits = credits.credits()
	k.CreatedAt, k.UpdatedAt = createdAt.UTC(), updatedAt.UTC()
	k.ExpiresAt, k.RevokedAt, k.GraceUntil, k.LastUsedAt = utc(k.ExpiresAt), utc(k.RevokedAt), utc(k.GraceUntil), utc(k.LastUsedAt)
	return &k, nil
}

func toHash(b []byte) (keyward.KeyHash, error) {
	var h keyward.KeyHash
	if len(b) != len(h) {
		return h, fmt.Errorf("stored key hash has %d bytes, want %d", len(b), len(h))
	}
	copy(h[:], b)
	return h, nil
}

// permissions stores nil as an empty array.
func permissions(p []string) []string {
	if p == nil {
		return []string{}
	}
	return p
}

// prefixStrings stores an allow list as text[]; nil is an empty array.
func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// encodeRateLimits stores rate limits as a JSON array; nil is "[]".
func encodeRateLimits(ls []keyward.RateLimit) string {
	if len(ls) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(ls) // a RateLimit marshals without error
	return string(b)
}

// decodeRateLimits reads what encodeRateLimits stored; "[]" is nil.
func decodeRateLimits(b []byte) ([]keyward.RateLimit, error) {
	var ls []keyward.RateLimit
	if err := json.Unmarshal(b, &ls); err != nil {
		return nil, err
	}
	if len(ls) == 0 {
		return nil, nil
	}
	return ls, nil
}

// nullJSON stores empty JSON (key meta, anomaly details) as NULL and
// anything else as its text.
func nullJSON(m json.RawMessage) any {
	if len(bytes.TrimSpace(m)) == 0 {
		return nil
	}
	return string(m)
}
