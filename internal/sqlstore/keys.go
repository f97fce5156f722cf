package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"unicode"

	"github.com/keyward/keyward"
)

// keyCols are the columns of a key, in insertKeys' and scanKey's order.
const keyCols = `id, key_hash, pepper_version, start, prefix, name, role,
	account_id, user_id, permissions, meta, expires_at, disabled, revoked_at, rotated_from, grace_until,
	created_at, created_by, last_used_at, updated_at, ip_allow, rate_limits, meter_id, ` + creditCols +
	`, secret_meta, secret_meta_version, expiry_scheduled, environment`

// keyColumns are the names of keyCols.
var keyColumns = strings.FieldsFunc(keyCols, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })

// keyParams is the number of keyCols.
var keyParams = len(keyColumns)

// keyRowCols are the columns of a key read with its account's disabled
// flag, rate limits and secret metadata, whether it has roles (see
// fillRoles), and its user's external id, meta and secret metadata, from
// "keys k LEFT JOIN accounts a ... LEFT JOIN users u" (scanKeyRow).
const keyRowCols = `k.id, k.key_hash, k.pepper_version, k.start, k.prefix, k.name, k.role,
	k.account_id, k.user_id, k.permissions, k.meta, k.expires_at, k.disabled, k.revoked_at,
	k.rotated_from, k.grace_until, k.created_at, k.created_by, k.last_used_at, k.updated_at,
	k.ip_allow, k.rate_limits, k.meter_id, k.credits_remaining, k.credits_refill_amount, k.credits_refill_interval,
	k.credits_refilled_at, k.credits_version, k.credits_refill_day, k.secret_meta, k.secret_meta_version, k.expiry_scheduled, k.environment,
	COALESCE(a.disabled, FALSE), COALESCE(a.rate_limits, '[]'), a.secret_meta, COALESCE(a.secret_meta_version, 0),
	k.has_roles, COALESCE(u.external_id, ''), u.meta, u.secret_meta, COALESCE(u.secret_meta_version, 0)`

// keyRowFrom is what keyRowCols read from.
const keyRowFrom = ` FROM keys k LEFT JOIN accounts a ON a.id = k.account_id LEFT JOIN users u ON u.id = k.user_id`

// meterCols are the columns of the shared limits of a key's user (um) and
// account (am; meters.go), scanned by keyMeters.
const meterCols = `um.id, COALESCE(um.rate_limits, '[]'), um.credits_remaining, um.credits_refill_amount, um.credits_refill_interval,
	um.credits_refilled_at, COALESCE(um.credits_version, 0), um.credits_refill_day,
	am.id, COALESCE(am.rate_limits, '[]'), am.credits_remaining, am.credits_refill_amount, am.credits_refill_interval,
	am.credits_refilled_at, COALESCE(am.credits_version, 0), am.credits_refill_day`

// selectKey reads a key whole (keyRowCols and meterCols) in one statement;
// it is completed by a WHERE clause.
const selectKey = "SELECT " + keyRowCols + ", " + meterCols + keyRowFrom +
	` LEFT JOIN meters um ON um.id = k.user_id LEFT JOIN meters am ON am.id = k.account_id`

// The verification cache's miss path (KeyByHash) reads a key with
// selectKeyRow: the key, its account and user, and whether the user and
// the account have shared limits (users.has_meter, accounts.has_meter);
// then selectMeters only if one has. Each join costs every lookup a plan
// node whether it finds a row or not, and the meters' two joins cost a
// lookup more than its account's and user's together (docs/benchmarks.md,
// "The key lookup's joins"); a second statement costs a key that has
// shared limits a round trip, which only such keys pay.
const (
	selectKeyRow = "SELECT " + keyRowCols + `, COALESCE(u.has_meter, FALSE), COALESCE(a.has_meter, FALSE)` +
		keyRowFrom + ` WHERE k.key_hash = ?`
	selectMeters = "SELECT " + meterCols + `
	FROM (SELECT 1 AS one) o LEFT JOIN meters um ON um.id = ? LEFT JOIN meters am ON am.id = ?`
)

