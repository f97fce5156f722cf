package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/keyward/keyward"
)

const selectIPRule = "SELECT id, account_id, action, cidr, reason, expires_at, created_at, created_by, automatic FROM ip_rules"

// CreateIPRule inserts r. ENOTFOUND if its account does not exist,
// ECONFLICT if the id is taken, EINVALID for a bad action or CIDR.
func (s *Store) CreateIPRule(ctx context.Context, ch keyward.Change, r *keyward.IPRule) error {
	if err := r.Validate(); err != nil {
		return s.errorf("create ip rule %s: %w", r.ID, err)
	}
	err := s.write(ctx, ch, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO ip_rules (id, account_id, action, cidr, reason, expires_at, created_at, created_by, automatic)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.ID, nullString(r.AccountID), string(r.Action), r.CIDR.String(), r.Reason, nullTime(r.ExpiresAt),
			FormatTime(r.CreatedAt), nullString(r.CreatedBy), r.Automatic)
		return s.dbError(err, Conflicts{
			PK: fmt.Sprintf("ip rule %s already exists", r.ID),
			FK: fmt.Sprintf("account %s not found", r.AccountID),
		})
	})
	if err != nil {
		return s.errorf("create ip rule %s: %w", r.ID, err)
	}
	return nil
}

// IPRule returns the rule with id. ENOTFOUND if none.
func (s *Store) IPRule(ctx context.Context, id string) (*keyward.IPRule, error) {
	r, err := scanIPRule(s.r.QueryRowContext(ctx, selectIPRule+" WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		err = keyward.Errorf(keyward.ENOTFOUND, "ip rule %s not found", id)
	}
	if err != nil {
		return nil, s.errorf("ip rule %s: %w", id, s.dbError(err, Conflicts{}))
	}
	return r, nil
}

// IPRules lists the rules matching f by id after p.After, expired ones
// included.
func (s *Store) IPRules(ctx context.Context, f keyward.IPRuleFilter, p keyward.Page) ([]*keyward.IPRule, string, error) {
	query, args := selectIPRule+" WHERE 1=1", []any(nil)
	switch {
	case f.Global && f.AccountID != "":
		return nil, "", keyward.Errorf(keyward.EINVALID, "%s: list ip rules: filter by an account or global rules, not both", s.name)
	case f.Global:
		query += " AND account_id IS NULL"
	case f.AccountID != "":
		query += " AND account_id = ?"
		args = append(args, f.AccountID)
	}
	query, args = pageQuery(query, "id", ascending, args, p)
	rules, err := s.queryIPRules(ctx, query, args...)
	if err != nil {
		return nil, "", s.errorf("list ip rules: %w", err)
	}
	rules, next := page(rules, p, func(r *keyward.IPRule) string { return r.ID })
	return rules, next, nil
}

// ActiveIPRules returns every rule without an expiry or expiring after
// now, in id order.
func (s *Store) ActiveIPRules(ctx context.Context, now time.Time) ([]*keyward.IPRule, error) {
	rules, err := s.queryIPRules(ctx, selectIPRule+" WHERE expires_at IS NULL OR expires_at > ? ORDER BY id", FormatTime(now))
	if err != nil {
		return nil, s.errorf("active ip rules: %w", err)
	}
	return rules, nil
}

func (s *Store) queryIPRules(ctx context.Context, query string, args ...any) ([]*keyward.IPRule, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, s.dbError(err, Conflicts{})
	}
	defer rows.Close()
	rules := []*keyward.IPRule{}
	for rows.Next() {
		r, err := scanIPRule(rows)
		if err != nil {
			return nil, s.dbError(err, Conflicts{})
		}
		rules = append(rules, r)
	}
	if err := rows.Err(); err != nil {
		return nil, s.dbError(err, Conflicts{})
	}
	return rules, nil
}

// DeleteIPRule deletes the rule with id and returns it as it was.
func (s *Store) DeleteIPRule(ctx context.Context, ch keyward.Change, id string) (*keyward.IPRule, error) {
	var r *keyward.IPRule
	err := s.write(ctx, ch, func(tx *Tx) error {
		var err error
		r, err = scanIPRule(tx.QueryRowContext(ctx, s.locked(tx, selectIPRule+" WHERE id = ?", ""), id))
		if errors.Is(err, sql.ErrNoRows) {
			return keyward.Errorf(keyward.ENOTFOUND, "ip rule %s not found", id)
		}
		if err != nil {
			return s.dbError(err, Conflicts{})
		}
		_, err = tx.ExecContext(ctx, "DELETE FROM ip_rules WHERE id = ?", id)
		return s.dbError(err, Conflicts{})
	})
	if err != nil {
		return nil, s.errorf("delete ip rule %s: %w", id, err)
	}
	return r, nil
}

func scanIPRule(row scanner) (*keyward.IPRule, error) {
	var (
		r                    keyward.IPRule
		accountID, createdBy sql.NullString
		expires              sql.NullString
		action, cidr         string
		created              string
	)
	if err := row.Scan(&r.ID, &accountID, &action, &cidr, &r.Reason, &expires, &created, &createdBy, &r.Automatic); err != nil {
		return nil, err
	}
	r.AccountID, r.CreatedBy, r.Action = accountID.String, createdBy.String, keyward.IPAction(action)
	var err error
	if r.CIDR, err = netip.ParsePrefix(cidr); err != nil {
		return nil, fmt.Errorf("ip rule %s: stored cidr: %w", r.ID, err)
	}
	if r.ExpiresAt, err = parseNullTime(expires); err != nil {
		return nil, fmt.Errorf("ip rule %s: %w", r.ID, err)
	}
	if r.CreatedAt, err = parseTime(created); err != nil {
		return nil, fmt.Errorf("ip rule %s: %w", r.ID, err)
	}
	return &r, nil
}
