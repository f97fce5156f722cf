package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/keyward/keyward"
)

// Portal sessions and branding (keyward.PortalStore): the portal_sessions
// and portal_branding tables. A session's link is used with one
// conditional UPDATE (started_at IS NULL), so of two instances using the
// same link at once exactly one succeeds.

const selectPortalSession = `SELECT id, account_id, user_id, external_id, permissions, environments, return_url,
	session_ttl_us, created_by, created_at, link_expires_at, started_at, expires_at, last_seen_at FROM portal_sessions`

// CreatePortalSession inserts p with the hash of its link's token and
// deletes the sessions that ended before p.CreatedAt.
func (s *Store) CreatePortalSession(ctx context.Context, ch keyward.Change, p *keyward.PortalSession, linkHash [32]byte) error {
	if p.SessionTTL <= 0 {
		return s.errorf("create portal session %s: %w", p.ID, keyward.Errorf(keyward.EINVALID, "a portal session needs a positive session ttl"))
	}
	err := s.write(ctx, ch, func(tx *Tx) error {
		now := FormatTime(p.CreatedAt)
		if _, err := tx.ExecContext(ctx, `DELETE FROM portal_sessions WHERE (started_at IS NULL AND link_expires_at < ?) OR expires_at < ?`, now, now); err != nil {
			return s.dbError(err, Conflicts{})
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO portal_sessions (id, link_hash, account_id, user_id, external_id, permissions, environments,
			return_url, session_ttl_us, created_by, created_at, link_expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			p.ID, linkHash[:], p.AccountID, p.UserID, p.ExternalID, s.d.List(p.Permissions), s.d.List(p.Environments),
			p.ReturnURL, time.Duration(p.SessionTTL).Microseconds(), p.CreatedBy, now, FormatTime(p.LinkExpiresAt))
		return s.dbError(err, Conflicts{
			PK:     "portal session " + p.ID + " exists",
			Unique: "the portal link is taken",
			FK:     "account " + p.AccountID + " or its user " + p.UserID + " not found",
		})
	})
	if err != nil {
		return s.errorf("create portal session %s: %w", p.ID, err)
	}
	return nil
}

// StartPortalSession uses a link once. See keyward.PortalStore.
func (s *Store) StartPortalSession(ctx context.Context, record func(*keyward.PortalSession) (keyward.Change, error), linkHash, sessionHash [32]byte, now time.Time) (*keyward.PortalSession, error) {
	// A read first: an unknown or used link (a guess, a replay) costs no
	// write transaction.
	var started storedTime
	err := s.r.QueryRowContext(ctx, "SELECT started_at FROM portal_sessions WHERE link_hash = ?", linkHash[:]).Scan(&started)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && started.Valid) {
		return nil, s.errorf("start portal session: %w", keyward.ErrPortalLink)
	}
	if err != nil {
		return nil, s.errorf("start portal session: %w", s.dbError(err, Conflicts{}))
	}
	var out *keyward.PortalSession
	err = s.WriteUnaudited(ctx, func(tx *Tx) error {
		p, err := s.scanPortalSession(tx.QueryRowContext(ctx, selectPortalSession+" WHERE link_hash = ?", linkHash[:]))
		if errors.Is(err, sql.ErrNoRows) || (err == nil && (p.StartedAt != nil || !now.Before(p.LinkExpiresAt))) {
			return keyward.ErrPortalLink
		}
		if err != nil {
			return s.dbError(err, Conflicts{})
		}
		start := now.UTC().Truncate(time.Microsecond)
		end := start.Add(time.Duration(p.SessionTTL))
		res, err := tx.ExecContext(ctx, `UPDATE portal_sessions SET session_hash = ?, started_at = ?, expires_at = ?, last_seen_at = ?
			WHERE link_hash = ? AND started_at IS NULL`, sessionHash[:], FormatTime(start), FormatTime(end), FormatTime(start), linkHash[:])
		if err != nil {
			return s.dbError(err, Conflicts{Unique: "the portal session is taken"})
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return keyward.ErrPortalLink // another instance used it first
		}
		p.StartedAt, p.ExpiresAt, p.LastSeenAt = &start, &end, &start
		ch, err := record(p)
		if err != nil {
			return err
		}
		if err := s.writeChange(ctx, tx, ch); err != nil {
			return err
		}
		out = p
		return nil
	})
	if err != nil {
		return nil, s.errorf("start portal session: %w", err)
	}
	return out, nil
}

