package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keyward/keyward"
)

const selectIPRule = `SELECT id, COALESCE(account_id, ''), action, cidr, reason, expires_at, created_at,
	COALESCE(created_by, ''), automatic FROM ip_rules`

// CreateIPRule inserts r. ENOTFOUND if its account does not exist,
// ECONFLICT if the id is taken, EINVALID for a bad action or CIDR.
func (s *Store) CreateIPRule(ctx context.Context, ch keyward.Change, r *keyward.IPRule) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("postgres: create ip rule %s: %w", r.ID, err)
	}
	err := s.write(ctx, ch, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO ip_rules (id, account_id, action, cidr, reason, expires_at, created_at, created_by, automatic)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			r.ID, nullString(r.AccountID), string(r.Action), r.CIDR.String(), r.Reason, r.ExpiresAt,
			r.CreatedAt, nullString(r.CreatedBy), r.Automatic)
		return s.dbError(err, conflicts{
			"ip_rules_pkey":         fmt.Sprintf("ip rule %s already exists", r.ID),
			"ip_rules_account_fkey": fmt.Sprintf("account %s not found", r.AccountID),
		})
	})
	if err != nil {
		return fmt.Errorf("postgres: create ip rule %s: %w", r.ID, err)
	}
	return nil
}

// IPRule returns the rule with id. ENOTFOUND if none.
func (s *Store) IPRule(ctx context.Context, id string) (*keyward.IPRule, error) {
	r, err := scanIPRule(s.pool.QueryRow(ctx, selectIPRule+" WHERE id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		err = keyward.Errorf(keyward.ENOTFOUND, "ip rule %s not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: ip rule %s: %w", id, s.dbError(err, nil))
	}
	return r, nil
}

// IPRules lists the rules matching f by id after p.After, expired ones
// included.
func (s *Store) IPRules(ctx context.Context, f keyward.IPRuleFilter, p keyward.Page) ([]*keyward.IPRule, string, error) {
	query, args := selectIPRule+" WHERE true", []any(nil)
	switch {
	case f.Global && f.AccountID != "":
		return nil, "", keyward.Errorf(keyward.EINVALID, "postgres: list ip rules: filter by an account or global rules, not both")
	case f.Global:
		query += " AND account_id IS NULL"
	case f.AccountID != "":
		args = append(args, f.AccountID)
		query += " AND account_id = $1"
	}
	query, args = pageQuery(query, "id", ascending, args, p)
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: list ip rules: %w", s.dbError(err, nil))
	}
	rules, err := collect(rows, scanIPRule)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: list ip rules: %w", s.dbError(err, nil))
	}
	rules, next := page(rules, p, func(r *keyward.IPRule) string { return r.ID })
	return rules, next, nil
}

// ActiveIPRules returns every rule without an expiry or expiring after
// now, in id order.
func (s *Store) ActiveIPRules(ctx context.Context, now time.Time) ([]*keyward.IPRule, error) {
	rows, err := s.pool.Query(ctx, selectIPRule+" WHERE expires_at IS NULL OR expires_at > $1 ORDER BY id", now)
	if err != nil {
		return nil, fmt.Errorf("postgres: active ip rules: %w", s.dbError(err, nil))
	}
	rules, err := collect(rows, scanIPRule)
	if err != nil {
		return nil, fmt.Errorf("postgres: active ip rules: %w", s.dbError(err, nil))
	}
	return rules, nil
}

// DeleteIPRule deletes the rule with id and returns it as it was.
func (s *Store) DeleteIPRule(ctx context.Context, ch keyward.Change, id string) (*keyward.IPRule, error) {
	var r *keyward.IPRule
	err := s.write(ctx, ch, func(tx pgx.Tx) error {
		var err error
		r, err = scanIPRule(tx.QueryRow(ctx, `DELETE FROM ip_rules WHERE id = $1
			RETURNING id, COALESCE(account_id, ''), action, cidr, reason, expires_at, created_at, COALESCE(created_by, ''), automatic`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return keyward.Errorf(keyward.ENOTFOUND, "ip rule %s not found", id)
		}
		return s.dbError(err, nil)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: delete ip rule %s: %w", id, err)
	}
	return r, nil
}

func scanIPRule(row pgx.Row) (*keyward.IPRule, error) {
	var (
		r            keyward.IPRule
		action, cidr string
	)
	if err := row.Scan(&r.ID, &r.AccountID, &action, &cidr, &r.Reason, &r.ExpiresAt, &r.CreatedAt, &r.CreatedBy, &r.Automatic); err != nil {
		return nil, err
	}
	r.Action = keyward.IPAction(action)
	var err error
	if r.CIDR, err = netip.ParsePrefix(cidr); err != nil {
		return nil, fmt.Errorf("ip rule %s: stored cidr: %w", r.ID, err)
	}
	r.CreatedAt, r.ExpiresAt = r.CreatedAt.UTC(), utc(r.ExpiresAt)
	return &r, nil
}
