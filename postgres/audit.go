package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keyward/keyward"
)

const selectAudit = `SELECT seq, time, actor, action, target_type, target_id, account_id, outcome,
	sealed, key_version, prev_hash, hash, wrapped_key, chain_version FROM audit_log`

// AppendAudit appends e to the audit log in a transaction of its own,
// setting its Seq, PrevHash and Hash (and truncating its Time to the
// microseconds the store keeps). EINVALID without an Action, an Outcome or
// a Time.
func (s *Store) AppendAudit(ctx context.Context, e *keyward.AuditEntry) error {
	if err := s.inTx(ctx, func(tx pgx.Tx) error { return s.appendAudit(ctx, tx, e) }); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return nil
}

// appendAudit appends e inside tx. It first takes the audit log's advisory
// lock of the schema, held until tx ends, so appends from any number of
// instances queue: each reads the last entry committed before it (read
// committed: the statement's snapshot is taken after the lock is held) and
// entries chain without gaps. The lock is taken after the change that tx
// records, so it is held only for the append and the commit; whoever holds
// it waits for nothing else, so it cannot deadlock with row locks. e.Time is
// truncated to microseconds before hashing, so the entry read back hashes
// the same.
func (s *Store) appendAudit(ctx context.Context, tx pgx.Tx, e *keyward.AuditEntry) error {
	if err := e.Validate(); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey(s.schema, "audit")); err != nil {
		return fmt.Errorf("append audit entry: lock the audit log: %w", s.dbError(err, nil))
	}
	var (
		last int64
		prev []byte
	)
	err := tx.QueryRow(ctx, "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").Scan(&last, &prev)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("append audit entry: read the last entry: %w", s.dbError(err, nil))
	}
	e.Time = e.Time.UTC().Truncate(time.Microsecond)
	e.Seq = last + 1
	e.Chain(prev)
	actor, err := json.Marshal(e.Actor)
	if err != nil {
		return fmt.Errorf("append audit entry %d: actor: %w", e.Seq, err)
	}
	_, err = tx.Exec(ctx, `INSERT INTO audit_log (seq, time, actor, action, target_type, target_id,
		account_id, outcome, sealed, key_version, prev_hash, hash, wrapped_key, chain_version)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		e.Seq, e.Time, string(actor), e.Action, e.TargetType, e.TargetID, e.AccountID,
		string(e.Outcome), e.SealedBytes(), e.KeyVersion, e.PrevHash, e.Hash, e.WrappedKeyBytes(), e.ChainVersion)
	if err != nil {
		return fmt.Errorf("append audit entry %d: %w", e.Seq, s.dbError(err, conflicts{
			"audit_log_pkey": fmt.Sprintf("audit entry %d already exists", e.Seq),
		}))
	}
	return nil
}

// AuditEntries lists the entries matching f by Seq after the cursor
// p.After (a decimal Seq; EINVALID if it is not one), oldest first. Entries
// come as stored: Sealed, not Details.
func (s *Store) AuditEntries(ctx context.Context, f keyward.AuditFilter, p keyward.Page) ([]*keyward.AuditEntry, string, error) {
	after, err := keyward.ParseAuditCursor(p.After)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: list audit entries: %w", err)
	}
	query, args := selectAudit+" WHERE seq > $1", []any{after}
	for _, c := range []struct{ col, v string }{
		{"actor->>'key_id'", f.ActorKeyID}, {"action", f.Action},
		{"target_id", f.TargetID}, {"account_id", f.AccountID},
	} {
		if c.v != "" {
			args = append(args, c.v)
			query += " AND " + c.col + " = $" + strconv.Itoa(len(args))
		}
	}
	if !f.Since.IsZero() {
		args = append(args, f.Since)
		query += " AND time >= $" + strconv.Itoa(len(args))
	}
	if !f.Until.IsZero() {
		args = append(args, f.Until)
		query += " AND time < $" + strconv.Itoa(len(args))
	}
	query, args = pageQuery(query, "seq", ascending, args, keyward.Page{Limit: p.Limit})
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: list audit entries: %w", s.dbError(err, nil))
	}
	entries, err := collect(rows, scanAudit)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: list audit entries: %w", s.dbError(err, nil))
	}
	entries, next := page(entries, p, func(e *keyward.AuditEntry) string { return strconv.FormatInt(e.Seq, 10) })
	return entries, next, nil
}

func scanAudit(row pgx.Row) (*keyward.AuditEntry, error) {
	var (
		e     keyward.AuditEntry
		actor []byte
		out   string
	)
	if err := row.Scan(&e.Seq, &e.Time, &actor, &e.Action, &e.TargetType, &e.TargetID, &e.AccountID, &out,
		&e.Sealed, &e.KeyVersion, &e.PrevHash, &e.Hash, &e.WrappedKey, &e.ChainVersion); err != nil {
		return nil, err
	}
	e.Time, e.Outcome = e.Time.UTC(), keyward.AuditOutcome(out)
	if err := json.Unmarshal(actor, &e.Actor); err != nil {
		return nil, fmt.Errorf("audit entry %d: stored actor: %w", e.Seq, err)
	}
	return &e, nil
}

// LastAuditEntry returns the newest audit entry as stored, nil when the
// log is empty.
func (s *Store) LastAuditEntry(ctx context.Context) (*keyward.AuditEntry, error) {
	e, err := scanAudit(s.pool.QueryRow(ctx, selectAudit+" ORDER BY seq DESC LIMIT 1"))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: last audit entry: %w", s.dbError(err, nil))
	}
	return e, nil
}
