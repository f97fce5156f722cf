package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/keyward/keyward"
)

const selectAnomaly = "SELECT id, type, severity, account_id, key_id, ip, details, action, action_error, created_at FROM anomalies"

// CreateAnomaly inserts a. ECONFLICT if the id is taken, EINVALID unless
// it has an id, a known type and severity, and details that are a JSON
// object or empty. The key and account it names need not exist.
func (s *Store) CreateAnomaly(ctx context.Context, ch keyward.Change, a *keyward.Anomaly) error {
	if err := a.Validate(); err != nil {
		return s.errorf("create anomaly %s: %w", a.ID, err)
	}
	err := s.write(ctx, ch, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO anomalies (id, type, severity, account_id, key_id, ip, details,
			action, action_error, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.ID, string(a.Type), string(a.Severity), nullString(a.AccountID), nullString(a.KeyID), nullString(a.IP),
			nullJSON(a.Details), string(a.Action), a.ActionError, FormatTime(a.CreatedAt))
		return s.dbError(err, Conflicts{PK: fmt.Sprintf("anomaly %s already exists", a.ID)})
	})
	if err != nil {
		return s.errorf("create anomaly %s: %w", a.ID, err)
	}
	return nil
}

// Anomalies lists the anomalies matching f, newest (highest id) first,
// before the cursor p.After.
func (s *Store) Anomalies(ctx context.Context, f keyward.AnomalyFilter, p keyward.Page) ([]*keyward.Anomaly, string, error) {
	query, args := selectAnomaly+" WHERE 1=1", []any(nil)
	for _, c := range []struct{ col, v string }{
		{"account_id", f.AccountID}, {"key_id", f.KeyID}, {"type", string(f.Type)},
	} {
		if c.v != "" {
			query += " AND " + c.col + " = ?"
			args = append(args, c.v)
		}
	}
	if !f.Since.IsZero() {
		query += " AND created_at >= ?"
		args = append(args, FormatTime(f.Since))
	}
	return listPage(ctx, s, "list anomalies", query, args, "id", newestFirst, p, scanAnomaly, func(a *keyward.Anomaly) string { return a.ID })
}

func scanAnomaly(row scanner) (*keyward.Anomaly, error) {
	var (
		a                             keyward.Anomaly
		typ, severity, action         string
		accountID, keyID, ip, details sql.NullString
		created                       string
	)
	if err := row.Scan(&a.ID, &typ, &severity, &accountID, &keyID, &ip, &details, &action, &a.ActionError, &created); err != nil {
		return nil, err
	}
	a.Type, a.Severity, a.Action = keyward.AnomalyType(typ), keyward.Severity(severity), keyward.AnomalyAction(action)
	a.AccountID, a.KeyID, a.IP = accountID.String, keyID.String, ip.String
	if details.Valid {
		a.Details = []byte(details.String)
	}
	var err error
	if a.CreatedAt, err = parseTime(created); err != nil {
		return nil, fmt.Errorf("anomaly %s: %w", a.ID, err)
	}
	return &a, nil
}
