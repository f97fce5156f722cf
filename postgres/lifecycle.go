package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keyward/keyward"
)

// TryLock takes the session advisory lock of name (lockKey) on a
// connection of its own, opened for the purpose outside the pool (so locks
// held by long jobs never starve the pool their work needs) and held until
// the release: PostgreSQL drops the lock if the connection ends, so a dead
// instance never blocks the job. The release unlocks and closes the
// connection; closing alone drops the lock too.
func (s *Store) TryLock(ctx context.Context, name string) (func(), bool, error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, false, fmt.Errorf("postgres: lock %s: %w", name, s.dbError(err, nil))
	}
	key := lockKey(s.schema, "job:"+name)
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&ok); err != nil || !ok {
		conn.Close(context.WithoutCancel(ctx))
		if err != nil {
			return nil, false, fmt.Errorf("postgres: lock %s: %w", name, s.dbError(err, nil))
		}
		return nil, false, nil
	}
	release := func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", key)
		conn.Close(ctx)
	}
	return release, true, nil
}

// scopeCond returns the condition selecting the policy of sc ($1).
func scopeCond(sc keyward.RotationScope) (string, string) {
	if sc.KeyID != "" {
		return "key_id = $1", sc.KeyID
	}
	return "account_id = $1", sc.AccountID
}

const selectPolicy = "SELECT COALESCE(account_id, ''), COALESCE(key_id, ''), max_age_us, expire_after_us, updated_at, updated_by FROM rotation_policies"

func scanPolicy(row pgx.Row) (*keyward.RotationPolicy, error) {
	var (
		p              keyward.RotationPolicy
		maxAge, expire int64
	)
	if err := row.Scan(&p.AccountID, &p.KeyID, &maxAge, &expire, &p.UpdatedAt, &p.UpdatedBy); err != nil {
		return nil, err
	}
	p.MaxAge, p.ExpireAfter = usDuration(maxAge), usDuration(expire)
	p.UpdatedAt = p.UpdatedAt.UTC()
	return &p, nil
}

func usDuration(us int64) keyward.Duration {
	return keyward.Duration(time.Duration(us) * time.Microsecond)
}

// SetRotationPolicy inserts p or replaces the policy of its scope.
func (s *Store) SetRotationPolicy(ctx context.Context, ch keyward.Change, p *keyward.RotationPolicy) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("postgres: set rotation policy: %w", err)
	}
	target := "key_id"
	if p.AccountID != "" {
		target = "account_id"
	}
	err := s.write(ctx, ch, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO rotation_policies (account_id, key_id, max_age_us, expire_after_us, updated_at, updated_by)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (`+target+`) DO UPDATE SET max_age_us = excluded.max_age_us,
			expire_after_us = excluded.expire_after_us, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
			nullString(p.AccountID), nullString(p.KeyID), time.Duration(p.MaxAge).Microseconds(),
			time.Duration(p.ExpireAfter).Microseconds(), p.UpdatedAt, p.UpdatedBy)
		missing := p.Scope().String() + " not found"
		return s.dbError(err, conflicts{"rotation_policies_account_fkey": missing, "rotation_policies_key_fkey": missing})
	})
	if err != nil {
		return fmt.Errorf("postgres: set rotation policy of %s: %w", p.Scope(), err)
	}
	return nil
}

// RotationPolicy returns the policy of sc. ENOTFOUND if none.
func (s *Store) RotationPolicy(ctx context.Context, sc keyward.RotationScope) (*keyward.RotationPolicy, error) {
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("postgres: rotation policy: %w", err)
	}
	cond, arg := scopeCond(sc)
	p, err := scanPolicy(s.pool.QueryRow(ctx, selectPolicy+" WHERE "+cond, arg))
	if err != nil {
		return nil, fmt.Errorf("postgres: rotation policy of %s: %w", sc, s.policyError(err, sc))
	}
	return p, nil
}

func (s *Store) policyError(err error, sc keyward.RotationScope) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return keyward.Errorf(keyward.ENOTFOUND, "%s has no rotation policy", sc)
	}
	return s.dbError(err, nil)
}

// DeleteRotationPolicy deletes the policy of sc and returns it.
func (s *Store) DeleteRotationPolicy(ctx context.Context, ch keyward.Change, sc keyward.RotationScope) (*keyward.RotationPolicy, error) {
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("postgres: delete rotation policy: %w", err)
	}
	cond, arg := scopeCond(sc)
	var p *keyward.RotationPolicy
	err := s.write(ctx, ch, func(tx pgx.Tx) error {
		var err error
		if p, err = scanPolicy(tx.QueryRow(ctx, selectPolicy+" WHERE "+cond+" FOR UPDATE", arg)); err != nil {
			return s.policyError(err, sc)
		}
		_, err = tx.Exec(ctx, "DELETE FROM rotation_policies WHERE "+cond, arg)
		return s.dbError(err, nil)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: delete rotation policy of %s: %w", sc, err)
	}
	return p, nil
}

