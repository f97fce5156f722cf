package sqlstore

import (
	"context"
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
	keyward.SealedUserSecretMeta:    {"users", "id", "secret_meta", "secret_meta_version", "secret_meta IS NOT NULL", ""},
	keyward.SealedWebhookSecret:     {"webhook_endpoints", "id", "secret", "secret_version", "length(secret) > 0", ""},
	keyward.SealedProviderPassword:  {"provider_connections", "id", "password", "password_version", "length(password) > 0", ""},
	keyward.SealedAuditKey:          {"audit_log", "seq", "wrapped_key", "key_version", "length(wrapped_key) > 0", int64(0)},
	keyward.SealedAuditDetails:      {"audit_log", "seq", "sealed", "key_version", "length(wrapped_key) = 0 AND length(sealed) > 0", int64(0)},
}

// Reseal passes every value of kind sealed under a version other than keep
// to fn and writes what it returns in its place, keyward.ResealBatch values
// per write transaction, its rows locked (or the writer single): no write
// races a batch. It
// returns how many values it rewrote. EINVALID for a kind not in
// keyward.ResealKinds.
func (s *Store) Reseal(ctx context.Context, kind keyward.SealedKind, keep int, fn keyward.ResealFunc) (int64, error) {
	c, ok := sealedColumns[kind]
	if !ok || kind == keyward.SealedAuditDetails {
		return 0, keyward.Errorf(keyward.EINVALID, "%s: reseal: %q is not a kind of value that can be re-encrypted", s.name, kind)
	}
	adCols, stale, bind := "", c.version+" != ?", ""
	switch kind {
	case keyward.SealedAuditKey:
		adCols = ", action, target_type, target_id"
	case keyward.SealedProviderPassword:
		// A password not yet bound to its kind, base URL and user name
		// is re-sealed under any version.
		adCols, stale, bind = ", kind, base_url, username, password_bound", "("+stale+" OR password_bound = FALSE)", ", password_bound = TRUE"
	}
	query := "SELECT " + c.id + ", " + c.data + ", " + c.version + adCols + " FROM " + c.table +
		" WHERE " + c.has + " AND " + stale + " AND " + c.id + " > ? ORDER BY " + c.id + " LIMIT " + strconv.Itoa(keyward.ResealBatch)
	update := "UPDATE " + c.table + " SET " + c.data + " = ?, " + c.version + " = ?" + bind + " WHERE " + c.id + " = ? AND " + c.version + " = ? AND " + c.data + " = ?"
	var total int64
	cursor := c.start
	for {
		var n int
		err := s.WriteUnaudited(ctx, func(tx *Tx) error {
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
				res, err := tx.ExecContext(ctx, update, out.Data, out.Version, v.ID, v.Version, v.Data)
				if err != nil {
					return s.dbError(err, Conflicts{})
				}
				if m, _ := res.RowsAffected(); m == 1 {
					total++
				}
			}
			n, cursor = len(vals), last
			return nil
		})
		if err != nil {
			return total, s.errorf("reseal %s: %w", kind, err)
		}
		if n < keyward.ResealBatch {
			return total, nil
		}
	}
}

// sealedBatch reads the next batch of query and returns it with the cursor
// after it.
func (s *Store) sealedBatch(ctx context.Context, tx *Tx, query string, kind keyward.SealedKind, keep int, cursor any) ([]keyward.SealedValue, any, error) {
	rows, err := tx.QueryContext(ctx, s.locked(tx, query, ""), keep, cursor)
	if err != nil {
		return nil, nil, s.dbError(err, Conflicts{})
	}
	defer rows.Close()
	var vals []keyward.SealedValue
	for rows.Next() {
		var (
			v  keyward.SealedValue
			id any
			// The additional data's columns: an audit key's action,
			// target type and target id; a provider password's kind,
			// base URL and user name.
			ad1, ad2, ad3 string
			bound         bool
			dest          = []any{&id, &v.Data, &v.Version}
		)
		switch kind {
		case keyward.SealedAuditKey:
			dest = append(dest, &ad1, &ad2, &ad3)
		case keyward.SealedProviderPassword:
			dest = append(dest, &ad1, &ad2, &ad3, &bound)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, nil, s.dbError(err, Conflicts{})
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
		switch kind {
		case keyward.SealedAuditKey:
			v.AD = (&keyward.AuditEntry{Action: ad1, TargetType: ad2, TargetID: ad3}).DetailsAD()
		case keyward.SealedProviderPassword:
			v.AD = keyward.ProviderPasswordAD(v.ID, ad1, ad2, ad3)
			if !bound {
				v.LegacyAD = keyward.LegacyProviderPasswordAD(v.ID)
			}
		default:
			v.AD = keyward.SealedAD(kind, v.ID)
		}
		vals = append(vals, v)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, s.dbError(err, Conflicts{})
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
			return nil, s.errorf("count sealed values: %s: %w", kind, s.dbError(err, Conflicts{}))
		}
		for rows.Next() {
			sc := keyward.SealedCount{Kind: kind}
			if err := rows.Scan(&sc.Version, &sc.Count); err != nil {
				rows.Close()
				return nil, s.errorf("count sealed values: %s: %w", kind, err)
			}
			out = append(out, sc)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, s.errorf("count sealed values: %s: %w", kind, s.dbError(err, Conflicts{}))
		}
	}
	return out, nil
}