// CreateKey inserts k. ENOTFOUND if its account or user does not exist (or
// the user is not in the account), ECONFLICT if the id or hash is taken,
// EINVALID if the role does not match the account and user or the meta is
// not JSON. It fills k.AccountDisabled, k.AccountRateLimits and
// k.AccountSecretMeta from the account, and k's User fields from its user,
// so a caller that caches k caches the state a read would return.
func (s *Store) CreateKey(ctx context.Context, ch keyward.Change, k *keyward.Key) error {
	err := s.write(ctx, ch, func(tx *Tx) error { return s.insertKey(ctx, tx, k) })
	if err != nil {
		return s.errorf("create key %s: %w", k.ID, err)
	}
	return nil
}

// BootstrapRootKey inserts k, a root key, only if the database holds no
// usable root key at k.CreatedAt (usableRoot); ECONFLICT otherwise. The
// check and the insert share one write transaction, so two concurrent
// bootstraps cannot both succeed.
func (s *Store) BootstrapRootKey(ctx context.Context, ch keyward.Change, k *keyward.Key) error {
	err := s.write(ctx, ch, func(tx *Tx) error {
		if k.Role != keyward.RoleRoot {
			return keyward.Errorf(keyward.EINVALID, "the bootstrap key must have role root, not %q", k.Role)
		}
		// Bootstraps take turns: of two racing, one sees the other's key.
		if err := s.d.Lock(ctx, tx, "bootstrap"); err != nil {
			return s.dbError(err, Conflicts{})
		}
		var exists bool
		if err := tx.QueryRowContext(ctx, usableRoot, FormatTime(k.CreatedAt)).Scan(&exists); err != nil {
			return s.dbError(err, Conflicts{})
		}
		if exists {
			return keyward.Errorf(keyward.ECONFLICT, "a usable root key already exists")
		}
		return s.insertKey(ctx, tx, k)
	})
	if err != nil {
		return s.errorf("bootstrap root key %s: %w", k.ID, err)
	}
	return nil
}

// usableRoot asks whether a root key is usable at ?1: neither disabled,
// revoked nor expired (keyward.Key.Status VALID).
const usableRoot = `SELECT EXISTS (SELECT 1 FROM keys WHERE role = 'root' AND disabled = FALSE
	AND (revoked_at IS NULL OR revoked_at > ?1) AND (expires_at IS NULL OR expires_at > ?1))`

// insertKey checks k's shape and owners and inserts it.
func (s *Store) insertKey(ctx context.Context, tx *Tx, k *keyward.Key) error {
	if err := k.ValidateRecord(); err != nil {
		return err
	}
	var account *keyward.Account
	if k.AccountID != "" {
		var err error
		if account, err = s.account(ctx, tx, k.AccountID); err != nil {
			return err
		}
	}
	user, err := s.keyUser(ctx, tx, k)
	if err != nil {
		return err
	}
	args, err := s.appendKeyArgs(nil, k)
	if err != nil {
		return err
	}
	if _, err = tx.ExecContext(ctx, insertOneKey, args...); err != nil {
		return s.dbError(err, Conflicts{
			PK:     fmt.Sprintf("key %s already exists", k.ID),
			Unique: "a key with the same hash already exists",
			FK:     fmt.Sprintf("account %s or user %s not found", k.AccountID, k.UserID),
		})
	}
	fillAccount(k, account)
	fillUser(k, user)
	if err := s.insertKeyRoles(ctx, tx, k); err != nil {
		return err
	}
	if err := s.fillRoles(ctx, tx, k); err != nil {
		return err
	}
	return s.fillMeters(ctx, tx, k, map[string]*keyward.Meter{})
}

// keyUser returns the user of k (nil for none), read in tx. ENOTFOUND
// unless it exists in k's account.
func (s *Store) keyUser(ctx context.Context, tx *Tx, k *keyward.Key) (*keyward.User, error) {
	if k.UserID == "" {
		return nil, nil
	}
	u, err := scanUser(tx.QueryRowContext(ctx, selectUser+" WHERE id = ?", k.UserID))
	if errors.Is(err, sql.ErrNoRows) || err == nil && u.AccountID != k.AccountID {
		return nil, keyward.Errorf(keyward.ENOTFOUND, "user %s not found in account %s", k.UserID, k.AccountID)
	}
	if err != nil {
		return nil, s.dbError(err, Conflicts{})
	}
	return u, nil
}