// AddKeyNotice records n unless the key has it already (ECONFLICT).
// Concurrent adds of one notice queue on its row: the first commits, the
// others then find it and fail.
func (s *Store) AddKeyNotice(ctx context.Context, ch keyward.Change, n *keyward.KeyNotice) error {
	err := s.write(ctx, ch, func(tx pgx.Tx) error { return s.insertKeyNotice(ctx, tx, n) })
	if err != nil {
		return fmt.Errorf("postgres: add %s notice of key %s: %w", n.Kind, n.KeyID, err)
	}
	return nil
}

// insertKeyNotice records n in tx; ECONFLICT if the key has it already.
func (s *Store) insertKeyNotice(ctx context.Context, tx pgx.Tx, n *keyward.KeyNotice) error {
	tag, err := tx.Exec(ctx, `INSERT INTO key_notices (key_id, kind, subject, at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (key_id, kind) DO UPDATE SET subject = excluded.subject, at = excluded.at
		WHERE key_notices.subject <> excluded.subject`, n.KeyID, string(n.Kind), n.Subject, n.At)
	if err != nil {
		return s.dbError(err, conflicts{"key_notices_key_fkey": "key " + n.KeyID + " not found"})
	}
	if tag.RowsAffected() == 0 {
		return keyward.Errorf(keyward.ECONFLICT, "key %s has its %s notice already", n.KeyID, n.Kind)
	}
	return nil
}

// KeyNotices returns the notices of a key, by kind.
func (s *Store) KeyNotices(ctx context.Context, keyID string) ([]*keyward.KeyNotice, error) {
	rows, err := s.pool.Query(ctx, "SELECT key_id, kind, subject, at FROM key_notices WHERE key_id = $1 ORDER BY kind", keyID)
	if err != nil {
		return nil, fmt.Errorf("postgres: notices of key %s: %w", keyID, s.dbError(err, nil))
	}
	ns, err := collect(rows, func(row pgx.Row) (*keyward.KeyNotice, error) {
		var n keyward.KeyNotice
		err := row.Scan(&n.KeyID, &n.Kind, &n.Subject, &n.At)
		n.Subject, n.At = n.Subject.UTC(), n.At.UTC()
		return &n, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: notices of key %s: %w", keyID, s.dbError(err, nil))
	}
	return ns, nil
}

// ExpiredKeys lists the expired keys whose expiry was not announced.
func (s *Store) ExpiredKeys(ctx context.Context, now time.Time, after string, limit int) ([]*keyward.Key, error) {
	keys, err := s.queryKeys(ctx, selectKey+` WHERE k.expires_at IS NOT NULL AND k.expires_at <= $1
		AND (k.revoked_at IS NULL OR k.revoked_at > k.expires_at)
		AND NOT EXISTS (SELECT 1 FROM key_notices n WHERE n.key_id = k.id AND n.kind = 'expired' AND n.subject = k.expires_at)
		AND k.id > $2 ORDER BY k.id LIMIT $3`, now, after, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: expired keys: %w", err)
	}
	return keys, nil
}

// RetiredKeys lists the non-root keys revoked or expired by before.
func (s *Store) RetiredKeys(ctx context.Context, before time.Time, after string, limit int) ([]*keyward.Key, error) {
	keys, err := s.queryKeys(ctx, selectKey+` WHERE k.role <> 'root'
		AND (k.revoked_at <= $1 OR k.expires_at <= $1)
		AND k.id > $2 ORDER BY k.id LIMIT $3`, before, after, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: retired keys: %w", err)
	}
	return keys, nil
}

func (s *Store) queryKeys(ctx context.Context, query string, args ...any) ([]*keyward.Key, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, s.dbError(err, nil)
	}
	keys, err := collect(rows, scanKey)
	return keys, s.dbError(err, nil)
}

// ExpiredIPRules lists the IP rules expired by before.
func (s *Store) ExpiredIPRules(ctx context.Context, before time.Time, after string, limit int) ([]*keyward.IPRule, error) {
	rows, err := s.pool.Query(ctx, selectIPRule+" WHERE expires_at <= $1 AND id > $2 ORDER BY id LIMIT $3", before, after, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: expired ip rules: %w", s.dbError(err, nil))
	}
	rules, err := collect(rows, scanIPRule)
	if err != nil {
		return nil, fmt.Errorf("postgres: expired ip rules: %w", s.dbError(err, nil))
	}
	return rules, nil
}

