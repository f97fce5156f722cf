package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/keyward/keyward"
)

const selectAudit = `SELECT seq, time, actor, action, target_type, target_id, account_id, outcome,
	sealed, key_version, prev_hash, hash, wrapped_key, chain_version FROM audit_log`

// AppendAudit appends e to the audit log in a transaction of its own,
// setting its Seq, PrevHash and Hash (and truncating its Time to the
// microseconds the store keeps). EINVALID without an Action, an Outcome or
// a Time.
func (s *Store) AppendAudit(ctx context.Context, e *keyward.AuditEntry) error {
	err := s.WriteUnaudited(ctx, func(tx *Tx) error { return s.appendAudit(ctx, tx, e) })
	if err != nil {
		return s.errorf("%w", err)
	}
	return nil
}

// appendAudit appends e inside tx, a write transaction: it takes the
// sequence number and hash of the last entry, so entries chain without
// gaps (appends take turns: see Dialect.Lock). e.Time is
// truncated to microseconds before hashing, so the entry read back hashes
// the same.
func (s *Store) appendAudit(ctx context.Context, tx *Tx, e *keyward.AuditEntry) error {
	if err := e.Validate(); err != nil {
		return err
	}
	// Appends take turns (one writer, or a lock every instance takes), so
	// entries are numbered without gaps.
	if err := s.d.Lock(ctx, tx, "audit"); err != nil {
		return fmt.Errorf("append audit entry: %w", s.dbError(err, Conflicts{}))
	}
	var (
		last int64
		prev []byte
	)
	err := tx.QueryRowContext(ctx, "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").Scan(&last, &prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("append audit entry: read the last entry: %w", s.dbError(err, Conflicts{}))
	}
	e.Time = e.Time.UTC().Truncate(time.Microsecond)
	e.Seq = last + 1
	e.Chain(prev)
	actor, err := json.Marshal(e.Actor)
	if err != nil {
		return fmt.Errorf("append audit entry %d: actor: %w", e.Seq, err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO audit_log (seq, time, actor, action, target_type, target_id,
		account_id, outcome, sealed, key_version, prev_hash, hash, wrapped_key, chain_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Seq, FormatTime(e.Time), string(actor), e.Action, e.TargetType, e.TargetID, e.AccountID,
		string(e.Outcome), e.SealedBytes(), e.KeyVersion, e.PrevHash, e.Hash, e.WrappedKeyBytes(), e.ChainVersion)
	if err != nil {
		return fmt.Errorf("append audit entry %d: %w", e.Seq, s.dbError(err, Conflicts{
			PK: fmt.Sprintf("audit entry %d already exists", e.Seq),
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
		return nil, "", s.errorf("list audit entries: %w", err)
	}
	query, args := selectAudit+" WHERE seq > ?", []any{after}
	for _, c := range []struct{ col, v string }{
		{s.d.JSONField("actor", "key_id"), f.ActorKeyID}, {"action", f.Action},
		{"target_id", f.TargetID}, {"account_id", f.AccountID},
	} {
		if c.v != "" {
			query += " AND " + c.col + " = ?"
			args = append(args, c.v)
		}
	}
	if !f.Since.IsZero() {
		query += " AND time >= ?"
		args = append(args, FormatTime(f.Since))
	}
	if !f.Until.IsZero() {
		query += " AND time < ?"
		args = append(args, FormatTime(f.Until))
	}
	query, args = pageQuery(query, "seq", ascending, args, keyward.Page{Limit: p.Limit})
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, "", s.errorf("list audit entries: %w", s.dbError(err, Conflicts{}))
	}
	defer rows.Close()
	entries := []*keyward.AuditEntry{}
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, "", s.errorf("list audit entries: %w", err)
		}
		entries = append(entries, e)
	}
	if err := rows.Err(); err != nil {
		return nil, "", s.errorf("list audit entries: %w", s.dbError(err, Conflicts{}))
	}
	entries, next := page(entries, p, func(e *keyward.AuditEntry) string { return strconv.FormatInt(e.Seq, 10) })
	return entries, next, nil
}

func scanAudit(row scanner) (*keyward.AuditEntry, error) {
	var (
		e              keyward.AuditEntry
		at, actor, out string
	)
	if err := row.Scan(&e.Seq, &at, &actor, &e.Action, &e.TargetType, &e.TargetID, &e.AccountID, &out,
		&e.Sealed, &e.KeyVersion, &e.PrevHash, &e.Hash, &e.WrappedKey, &e.ChainVersion); err != nil {
		return nil, err
	}
	e.Outcome = keyward.AuditOutcome(out)
	var err error
	if e.Time, err = parseTime(at); err != nil {
		return nil, fmt.Errorf("audit entry %d: %w", e.Seq, err)
	}
	if err := json.Unmarshal([]byte(actor), &e.Actor); err != nil {
		return nil, fmt.Errorf("audit entry %d: stored actor: %w", e.Seq, err)
	}
	return &e, nil
}

// LastAuditEntry returns the newest audit entry as stored, nil when the
// log is empty.
func (s *Store) LastAuditEntry(ctx context.Context) (*keyward.AuditEntry, error) {
	e, err := scanAudit(s.r.QueryRowContext(ctx, selectAudit+" ORDER BY seq DESC LIMIT 1"))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, s.errorf("last audit entry: %w", s.dbError(err, Conflicts{}))
	}
	return e, nil
}