// fillAccount sets the fields of k that mirror its account a (nil for a
// root key).
func fillAccount(k *keyward.Key, a *keyward.Account) {
	k.AccountDisabled, k.AccountRateLimits, k.AccountSecretMeta = false, nil, nil
	if a != nil {
		k.AccountDisabled, k.AccountRateLimits, k.AccountSecretMeta = a.Disabled, a.RateLimits, a.SecretMeta
	}
}

// insertKeys returns an INSERT of n keys, whose arguments appendKeyArgs
// appends key by key.
func insertKeys(n int) string {
	row := "(?" + strings.Repeat(", ?", keyParams-1) + ")"
	var b strings.Builder
	b.WriteString("INSERT INTO keys (" + keyCols + ") VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	return b.String()
}

// insertOneKey is the INSERT of CreateKey.
var insertOneKey = insertKeys(1)

// appendKeyArgs appends the keyParams column values of k, in keyCols'
// order. An empty environment is written, and set in k, as
// keyward.DefaultEnvironment.
func (s *Store) appendKeyArgs(args []any, k *keyward.Key) ([]any, error) {
	k.Environment = keyward.EnvironmentOf(k.Environment)
	perms := s.d.List(k.Permissions)
	args = append(args,
		k.ID, k.Hash[:], k.PepperVersion, k.Start, k.Prefix, k.Name, string(k.Role),
		nullString(k.AccountID), nullString(k.UserID), perms, nullJSON(k.Meta), nullTime(k.ExpiresAt),
		k.Disabled, nullTime(k.RevokedAt), nullString(k.RotatedFrom), nullTime(k.GraceUntil),
		FormatTime(k.CreatedAt), nullString(k.CreatedBy), nullTime(k.LastUsedAt), FormatTime(k.UpdatedAt),
		s.d.List(prefixStrings(k.IPAllow)), encodeList(k.RateLimits), nullString(k.MeterID))
	args = append(args, creditArgs(k.Credits)...)
	return append(append(args, sealedArgs(k.SecretMeta)...), k.ExpiryScheduled, k.Environment), nil
}

// createKeysChunk is the number of rows of one multi-row INSERT in
// CreateKeys: keyParams parameters each, far below the limits of SQLite
// (32766) and PostgreSQL (65535).
const createKeysChunk = 250

// batchConflicts are the messages of the constraints CreateKeys can break.
var batchConflicts = Conflicts{
	PK:     "a key of the batch has an id that already exists",
	Unique: "a key of the batch has a hash that already exists",
	FK:     "an account or user of the batch was not found",
}

// CreateKeys inserts keys in one write transaction, all or none, with the
// dialect's BatchInserter or prepared multi-row INSERTs of createKeysChunk
// keys. Each key is checked
// as CreateKey checks it (its account and user are looked up once per
// batch); a conflict names no key. It fills the Account and User fields of
// every key once the transaction has committed.
func (s *Store) CreateKeys(ctx context.Context, ch keyward.Change, keys []*keyward.Key) error {
	if len(keys) == 0 {
		return nil
	}
	var (
		accounts map[string]*keyward.Account
		users    map[string]*keyward.User
	)
	err := s.write(ctx, ch, func(tx *Tx) error {
		var err error
		if accounts, users, err = s.checkOwners(ctx, tx, keys); err != nil {
			return err
		}
		if bi, ok := s.d.(BatchInserter); ok {
			rows := make([][]any, len(keys))
			for i, k := range keys {
				if rows[i], err = s.appendKeyArgs(nil, k); err != nil {
					return err
				}
			}
			if err := bi.InsertRows(ctx, tx, "keys", keyColumns, rows); err != nil {
				return s.dbError(err, batchConflicts)
			}
			if err := s.insertBatchRoles(ctx, tx, keys); err != nil {
				return err
			}
			return s.fillBatchMeters(ctx, tx, keys)
		}
		stmts := map[int]*sql.Stmt{} // by row count: the full chunk and the tail
		defer func() {
			for _, st := range stmts {
				st.Close()
			}
		}()
		args := make([]any, 0, keyParams*min(len(keys), createKeysChunk))
		for start := 0; start < len(keys); start += createKeysChunk {
			chunk := keys[start:min(start+createKeysChunk, len(keys))]
			args = args[:0]
			for _, k := range chunk {
				if args, err = s.appendKeyArgs(args, k); err != nil {
					return err
				}
			}
			st := stmts[len(chunk)]
			if st == nil {
				if st, err = tx.PrepareContext(ctx, insertKeys(len(chunk))); err != nil {
					return s.dbError(err, Conflicts{})
				}
				stmts[len(chunk)] = st
			}
			if _, err := st.ExecContext(ctx, args...); err != nil {
				return s.dbError(err, batchConflicts)
			}
		}
		if err := s.insertBatchRoles(ctx, tx, keys); err != nil {
			return err
		}
		return s.fillBatchMeters(ctx, tx, keys)
	})
	if err != nil {
		return s.errorf("create %d keys: %w", len(keys), err)
	}
	for _, k := range keys {
		fillAccount(k, accounts[k.AccountID])
		fillUser(k, users[k.UserID])
	}
	return nil
}

// insertBatchRoles attaches the roles of the keys of a batch and fills
// their RolePermissions.
func (s *Store) insertBatchRoles(ctx context.Context, tx *Tx, keys []*keyward.Key) error {
	for _, k := range keys {
		if len(k.Roles) == 0 {
			continue
		}
		if err := s.insertKeyRoles(ctx, tx, k); err != nil {
			return err
		}
		if err := s.fillRoles(ctx, tx, k); err != nil {
			return err
		}
	}
	return nil
}

// checkOwners validates every key of a batch and checks its account and
// user exist (and the user is in the account), looking each up once. It
// returns every account and user named, by id.
func (s *Store) checkOwners(ctx context.Context, tx *Tx, keys []*keyward.Key) (map[string]*keyward.Account, map[string]*keyward.User, error) {
	accounts := map[string]*keyward.Account{}
	users := map[string]*keyward.User{}
	for _, k := range keys {
		if err := k.ValidateRecord(); err != nil {
			return nil, nil, fmt.Errorf("key %s: %w", k.ID, err)
		}
		if _, ok := accounts[k.AccountID]; !ok && k.AccountID != "" {
			a, err := s.account(ctx, tx, k.AccountID)
			if err != nil {
				return nil, nil, err
			}
			accounts[k.AccountID] = a
		}
		if k.UserID == "" {
			continue
		}
		if u, ok := users[k.UserID]; ok && u.AccountID == k.AccountID {
			continue
		}
		u, err := s.keyUser(ctx, tx, k)
		if err != nil {
			return nil, nil, err
		}
		users[k.UserID] = u
	}
	return accounts, users, nil
}

// Key returns the key with id. ENOTFOUND if none.
func (s *Store) Key(ctx context.Context, id string) (*keyward.Key, error) {
	k, err := s.scanKey(s.lookup(ctx, s.keyByIDStmt, s.keyByIDSQL, id))
	if err == nil {
		err = s.fillRoles(ctx, s.r, k)
	}
	if err != nil {
		return nil, s.errorf("key %s: %w", id, s.rowError(err, "key", id))
	}
	return k, nil
}

// KeyByHash returns the key with hash h, with AccountDisabled filled.
// ENOTFOUND if none.
func (s *Store) KeyByHash(ctx context.Context, h keyward.KeyHash) (*keyward.Key, error) {
	return s.keyByHash(ctx, nil, h)
}

// KeyByHashOn is KeyByHash read with r, another connection to a database
// holding the same tables (a PostgreSQL read replica). The dialect must be
// a RowReader. The roles of a key that has some are read from the
// store's own reader.
func (s *Store) KeyByHashOn(ctx context.Context, r RowReader, h keyward.KeyHash) (*keyward.Key, error) {
	return s.keyByHash(ctx, r, h)
}

// keyByHash reads the key of KeyByHash with r (nil: the store's own
// lookup statements), its owner's part with r too if it has one, then its
// roles with the store's reader.
func (s *Store) keyByHash(ctx context.Context, r RowReader, h keyward.KeyHash) (*keyward.Key, error) {
	row := func(st *sql.Stmt, query string, args ...any) scanner {
		if r != nil {
			return r.QueryRow(ctx, query, args...)
		}
		return s.lookup(ctx, st, query, args...)
	}
	var userMeter, accountMeter bool
	k := new(keyward.Key)
	err := s.scanKeyRow(row(s.keyByHashStmt, s.keyByHashSQL, h[:]), k, &userMeter, &accountMeter)
	if err == nil && (userMeter || accountMeter) {
		var m keyMeters
		var userID, accountID any
		if userMeter {
			userID = k.UserID
		}
		if accountMeter {
			accountID = k.AccountID
		}
		if err = row(s.metersStmt, s.metersSQL, userID, accountID).Scan(m.dest()...); err == nil {
			err = m.fill(k)
		}
	}
	if err == nil {
		err = s.fillRoles(ctx, s.r, k)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nil, s.errorf("key by hash: %w", keyward.Errorf(keyward.ENOTFOUND, "key not found"))
	}
	if err != nil {
		return nil, s.errorf("key by hash: %w", s.dbError(err, Conflicts{}))
	}
	return k, nil
}

// lookup reads a key with the prepared statement st, or with the
// dialect's RowReader and query.
func (s *Store) lookup(ctx context.Context, st *sql.Stmt, query string, args ...any) scanner {
	if s.rows != nil {
		return s.rows.QueryRow(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// rowError maps a failed read of the kind of row with id (a key, an
// account, a webhook endpoint, ...): ENOTFOUND "kind id not found" for no
// row, else the database error.
func (s *Store) rowError(err error, kind, id string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return keyward.Errorf(keyward.ENOTFOUND, "%s %s not found", kind, id)
	}
	return s.dbError(err, Conflicts{})
}

// keyTx reads a key inside a write transaction.
func (s *Store) keyTx(ctx context.Context, tx *Tx, id string) (*keyward.Key, error) {
	k, err := s.scanKey(tx.QueryRowContext(ctx, s.locked(tx, selectKey+" WHERE k.id = ?", "k"), id))
	if err != nil {
		return nil, s.rowError(err, "key", id)
	}
	return k, s.fillRoles(ctx, tx, k)
}

// Keys lists the keys matching f by id after p.After.
func (s *Store) Keys(ctx context.Context, f keyward.KeyFilter, p keyward.Page) ([]*keyward.Key, string, error) {
	query, args := selectKey+" WHERE 1=1", []any(nil)
	if f.AccountID != "" {
		query += " AND k.account_id = ?"
		args = append(args, f.AccountID)
	}
	if f.UserID != "" {
		query += " AND k.user_id = ?"
		args = append(args, f.UserID)
	}
	if f.Role != "" {
		query += " AND k.role = ?"
		args = append(args, string(f.Role))
	}
	if f.Environment != "" {
		query += " AND k.environment = ?"
		args = append(args, f.Environment)
	}
	query, args = pageQuery(query, "k.id", ascending, args, p)
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, "", s.errorf("list keys: %w", s.dbError(err, Conflicts{}))
	}
	defer rows.Close()
	keys := []*keyward.Key{}
	for rows.Next() {
		k, err := s.scanKey(rows)
		if err != nil {
			return nil, "", s.errorf("list keys: %w", err)
		}
		keys = append(keys, k)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, "", s.errorf("list keys: %w", s.dbError(err, Conflicts{}))
	}
	keys, next := page(keys, p, func(k *keyward.Key) string { return k.ID })
	if err := s.fillRoles(ctx, s.r, keys...); err != nil {
		return nil, "", s.errorf("list keys: %w", err)
	}
	return keys, next, nil
}

// UpdateKey loads the key, applies fn and saves the result in one write
// transaction; an error from fn aborts it unchanged and is returned. fn
// must not change the id, hash, pepper version, role, account or user
// (EINVALID). It returns the key as stored.
func (s *Store) UpdateKey(ctx context.Context, ch keyward.Change, id string, fn func(*keyward.Key) error) (*keyward.Key, error) {
	var out *keyward.Key
	err := s.write(ctx, ch, func(tx *Tx) error {
		k, err := s.keyTx(ctx, tx, id)
		if err != nil {
			return err
		}
		orig := k.Clone()
		if err := fn(k); err != nil {
			return err
		}
		if err := s.saveKey(ctx, tx, orig, k); err != nil {
			return err
		}
		out, err = s.keyTx(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, s.errorf("update key %s: %w", id, err)
	}
	return out, nil
}

// keyTreeQuery selects the key with id ? and its descendants.
const keyTreeQuery = `WITH RECURSIVE tree(id) AS (
		SELECT id FROM keys WHERE id = ?
		UNION SELECT c.id FROM keys c JOIN tree t ON c.created_by = t.id)
	` + selectKey + ` WHERE k.id IN (SELECT id FROM tree)`

// UpdateKeyTree loads the key with id and its descendants and calls fn on
// each, in one write transaction (see keyward.Store).
func (s *Store) UpdateKeyTree(ctx context.Context, ch keyward.Change, id string, fn func(*keyward.Key) (*keyward.AuditEntry, []*keyward.Event, error)) ([]*keyward.Key, error) {
	var changed []*keyward.Key
	err := s.write(ctx, ch, func(tx *Tx) error {
		rows, err := tx.QueryContext(ctx, s.locked(tx, keyTreeQuery, "k"), id)
		if err != nil {
			return s.dbError(err, Conflicts{})
		}
		var tree []*keyward.Key
		for rows.Next() {
			k, err := s.scanKey(rows)
			if err != nil {
				rows.Close()
				return err
			}
			tree = append(tree, k)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return s.dbError(err, Conflicts{})
		}
		if err := s.fillRoles(ctx, tx, tree...); err != nil {
			return err
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
			if err := s.saveKey(ctx, tx, orig, k); err != nil {
				return err
			}
			if err := insertEvents(ctx, tx, events); err != nil {
				return err
			}
			if err := s.appendAudit(ctx, tx, e); err != nil {
				return err
			}
			stored, err := s.keyTx(ctx, tx, k.ID)
			if err != nil {
				return err
			}
			changed = append(changed, stored)
		}
		return nil
	})
	if err != nil {
		return nil, s.errorf("update key tree of %s: %w", id, err)
	}
	return changed, nil
}

// RotateKey loads the key, lets fn change it and return its replacement,
// then saves both in one write transaction: either the old key is updated,
// the new one inserted and the old key's own rotation policy moved to it,
// or nothing changes. It returns both as stored.
func (s *Store) RotateKey(ctx context.Context, ch keyward.Change, id string, fn func(old *keyward.Key) (*keyward.Key, error)) (old, next *keyward.Key, err error) {
	err = s.write(ctx, ch, func(tx *Tx) error {
		k, err := s.keyTx(ctx, tx, id)
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
		if err := s.saveKey(ctx, tx, orig, k); err != nil {
			return err
		}
		if err := s.insertKey(ctx, tx, n); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE rotation_policies SET key_id = ? WHERE key_id = ?", n.ID, id); err != nil {
			return s.dbError(err, Conflicts{})
		}
		if old, err = s.keyTx(ctx, tx, id); err != nil {
			return err
		}
		next, err = s.keyTx(ctx, tx, n.ID)
		return err
	})
	if err != nil {
		return nil, nil, s.errorf("rotate key %s: %w", id, err)
	}
	return old, next, nil
}

// saveKey writes the mutable fields of k, loaded as orig.
func (s *Store) saveKey(ctx context.Context, tx *Tx, orig, k *keyward.Key) error {
	if k.ID != orig.ID || k.Hash != orig.Hash || k.PepperVersion != orig.PepperVersion ||
		k.Role != orig.Role || k.AccountID != orig.AccountID || k.UserID != orig.UserID {
		return keyward.Errorf(keyward.EINVALID, "the id, hash, role, account and user of a key cannot change")
	}
	if keyward.EnvironmentOf(k.Environment) != orig.Environment {
		return keyward.Errorf(keyward.EINVALID, "the environment of a key cannot change: create a key in the other environment")
	}
	if err := k.ValidateRecord(); err != nil {
		return err
	}
	args := []any{k.Start, k.Prefix, k.Name, s.d.List(k.Permissions), nullJSON(k.Meta),
		nullTime(k.ExpiresAt), k.Disabled, nullTime(k.RevokedAt), nullString(k.RotatedFrom), nullTime(k.GraceUntil),
		FormatTime(k.CreatedAt), nullString(k.CreatedBy), nullTime(k.LastUsedAt), FormatTime(k.UpdatedAt),
		s.d.List(prefixStrings(k.IPAllow)), encodeList(k.RateLimits), nullString(k.MeterID)}
	args = append(append(append(args, creditArgs(k.Credits)...), sealedArgs(k.SecretMeta)...), k.ExpiryScheduled, k.ID)
	_, err := tx.ExecContext(ctx, `UPDATE keys SET start = ?, prefix = ?, name = ?, permissions = ?, meta = ?,
		expires_at = ?, disabled = ?, revoked_at = ?, rotated_from = ?, grace_until = ?, created_at = ?,
		created_by = ?, last_used_at = ?, updated_at = ?, ip_allow = ?, rate_limits = ?, meter_id = ?,
		credits_remaining = ?, credits_refill_amount = ?, credits_refill_interval = ?, credits_refilled_at = ?,
		credits_version = ?, credits_refill_day = ?, secret_meta = ?, secret_meta_version = ?, expiry_scheduled = ?
		WHERE id = ?`, args...)
	if err != nil {
		return s.dbError(err, Conflicts{})
	}
	return s.saveKeyRoles(ctx, tx, orig, k)
}

// DeleteKey deletes the key with id and returns it as it was.
func (s *Store) DeleteKey(ctx context.Context, ch keyward.Change, id string) (*keyward.Key, error) {
	var k *keyward.Key
	err := s.write(ctx, ch, func(tx *Tx) error {
		var err error
		if k, err = s.keyTx(ctx, tx, id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "DELETE FROM keys WHERE id = ?", id)
		return s.dbError(err, Conflicts{})
	})
	if err != nil {
		return nil, s.errorf("delete key %s: %w", id, err)
	}
	return k, nil
}

// touchChunk is how many keys one transaction of TouchKeys updates: the
// single writer is held for one chunk at a time, so the other writes
// (a key created through the API, usage, credits) take their turn during
// a large flush, and a flush cut short by its deadline keeps the chunks it
// wrote.
const touchChunk = 1000

// TouchKeys raises last_used_at of each key to the given time, never
// lowering it, in transactions of touchChunk keys. Unknown ids are
// ignored. On an error the chunks before it are written; writing them
// again (the caller's retry) changes nothing.
func (s *Store) TouchKeys(ctx context.Context, uses []keyward.KeyUse) error {
	for chunk := range slices.Chunk(uses, touchChunk) {
		err := s.WriteUnaudited(ctx, func(tx *Tx) error {
			st, err := tx.PrepareContext(ctx, `UPDATE keys SET last_used_at = ?1
				WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at < ?1)`)
			if err != nil {
				return s.dbError(err, Conflicts{})
			}
			defer st.Close()
			for _, u := range chunk {
				if _, err := st.ExecContext(ctx, FormatTime(u.At), u.ID); err != nil {
					return s.dbError(err, Conflicts{})
				}
			}
			return nil
		})
		if err != nil {
			return s.errorf("touch %d keys: %w", len(uses), err)
		}
	}
	return nil
}

// scanKey scans a row of selectKey: the key, its account and user
// (scanKeyRow), then the shared limits (keyMeters).
func (s *Store) scanKey(row scanner) (*keyward.Key, error) {
	var m keyMeters
	k := new(keyward.Key)
	if err := s.scanKeyRow(row, k, m.dest()...); err != nil {
		return nil, err
	}
	if err := m.fill(k); err != nil {
		return nil, err
	}
	return k, nil
}

// scanKeyRow scans keyRowCols into k, then the columns that follow them
// into more.
func (s *Store) scanKeyRow(row scanner, k *keyward.Key, more ...any) error {
	var (
		hash                                            []byte
		role, rateLimits, accountLimits                 string
		perms, ipAllow                                  []string
		accountID, userID, meta, rotatedFrom, createdBy sql.NullString
		meterID                                         sql.NullString
		expires, revoked, grace, lastUsed               storedTime
		created, updated                                storedTime
		credits                                         storedCredits
		secret, accountSecret                           []byte
		secretVersion, accountSecretVersion             int
		roles                                           bool
		userMeta                                        sql.NullString
		userSecret                                      []byte
		userSecretVersion                               int
	)
	dest := []any{&k.ID, &hash, &k.PepperVersion, &k.Start, &k.Prefix, &k.Name, &role,
		&accountID, &userID, s.d.ListDest(&perms), &meta, &expires, &k.Disabled, &revoked,
		&rotatedFrom, &grace, &created, &createdBy, &lastUsed, &updated,
		s.d.ListDest(&ipAllow), &rateLimits, &meterID}
	dest = append(append(dest, credits.dest()...), &secret, &secretVersion, &k.ExpiryScheduled, &k.Environment,
		&k.AccountDisabled, &accountLimits, &accountSecret, &accountSecretVersion, &roles,
		&k.UserExternalID, &userMeta, &userSecret, &userSecretVersion)
	err := row.Scan(append(dest, more...)...)
	if err != nil {
		return err
	}
	if k.Hash, err = toHash(hash); err != nil {
		return err
	}
	k.Role = keyward.Role(role)
	k.AccountID, k.UserID = accountID.String, userID.String
	k.RotatedFrom, k.CreatedBy, k.MeterID = rotatedFrom.String, createdBy.String, meterID.String
	k.SecretMeta, k.AccountSecretMeta = storedSealed(secret, secretVersion), storedSealed(accountSecret, accountSecretVersion)
	k.HasSecretMeta = k.SecretMeta != nil
	k.Permissions = nonNil(perms)
	if roles {
		k.Roles = []string{} // for fillRoles: hasRoles
	}
	if meta.Valid {
		k.Meta = json.RawMessage(meta.String)
	}
	if userMeta.Valid {
		k.UserMeta = json.RawMessage(userMeta.String)
	}
	k.UserSecretMeta = storedSealed(userSecret, userSecretVersion)
	for _, p := range ipAllow {
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			return fmt.Errorf("key %s: stored ip_allow: %w", k.ID, err)
		}
		k.IPAllow = append(k.IPAllow, prefix)
	}
	if k.RateLimits, err = decodeList[keyward.RateLimit](rateLimits); err != nil {
		return fmt.Errorf("key %s: stored rate_limits: %w", k.ID, err)
	}
	if k.AccountRateLimits, err = decodeList[keyward.RateLimit](accountLimits); err != nil {
		return fmt.Errorf("key %s: stored account rate_limits: %w", k.ID, err)
	}
	if k.Credits, err = credits.credits(); err != nil {
		return fmt.Errorf("key %s: %w", k.ID, err)
	}
	k.ExpiresAt, k.RevokedAt, k.GraceUntil, k.LastUsedAt = expires.ptr(), revoked.ptr(), grace.ptr(), lastUsed.ptr()
	k.CreatedAt, k.UpdatedAt = created.Time, updated.Time
	return nil
}

// keyMeters scans meterCols: the shared limits of a key's user and
// account.
type keyMeters struct{ user, account mirroredMeter }

func (m *keyMeters) dest() []any { return append(m.user.dest(), m.account.dest()...) }

// fill sets k's meters from what was scanned.
func (m *keyMeters) fill(k *keyward.Key) error {
	var err error
	if k.UserMeter, err = m.user.meter(keyward.LevelUser, k.AccountID); err != nil {
		return fmt.Errorf("key %s: user %w", k.ID, err)
	}
	if k.AccountMeter, err = m.account.meter(keyward.LevelAccount, k.AccountID); err != nil {
		return fmt.Errorf("key %s: account %w", k.ID, err)
	}
	return nil
}

func toHash(b []byte) (keyward.KeyHash, error) {
	var h keyward.KeyHash
	if len(b) != len(h) {
		return h, fmt.Errorf("stored key hash has %d bytes, want %d", len(b), len(h))
	}
	copy(h[:], b)
	return h, nil
}

// prefixStrings returns the text of each prefix.
func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// encodeList stores a list (an allow list of CIDRs, rate limits) as a JSON
// array; nil is "[]". Its element types marshal without error.
func encodeList[T keyward.RateLimit](xs []T) string {
	if len(xs) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(xs)
	return string(b)
}

// decodeList reads what encodeList stored; "[]" is nil.
func decodeList[T any](s string) ([]T, error) {
	var xs []T
	if err := json.Unmarshal([]byte(s), &xs); err != nil {
		return nil, err
	}
	if len(xs) == 0 {
		return nil, nil
	}
	return xs, nil
}

// nullJSON stores empty JSON (key meta, anomaly details) as NULL and
// anything else as its text.
func nullJSON(m json.RawMessage) any {
	if len(bytes.TrimSpace(m)) == 0 {
		return nil
	}
	return string(m)
}
