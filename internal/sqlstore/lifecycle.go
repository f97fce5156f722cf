package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/keyward/keyward"
)

// TryLock takes the lock called name with a lease of keyward.LockLease, in
// the job_locks table: the processes sharing the database file take turns.
// The release deletes the lease if it is still this holder's; if that
// fails, the lease runs out.
func (s *Store) TryLock(ctx context.Context, name string) (func(), bool, error) {
	var b [16]byte
	rand.Read(b[:])
	holder := hex.EncodeToString(b[:])
	now := time.Now()
	var ok bool
	err := s.WriteUnaudited(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO job_locks (name, holder, expires_at) VALUES (?1, ?2, ?3)
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
			WHERE job_locks.expires_at <= ?4`, name, holder, FormatTime(now.Add(keyward.LockLease)), FormatTime(now))
		if err != nil {
			return s.dbError(err, Conflicts{})
		}
		n, err := res.RowsAffected()
		ok = n == 1
		return s.dbError(err, Conflicts{})
	})
	if err != nil || !ok {
		return nil, false, wrapErr(err, s.name+": lock %s", name)
	}
	release := func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		s.WriteUnaudited(ctx, func(tx *Tx) error {
			_, err := tx.ExecContext(ctx, "DELETE FROM job_locks WHERE name = ? AND holder = ?", name, holder)
			return err
		})
	}
	return release, true, nil
}

// wrapErr prefixes err with a formatted context; nil stays nil.
func wrapErr(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// scopeCond returns the condition selecting the policy of sc.
func scopeCond(sc keyward.RotationScope) (string, string) {
	if sc.KeyID != "" {
		return "key_id = ?", sc.KeyID
	}
	return "account_id = ?", sc.AccountID
}

const selectPolicy = "SELECT COALESCE(account_id, ''), COALESCE(key_id, ''), max_age_us, expire_after_us, updated_at, updated_by FROM rotation_policies"

func scanPolicy(row scanner) (*keyward.RotationPolicy, error) {
	var (
		p              keyward.RotationPolicy
		maxAge, expire int64
		updated        string
	)
	if err := row.Scan(&p.AccountID, &p.KeyID, &maxAge, &expire, &updated, &p.UpdatedBy); err != nil {
		return nil, err
	}
	p.MaxAge, p.ExpireAfter = usDuration(maxAge), usDuration(expire)
	var err error
	p.UpdatedAt, err = parseTime(updated)
	return &p, err
}

func usDuration(us int64) keyward.Duration {
	return keyward.Duration(time.Duration(us) * time.Microsecond)
}

// SetRotationPolicy inserts p or replaces the policy of its scope.
func (s *Store) SetRotationPolicy(ctx context.Context, ch keyward.Change, p *keyward.RotationPolicy) error {
	if err := p.Validate(); err != nil {
		return s.errorf("set rotation policy: %w", err)
	}
	target := "key_id"
	if p.AccountID != "" {
		target = "account_id"
	}
	err := s.write(ctx, ch, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO rotation_policies (account_id, key_id, max_age_us, expire_after_us, updated_at, updated_by)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (`+target+`) DO UPDATE SET max_age_us = excluded.max_age_us,
			expire_after_us = excluded.expire_after_us, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
			nullString(p.AccountID), nullString(p.KeyID), time.Duration(p.MaxAge).Microseconds(),
			time.Duration(p.ExpireAfter).Microseconds(), FormatTime(p.UpdatedAt), p.UpdatedBy)
		return s.dbError(err, Conflicts{FK: p.Scope().String() + " not found"})
	})
	return wrapErr(err, s.name+": set rotation policy of %s", p.Scope())
}

// RotationPolicy returns the policy of sc. ENOTFOUND if none.
func (s *Store) RotationPolicy(ctx context.Context, sc keyward.RotationScope) (*keyward.RotationPolicy, error) {
	if err := sc.Validate(); err != nil {
		return nil, s.errorf("rotation policy: %w", err)
	}
	cond, arg := scopeCond(sc)
	p, err := scanPolicy(s.r.QueryRowContext(ctx, selectPolicy+" WHERE "+cond, arg))
	if err != nil {
		return nil, s.errorf("rotation policy of %s: %w", sc, s.policyError(err, sc))
	}
	return p, nil
}

func (s *Store) policyError(err error, sc keyward.RotationScope) error {
	if errors.Is(err, sql.ErrNoRows) {
		return keyward.Errorf(keyward.ENOTFOUND, "%s has no rotation policy", sc)
	}
	return s.dbError(err, Conflicts{})
}

// DeleteRotationPolicy deletes the policy of sc and returns it.
func (s *Store) DeleteRotationPolicy(ctx context.Context, ch keyward.Change, sc keyward.RotationScope) (*keyward.RotationPolicy, error) {
	if err := sc.Validate(); err != nil {
		return nil, s.errorf("delete rotation policy: %w", err)
	}
	cond, arg := scopeCond(sc)
	var p *keyward.RotationPolicy
	err := s.write(ctx, ch, func(tx *Tx) error {
		var err error
		if p, err = scanPolicy(tx.QueryRowContext(ctx, s.locked(tx, selectPolicy+" WHERE "+cond, ""), arg)); err != nil {
			return s.policyError(err, sc)
		}
		_, err = tx.ExecContext(ctx, "DELETE FROM rotation_policies WHERE "+cond, arg)
		return s.dbError(err, Conflicts{})
	})
	if err != nil {
		return nil, s.errorf("delete rotation policy of %s: %w", sc, err)
	}
	return p, nil
}

// AddKeyNotice records n unless the key has it already (ECONFLICT).
func (s *Store) AddKeyNotice(ctx context.Context, ch keyward.Change, n *keyward.KeyNotice) error {
	err := s.write(ctx, ch, func(tx *Tx) error { return s.insertKeyNotice(ctx, tx, n) })
	return wrapErr(err, s.name+": add %s notice of key %s", n.Kind, n.KeyID)
}

// insertKeyNotice records n in tx; ECONFLICT if the key has it already.
func (s *Store) insertKeyNotice(ctx context.Context, tx *Tx, n *keyward.KeyNotice) error {
	res, err := tx.ExecContext(ctx, `INSERT INTO key_notices (key_id, kind, subject, at) VALUES (?, ?, ?, ?)
		ON CONFLICT (key_id, kind) DO UPDATE SET subject = excluded.subject, at = excluded.at
		WHERE key_notices.subject <> excluded.subject`, n.KeyID, string(n.Kind), FormatTime(n.Subject), FormatTime(n.At))
	if err != nil {
		return s.dbError(err, Conflicts{FK: "key " + n.KeyID + " not found"})
	}
	if c, err := res.RowsAffected(); err != nil {
		return s.dbError(err, Conflicts{})
	} else if c == 0 {
		return keyward.Errorf(keyward.ECONFLICT, "key %s has its %s notice already", n.KeyID, n.Kind)
	}
	return nil
}

// KeyNotices returns the notices of a key, by kind.
func (s *Store) KeyNotices(ctx context.Context, keyID string) ([]*keyward.KeyNotice, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT key_id, kind, subject, at FROM key_notices WHERE key_id = ? ORDER BY kind", keyID)
	if err != nil {
		return nil, s.errorf("notices of key %s: %w", keyID, s.dbError(err, Conflicts{}))
	}
	defer rows.Close()
	out := []*keyward.KeyNotice{}
	for rows.Next() {
		var (
			n           keyward.KeyNotice
			subject, at string
		)
		if err := rows.Scan(&n.KeyID, &n.Kind, &subject, &at); err != nil {
			return nil, s.errorf("notices of key %s: %w", keyID, s.dbError(err, Conflicts{}))
		}
		if n.Subject, err = parseTime(subject); err == nil {
			n.At, err = parseTime(at)
		}
		if err != nil {
			return nil, s.errorf("notices of key %s: %w", keyID, err)
		}
		out = append(out, &n)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf("notices of key %s: %w", keyID, s.dbError(err, Conflicts{}))
	}
	return out, nil
}

// ExpiredKeys lists the expired keys whose expiry was not announced.
func (s *Store) ExpiredKeys(ctx context.Context, now time.Time, after string, limit int) ([]*keyward.Key, error) {
	keys, err := s.queryKeys(ctx, s.r, selectKey+` WHERE k.expires_at IS NOT NULL AND k.expires_at <= ?1
		AND (k.revoked_at IS NULL OR k.revoked_at > k.expires_at)
		AND NOT EXISTS (SELECT 1 FROM key_notices n WHERE n.key_id = k.id AND n.kind = 'expired' AND n.subject = k.expires_at)
		AND k.id > ?2 ORDER BY k.id LIMIT ?3`, FormatTime(now), after, limit)
	return keys, wrapErr(err, s.name+": expired keys")
}

// RetiredKeys lists the non-root keys revoked or expired by before.
func (s *Store) RetiredKeys(ctx context.Context, before time.Time, after string, limit int) ([]*keyward.Key, error) {
	keys, err := s.queryKeys(ctx, s.r, selectKey+` WHERE k.role <> 'root'
		AND ((k.revoked_at IS NOT NULL AND k.revoked_at <= ?1) OR (k.expires_at IS NOT NULL AND k.expires_at <= ?1))
		AND k.id > ?2 ORDER BY k.id LIMIT ?3`, FormatTime(before), after, limit)
	return keys, wrapErr(err, s.name+": retired keys")
}

func (s *Store) queryKeys(ctx context.Context, q querier, query string, args ...any) ([]*keyward.Key, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, s.dbError(err, Conflicts{})
	}
	defer rows.Close()
	keys := []*keyward.Key{}
	for rows.Next() {
		k, err := s.scanKey(rows)
		if err != nil {
			return nil, s.dbError(err, Conflicts{})
		}
		keys = append(keys, k)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, s.dbError(err, Conflicts{})
	}
	return keys, s.fillRoles(ctx, s.r, keys...)
}

// ExpiredIPRules lists the IP rules expired by before.
func (s *Store) ExpiredIPRules(ctx context.Context, before time.Time, after string, limit int) ([]*keyward.IPRule, error) {
	rules, err := s.queryIPRules(ctx, selectIPRule+" WHERE expires_at IS NOT NULL AND expires_at <= ? AND id > ? ORDER BY id LIMIT ?",
		FormatTime(before), after, limit)
	return rules, wrapErr(err, s.name+": expired ip rules")
}

// CreditRefillsDue lists the keys whose stored credits have a refill due.
// The interval is stored in nanoseconds; rounding it down to microseconds
// may list a key a fraction of a microsecond early, which a refill then
// finds not due. A monthly refill is due when the key was last refilled
// before the start of its period (keyward.CreditRefill.PeriodStart):
// this month's refill day if it has come (its last day for a shorter
// month), else last month's.
func (s *Store) CreditRefillsDue(ctx context.Context, now time.Time, after string, limit int) ([]string, error) {
	now = now.UTC()
	y, m, today := now.Date()
	thisMonth := time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
	lastMonth := thisMonth.AddDate(0, -1, 0)
	daysThis, daysLast := thisMonth.AddDate(0, 1, -1).Day(), thisMonth.AddDate(0, 0, -1).Day()
	const day = int64(24 * time.Hour / time.Microsecond)
	// The refill days whose period began this month: up to today, every
	// one on the month's last day.
	come := today
	if today == daysThis {
		come = keyward.MaxRefillDay
	}
	// The refill day's start in a month (its first day, its number of
	// days, a day), in Unix microseconds.
	const dayIn = `CAST(? AS BIGINT) + (CASE WHEN credits_refill_day < ? THEN credits_refill_day ELSE ? END - 1) * CAST(? AS BIGINT)`
	// The period's start of a key's refill day: in this month if it has
	// come, else in last month.
	start := `CASE WHEN credits_refill_day <= ? THEN ` + dayIn + ` ELSE ` + dayIn + ` END`
	rows, err := s.r.QueryContext(ctx, `SELECT id FROM keys WHERE credits_refill_amount IS NOT NULL AND credits_remaining IS NOT NULL
		AND (credits_refill_day IS NULL AND `+s.d.Micros("credits_refilled_at")+` + credits_refill_interval / 1000 <= ?
			OR credits_refill_day IS NOT NULL AND `+s.d.Micros("credits_refilled_at")+` < `+start+`)
		AND id > ? ORDER BY id LIMIT ?`,
		now.UnixMicro(),
		come, thisMonth.UnixMicro(), daysThis, daysThis, day, lastMonth.UnixMicro(), daysLast, daysLast, day,
		after, limit)
	if err != nil {
		return nil, s.errorf("credit refills due: %w", s.dbError(err, Conflicts{}))
	}
	defer rows.Close()
	ids := []string{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, s.errorf("credit refills due: %w", s.dbError(err, Conflicts{}))
		}
		ids = append(ids, id)
	}
	return ids, wrapErr(s.dbError(rows.Err(), Conflicts{}), s.name+": credit refills due")
}

// policyFrom joins each key (and join) to its own rotation policy (kp) and
// its account's (ap), keeping the keys that have one; the key's own wins.
// policyCols reads the effective one (see queryDue).
func policyFrom(join string) string {
	return ` FROM keys k ` + join + `
		LEFT JOIN rotation_policies kp ON kp.key_id = k.id
		LEFT JOIN rotation_policies ap ON ap.account_id = k.account_id
		WHERE (kp.key_id IS NOT NULL OR ap.account_id IS NOT NULL)`
}

const (
	policyCols = `k.id, kp.key_id IS NOT NULL, COALESCE(kp.max_age_us, ap.max_age_us),
		COALESCE(kp.expire_after_us, ap.expire_after_us), COALESCE(kp.updated_at, ap.updated_at), COALESCE(kp.updated_by, ap.updated_by)`
	effMaxAge      = "COALESCE(kp.max_age_us, ap.max_age_us)"
	effExpireAfter = "COALESCE(kp.expire_after_us, ap.expire_after_us)"
)

// dueAt is the expression of a key's DueAt in Unix microseconds.
func (s *Store) dueAt() string { return s.d.Micros("k.created_at") + " + " + effMaxAge }

// RotationDueKeys lists the live keys past their policy's max age that
// were not announced due.
func (s *Store) RotationDueKeys(ctx context.Context, now time.Time, after string, limit int) ([]*keyward.RotationDue, error) {
	ds, err := s.queryDue(ctx, "SELECT "+policyCols+", ''"+policyFrom("")+`
		AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > ?1)
		AND `+s.dueAt()+` <= ?2
		AND NOT EXISTS (SELECT 1 FROM key_notices n WHERE n.key_id = k.id AND n.kind = 'rotation_due' AND `+s.d.Micros("n.subject")+` = `+s.dueAt()+`)
		AND k.id > ?3 ORDER BY k.id LIMIT ?4`, FormatTime(now), now.UnixMicro(), after, limit)
	return ds, wrapErr(err, s.name+": keys due for rotation")
}

// ExpiryDueKeys lists the keys announced due whose policy expires them and
// whose expiry was not scheduled.
func (s *Store) ExpiryDueKeys(ctx context.Context, after string, limit int) ([]*keyward.RotationDue, error) {
	ds, err := s.queryDue(ctx, "SELECT "+policyCols+", n.at"+policyFrom("JOIN key_notices n ON n.key_id = k.id AND n.kind = 'rotation_due'")+`
		AND `+effExpireAfter+` > 0 AND k.revoked_at IS NULL AND `+s.d.Micros("n.subject")+` = `+s.dueAt()+`
		AND NOT EXISTS (SELECT 1 FROM key_notices x WHERE x.key_id = k.id AND x.kind = 'expiry_scheduled'
			AND `+s.d.Micros("x.subject")+` = `+s.d.Micros("n.at")+` + `+effExpireAfter+`)
		AND k.id > ?1 ORDER BY k.id LIMIT ?2`, after, limit)
	return ds, wrapErr(err, s.name+": keys due to expire by rotation policy")
}

// queryDue runs a query of policyCols and a notice time (” for none) and
// reads each key.
func (s *Store) queryDue(ctx context.Context, query string, args ...any) ([]*keyward.RotationDue, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, s.dbError(err, Conflicts{})
	}
	var ds []*keyward.RotationDue
	for rows.Next() {
		var (
			d              keyward.RotationDue
			keyID, updated string
			own            bool
			maxAge, expire int64
			noticeAt       string
		)
		if err := rows.Scan(&keyID, &own, &maxAge, &expire, &updated, &d.Policy.UpdatedBy, &noticeAt); err != nil {
			rows.Close()
			return nil, s.dbError(err, Conflicts{})
		}
		d.Key = &keyward.Key{ID: keyID}
		d.Policy.MaxAge, d.Policy.ExpireAfter = usDuration(maxAge), usDuration(expire)
		if own {
			d.Policy.KeyID = keyID
		}
		if d.Policy.UpdatedAt, err = parseTime(updated); err == nil && noticeAt != "" {
			d.NoticeAt, err = parseTime(noticeAt)
		}
		if err != nil {
			rows.Close()
			return nil, err
		}
		ds = append(ds, &d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, s.dbError(err, Conflicts{})
	}
	out := make([]*keyward.RotationDue, 0, len(ds))
	for _, d := range ds {
		k, err := s.Key(ctx, d.Key.ID)
		if keyward.ErrorCode(err) == keyward.ENOTFOUND {
			continue // deleted since
		}
		if err != nil {
			return nil, err
		}
		d.Key = k
		if d.Policy.KeyID == "" {
			d.Policy.AccountID = k.AccountID
		}
		d.DueAt = k.CreatedAt.Add(time.Duration(d.Policy.MaxAge))
		out = append(out, d)
	}
	return out, nil
}