// CreditRefillsDue lists the keys whose stored credits have a refill due.
// The interval is stored in nanoseconds; rounding it down to microseconds
// may list a key a fraction of a microsecond early, which a refill then
// finds not due.
func (s *Store) CreditRefillsDue(ctx context.Context, now time.Time, after string, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM keys WHERE credits_refill_amount IS NOT NULL AND credits_remaining IS NOT NULL
		AND credits_refilled_at + credits_refill_interval / 1000 * interval '1 microsecond' <= $1
		AND id > $2 ORDER BY id LIMIT $3`, now, after, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: credit refills due: %w", s.dbError(err, nil))
	}
	ids, err := collect(rows, func(row pgx.Row) (string, error) {
		var id string
		return id, row.Scan(&id)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: credit refills due: %w", s.dbError(err, nil))
	}
	return ids, nil
}

// policyFrom joins each key (and join) to its own rotation policy (kp) and
// its account's (ap), keeping the keys that have one; the key's own wins.
// policyCols reads the effective one (see queryDue); dueAt is the key's
// DueAt.
func policyFrom(join string) string {
	return ` FROM keys k ` + join + `
		LEFT JOIN rotation_policies kp ON kp.key_id = k.id
		LEFT JOIN rotation_policies ap ON ap.account_id = k.account_id
		WHERE (kp.key_id IS NOT NULL OR ap.account_id IS NOT NULL)`
}

const (
	policyCols = `k.id, kp.key_id IS NOT NULL, COALESCE(kp.max_age_us, ap.max_age_us),
		COALESCE(kp.expire_after_us, ap.expire_after_us), COALESCE(kp.updated_at, ap.updated_at), COALESCE(kp.updated_by, ap.updated_by)`
	effExpireAfter = "COALESCE(kp.expire_after_us, ap.expire_after_us)"
	dueAt          = "(k.created_at + COALESCE(kp.max_age_us, ap.max_age_us) * interval '1 microsecond')"
)

// RotationDueKeys lists the live keys past their policy's max age that
// were not announced due.
func (s *Store) RotationDueKeys(ctx context.Context, now time.Time, after string, limit int) ([]*keyward.RotationDue, error) {
	ds, err := s.queryDue(ctx, "SELECT "+policyCols+", NULL::timestamptz"+policyFrom("")+`
		AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > $1)
		AND `+dueAt+` <= $1
		AND NOT EXISTS (SELECT 1 FROM key_notices n WHERE n.key_id = k.id AND n.kind = 'rotation_due' AND n.subject = `+dueAt+`)
		AND k.id > $2 ORDER BY k.id LIMIT $3`, now, after, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: keys due for rotation: %w", err)
	}
	return ds, nil
}

// ExpiryDueKeys lists the keys announced due whose policy expires them and
// whose expiry was not scheduled.
func (s *Store) ExpiryDueKeys(ctx context.Context, after string, limit int) ([]*keyward.RotationDue, error) {
	ds, err := s.queryDue(ctx, "SELECT "+policyCols+", n.at"+policyFrom("JOIN key_notices n ON n.key_id = k.id AND n.kind = 'rotation_due'")+`
		AND `+effExpireAfter+` > 0 AND k.revoked_at IS NULL AND n.subject = `+dueAt+`
		AND NOT EXISTS (SELECT 1 FROM key_notices x WHERE x.key_id = k.id AND x.kind = 'expiry_scheduled'
			AND x.subject = n.at + `+effExpireAfter+` * interval '1 microsecond')
		AND k.id > $1 ORDER BY k.id LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: keys due to expire by rotation policy: %w", err)
	}
	return ds, nil
}

// queryDue runs a query of policyCols and a notice time (NULL for none)
// and reads each key.
func (s *Store) queryDue(ctx context.Context, query string, args ...any) ([]*keyward.RotationDue, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, s.dbError(err, nil)
	}
	ds, err := collect(rows, func(row pgx.Row) (*keyward.RotationDue, error) {
		var (
			d              keyward.RotationDue
			keyID          string
			own            bool
			maxAge, expire int64
			noticeAt       *time.Time
		)
		if err := row.Scan(&keyID, &own, &maxAge, &expire, &d.Policy.UpdatedAt, &d.Policy.UpdatedBy, &noticeAt); err != nil {
			return nil, err
		}
		d.Key = &keyward.Key{ID: keyID}
		d.Policy.MaxAge, d.Policy.ExpireAfter = usDuration(maxAge), usDuration(expire)
		d.Policy.UpdatedAt = d.Policy.UpdatedAt.UTC()
		if own {
			d.Policy.KeyID = keyID
		}
		if noticeAt != nil {
			d.NoticeAt = noticeAt.UTC()
		}
		return &d, nil
	})
	if err != nil {
		return nil, s.dbError(err, nil)
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
