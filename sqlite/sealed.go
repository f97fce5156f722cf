package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"

	"github.com/keyward/keyward"
)

// sealedArgs returns the values of the secret_meta and secret_meta_version
// columns for s: NULL and 0 when there is none.
func sealedArgs(s *keyward.Sealed) []any {
	if s == nil {
		return []any{nil, 0}
	}
	return []any{s.Data, s.Version}
}

// storedSealed returns the sealed value read from a secret_meta column and
// its version, nil for none.
func storedSealed(data []byte, version int) *keyward.Sealed {
	if len(data) == 0 {
		return nil
	}
	return &keyward.Sealed{Version: version, Data: data}
}

// sealedColumn is where the values of one keyward.SealedKind are kept.
type sealedColumn struct {
	table, id, data, version string
	// has is the condition of a row holding a value of the kind.
	has string
	// start is the cursor before the first row: "" for text ids, 0 for
	// the audit log's seq.
	start any
}

var sealedColumns = map[keyward.SealedKind]sealedColumn{
	keyward.SealedKeySecretMeta:     {"keys", "id", "secret_meta", "secret_meta_version", "secret_meta IS NOT NULL", ""},
	keyward.SealedAccountSecretMeta: {"accounts", "id", "secret_meta", "secret_meta_version", "secret_meta IS NOT NULL", ""},
	keyward.SealedWebhookSecret:     {"webhook_endpoints", "id", "secret", "secret_version", "length(secret) > 0", ""},
	keyward.SealedProviderPassword:  {"provider_connections", "id", "password", "password_version", "length(password) > 0", ""},
	keyward.SealedAuditKey:          {"audit_log", "seq", "wrapped_key", "key_version", "length(wrapped_key) > 0", int64(0)},
	keyward.SealedAuditDetails:      {"audit_log", "seq", "sealed", "key_version", "length(wrapped_key) = 0 AND length(sealed) > 0", int64(0)},
}

// Reseal passes every value of kind sealed under a version other than keep
// to fn and writes what it returns in its place, keyward.ResealBatch values
// per write transaction (the single writer: no write races a batch). It
// returns how many values it rewrote. EINVALID for a kind not in
// keyward.ResealKinds.
func (s *Store) Reseal(ctx context.Context, kind keyward.SealedKind, keep int, fn keyward.ResealFunc) (int64, error) {
	c, ok := sealedColumns[kind]
	if !ok || kind == keyward.SealedAuditDetails {
		return 0, keyward.Errorf(keyward.EINVALID, "sqlite: reseal: %q is not a kind of value that can be re-encrypted", kind)
	}
	adCols := ""
	if kind == keyward.SealedAuditKey {
		adCols = ", action, target_type, target_id"
	}
	query := "SELECT " + c.id + ", " + c.data + ", " + c.version + adCols + " FROM " + c.table +
		" WHERE " + c.has + " AND " + c.version + " != ? AND " + c.id + " > ? ORDER BY " + c.id + " LIMIT " + strconv.Itoa(keyward.ResealBatch)
	update := "UPDATE " + c.table + " SET " + c.data + " = ?, " + c.version + " = ? WHERE " + c.id + " = ? AND " + c.version + " = ?"
	var total int64
	cursor := c.start
	for {
		var n int
		err := s.writeUnaudited(ctx, func(tx *sql.Tx) error {
			vals, last, err := s.sealedBatch(ctx, tx, query, kind, keep, cursor)
			if err != nil || len(vals) == 0 {
				return err
			}
			for _, v := range vals {
				out, err := fn(v)
				if err != nil {
					return fmt.Errorf("%s %s: %w", kind, v.ID, err)
				}
				if out == nil {
					return keyward.Errorf(keyward.EINVALID, "%s %s: re-encryption returned no sealed value", kind, v.ID)
				}
				if err := out.ValidateRecord(string(kind) + " " + v.ID); err != nil {
					return err
				}
				res, err := tx.ExecContext(ctx, update, out.Data, out.Version, v.ID, v.Version)
				if err != nil {
					return s.dbError(err, conflicts{})
				}
				if m, _ := res.RowsAffected(); m == 1 {
					total++
				}
			}
			n, cursor = len(vals), last
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("sqlite: reseal %s: %w", kind, err)
		}
		if n < keyward.ResealBatch {
			return total, nil
		}
	}
}

// sealedBatch reads the next batch of query and returns it with the cursor
// after it.
func (s *Store) sealedBatch(ctx context.Context, tx *sql.Tx, query string, kind keyward.SealedKind, keep int, cursor any) ([]keyward.SealedValue, any, error) {
	rows, err := tx.QueryContext(ctx, query, keep, cursor)
	if err != nil {
		return nil, nil, s.dbError(err, conflicts{})
	}
	defer rows.Close()
	var vals []keyward.SealedValue
	for rows.Next() {
		var (
			v                     keyward.SealedValue
			id                    any
			action, ttype, target string
			dest                  = []any{&id, &v.Data, &v.Version}
		)
		if kind == keyward.SealedAuditKey {
			dest = append(dest, &action, &ttype, &target)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, nil, s.dbError(err, conflicts{})
		}
		v.Kind, cursor = kind, id
		switch id := id.(type) {
		case int64:
			v.ID = strconv.FormatInt(id, 10)
		case string:
			v.ID = id
		case []byte:
			v.ID = string(id)
			cursor = v.ID
		}
		if kind == keyward.SealedAuditKey {
			v.AD = (&keyward.AuditEntry{Action: action, TargetType: ttype, TargetID: target}).DetailsAD()
		} else {
			v.AD = keyward.SealedAD(kind, v.ID)
		}
		vals = append(vals, v)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, s.dbError(err, conflicts{})
	}
	return vals, cursor, nil
}

// SealedCounts counts the sealed values of every kind by master key
// version.
func (s *Store) SealedCounts(ctx context.Context) ([]keyward.SealedCount, error) {
	var out []keyward.SealedCount
	kinds := append([]keyward.SealedKind{}, keyward.ResealKinds...)
	for _, kind := range append(kinds, keyward.SealedAuditDetails) {
		c := sealedColumns[kind]
		rows, err := s.r.QueryContext(ctx, "SELECT "+c.version+", count(*) FROM "+c.table+" WHERE "+c.has+" GROUP BY "+c.version+" ORDER BY "+c.version)
		if err != nil {
			return nil, fmt.Errorf("sqlite: count sealed values: %s: %w", kind, s.dbError(err, conflicts{}))
		}
		for rows.Next() {
			sc := keyward.SealedCount{Kind: kind}
			if err := rows.Scan(&sc.Version, &sc.Count); err != nil {
				rows.Close()
				return nil, fmt.Errorf("sqlite: count sealed values: %s: %w", kind, err)
			}
			out = append(out, sc)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("sqlite: count sealed values: %s: %w", kind, s.dbError(err, conflicts{}))
		}
	}
	return out, nil
}
