package postgres

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/keyward/keyward"
)

const selectAnomaly = `SELECT id, type, severity, COALESCE(account_id, ''), COALESCE(key_id, ''), COALESCE(ip, ''),
	details, action, action_error, created_at FROM anomalies`

// CreateAnomaly inserts a. ECONFLICT if the id is taken, EINVALID unless
// it has an id, a known type and severity, and details that are a JSON
// object or empty. The key and account it names need not exist.
func (s *Store) CreateAnomaly(ctx context.Context, ch keyward.Change, a *keyward.Anomaly) error {
	if err := a.Validate(); err != nil {
		return fmt.Errorf("postgres: create anomaly %s: %w", a.ID, err)
	}
	err := s.write(ctx, ch, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO anomalies (id, type, severity, account_id, key_id, ip, details,
			action, action_error, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			a.ID, string(a.Type), string(a.Severity), nullString(a.AccountID), nullString(a.KeyID), nullString(a.IP),
			nullJSON(a.Details), string(a.Action), a.ActionError, a.CreatedAt)
		return s.dbError(err, conflicts{"anomalies_pkey": fmt.Sprintf("anomaly %s already exists", a.ID)})
	})
	if err != nil {
		return fmt.Errorf("postgres: create anomaly %s: %w", a.ID, err)
	}
	return nil
}

// Anomalies lists the anomalies matching f, newest (highest id) first,
// before the cursor p.After.
func (s *Store) Anomalies(ctx context.Context, f keyward.AnomalyFilter, p keyward.Page) ([]*keyward.Anomaly, string, error) {
	query, args := selectAnomaly+" WHERE true", []any(nil)
	for _, c := range []struct{ col, v string }{
		{"account_id", f.AccountID}, {"key_id", f.KeyID}, {"type", string(f.Type)},
	} {
		if c.v != "" {
			args = append(args, c.v)
			query += " AND " + c.col + " = $" + strconv.Itoa(len(args))
		}
	}
	if !f.Since.IsZero() {
		args = append(args, f.Since)
		query += " AND created_at >= $" + strconv.Itoa(len(args))
	}
	query, args = pageQuery(query, "id", newestFirst, args, p)
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: list anomalies: %w", s.dbError(err, nil))
	}
	anomalies, err := collect(rows, scanAnomaly)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: list anomalies: %w", s.dbError(err, nil))
	}
	anomalies, next := page(anomalies, p, func(a *keyward.Anomaly) string { return a.ID })
	return anomalies, next, nil
}

func scanAnomaly(row pgx.Row) (*keyward.Anomaly, error) {
	var (
		a                     keyward.Anomaly
		typ, severity, action string
		details               []byte
	)
	if err := row.Scan(&a.ID, &typ, &severity, &a.AccountID, &a.KeyID, &a.IP, &details, &action, &a.ActionError, &a.CreatedAt); err != nil {
		return nil, err
	}
	a.Type, a.Severity, a.Action = keyward.AnomalyType(typ), keyward.Severity(severity), keyward.AnomalyAction(action)
	a.Details = details
	a.CreatedAt = a.CreatedAt.UTC()
	return &a, nil
}