// PortalSessionByHash returns a started session by the hash of its cookie.
func (s *Store) PortalSessionByHash(ctx context.Context, sessionHash [32]byte) (*keyward.PortalSession, error) {
	p, err := s.scanPortalSession(s.r.QueryRowContext(ctx, selectPortalSession+" WHERE session_hash = ?", sessionHash[:]))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, s.errorf("portal session: %w", keyward.Errorf(keyward.ENOTFOUND, "portal session not found"))
	}
	if err != nil {
		return nil, s.errorf("portal session: %w", s.dbError(err, Conflicts{}))
	}
	return p, nil
}

// TouchPortalSession records now as the last use of a live session. See
// keyward.PortalStore.
func (s *Store) TouchPortalSession(ctx context.Context, sessionHash [32]byte, now time.Time) error {
	return s.setLivePortalSession(ctx, "touch", "last_seen_at", sessionHash, now)
}

// EndPortalSession ends a started session at now.
func (s *Store) EndPortalSession(ctx context.Context, sessionHash [32]byte, now time.Time) error {
	return s.setLivePortalSession(ctx, "end", "expires_at", sessionHash, now)
}

// setLivePortalSession sets column (a time) to now in the session whose
// cookie hashes to sessionHash, if it is live at now; ENOTFOUND if not.
func (s *Store) setLivePortalSession(ctx context.Context, op, column string, sessionHash [32]byte, now time.Time) error {
	err := s.WriteUnaudited(ctx, func(tx *Tx) error {
		at := FormatTime(now)
		res, err := tx.ExecContext(ctx, "UPDATE portal_sessions SET "+column+" = ? WHERE session_hash = ? AND expires_at > ?", at, sessionHash[:], at)
		if err != nil {
			return s.dbError(err, Conflicts{})
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return keyward.Errorf(keyward.ENOTFOUND, "portal session not found")
		}
		return nil
	})
	if err != nil {
		return s.errorf("%s portal session: %w", op, err)
	}
	return nil
}

func (s *Store) scanPortalSession(row scanner) (*keyward.PortalSession, error) {
	var p keyward.PortalSession
	var ttl int64
	var created, linkExpires, started, expires, lastSeen storedTime
	if err := row.Scan(&p.ID, &p.AccountID, &p.UserID, &p.ExternalID, s.d.ListDest(&p.Permissions), s.d.ListDest(&p.Environments),
		&p.ReturnURL, &ttl, &p.CreatedBy, &created, &linkExpires, &started, &expires, &lastSeen); err != nil {
		return nil, err
	}
	p.Permissions, p.Environments = nonNil(p.Permissions), nonNil(p.Environments)
	p.SessionTTL = keyward.Duration(time.Duration(ttl) * time.Microsecond)
	p.CreatedAt, p.LinkExpiresAt, p.StartedAt, p.ExpiresAt = created.Time, linkExpires.Time, started.ptr(), expires.ptr()
	p.LastSeenAt = lastSeen.ptr()
	if p.LastSeenAt == nil {
		p.LastSeenAt = p.StartedAt // started before last_seen_at was kept
	}
	return &p, nil
}

// SetPortalBranding inserts or replaces the branding of b's account.
func (s *Store) SetPortalBranding(ctx context.Context, ch keyward.Change, b *keyward.PortalBranding) error {
	if err := b.Validate(); err != nil {
		return s.errorf("set portal branding of %s: %w", b.AccountID, err)
	}
	err := s.write(ctx, ch, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO portal_branding (account_id, title, accent_color, background_color, text_color, updated_at)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (account_id) DO UPDATE SET title = excluded.title, accent_color = excluded.accent_color,
			background_color = excluded.background_color, text_color = excluded.text_color, updated_at = excluded.updated_at`,
			b.AccountID, b.Title, b.AccentColor, b.BackgroundColor, b.TextColor, FormatTime(b.UpdatedAt))
		return s.dbError(err, Conflicts{FK: "account " + b.AccountID + " not found"})
	})
	if err != nil {
		return s.errorf("set portal branding of %s: %w", b.AccountID, err)
	}
	return nil
}

// PortalBranding returns the branding of an account. ENOTFOUND if none.
func (s *Store) PortalBranding(ctx context.Context, accountID string) (*keyward.PortalBranding, error) {
	var b keyward.PortalBranding
	var updated storedTime
	err := s.r.QueryRowContext(ctx, `SELECT account_id, title, accent_color, background_color, text_color, updated_at
		FROM portal_branding WHERE account_id = ?`, accountID).Scan(&b.AccountID, &b.Title, &b.AccentColor, &b.BackgroundColor, &b.TextColor, &updated)
	if err != nil {
		return nil, s.errorf("portal branding of %s: %w", accountID, s.rowError(err, "portal branding of account", accountID))
	}
	b.UpdatedAt = updated.Time
	return &b, nil
}
