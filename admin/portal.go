package admin

import (
	"context"
	"crypto/sha256"
	"slices"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// Portal serves the end-user portal (docs/portal.md): root and account
// admins create portal sessions for users of an account and set the
// account's branding; the portal's customer, once its single-use link is
// used, lists, creates, rotates and revokes the keys of its user through
// Keys, acting as that user with the session's identity
// (keyward.PortalSession.Identity), so Keys' checks apply: the keys of
// that user only, permissions within the granted ones. Portal adds the
// environments bound.
type Portal struct {
	recorder
	store portalStore
	keys  *Keys
	// idle ends a session unused this long; a use is written when the
	// last one written is touchAfter old, so a session may end up to
	// touchAfter early.
	idle, touchAfter time.Duration
}

// newPortal returns the portal service; idle 0 is
// keyward.DefaultPortalIdleTimeout.
func newPortal(rec recorder, store portalStore, keys *Keys, idle time.Duration) *Portal {
	if idle <= 0 {
		idle = keyward.DefaultPortalIdleTimeout
	}
	return &Portal{recorder: rec, store: store, keys: keys, idle: idle, touchAfter: min(idle/10, time.Minute)}
}

var _ keyward.PortalService = (*Portal)(nil)

// portalStore is what Portal reads and writes.
type portalStore interface {
	keyward.PortalStore
	Account(ctx context.Context, id string) (*keyward.Account, error)
	UserByExternalID(ctx context.Context, accountID, externalID string) (*keyward.User, error)
	Key(ctx context.Context, id string) (*keyward.Key, error)
	Usage(ctx context.Context, f keyward.UsageFilter) ([]keyward.UsageRow, error)
}

// portalLinkPrefix marks a portal link's token, so a leaked one is
// recognisable.
const portalLinkPrefix = "kwp_"

// CreatePortalSession grants the user of the account with c.ExternalID a
// portal session and returns its link, shown once. Root or the account's
// admins; the caller must hold every permission granted (no escalation).
func (s *Portal) CreatePortalSession(ctx context.Context, c keyward.PortalSessionCreate) (*keyward.PortalLink, error) {
	id, err := changer(ctx)
	if err != nil {
		return nil, err
	}
	if c.AccountID == "" {
		if !isRoot(id) {
			c.AccountID = id.AccountID
		} else {
			return nil, keyward.Errorf(keyward.EINVALID, "account_id is required with a root key: the account of the user")
		}
	}
	if err := requireAccountManager(id, c.AccountID, "create portal sessions"); err != nil {
		return nil, err
	}
	if c.ExternalID == "" {
		return nil, keyward.Errorf(keyward.EINVALID, "external_id is required: the external id of the user the portal is for")
	}
	if err := validateName("external_id", c.ExternalID, false); err != nil {
		return nil, err
	}
	perms, err := normalizePermissions(c.Permissions)
	if err != nil {
		return nil, err
	}
	if err := checkEverything(keyward.RoleUser, perms); err != nil {
		return nil, err
	}
	if err := checkHeld(id, perms); err != nil {
		return nil, err
	}
	envs, err := portalEnvironments(c.Environments)
	if err != nil {
		return nil, err
	}
	if err := keyward.ValidateReturnURL(c.ReturnURL); err != nil {
		return nil, err
	}
	linkTTL, err := portalTTL("link_ttl", c.LinkTTL, keyward.DefaultPortalLinkTTL, keyward.MaxPortalLinkTTL)
	if err != nil {
		return nil, err
	}
	sessionTTL, err := portalTTL("session_ttl", c.SessionTTL, keyward.DefaultPortalSessionTTL, keyward.MaxPortalSessionTTL)
	if err != nil {
		return nil, err
	}
	if _, err := s.store.Account(ctx, c.AccountID); err != nil {
		return nil, err
	}
	u, err := s.store.UserByExternalID(ctx, c.AccountID, c.ExternalID)
	if keyward.ErrorCode(err) == keyward.ENOTFOUND {
		return nil, keyward.Errorf(keyward.ENOTFOUND, "account %s has no user with external_id %q: create the user first (POST /v1/accounts/%s/users)", c.AccountID, c.ExternalID, c.AccountID)
	}
	if err != nil {
		return nil, err
	}
	now := s.utc()
	p := keyward.PortalSession{
		ID:            apikey.NewID("psn"),
		AccountID:     c.AccountID,
		UserID:        u.ID,
		ExternalID:    u.ExternalID,
		Permissions:   perms,
		Environments:  envs,
		ReturnURL:     c.ReturnURL,
		SessionTTL:    keyward.Duration(sessionTTL),
		CreatedBy:     id.KeyID,
		CreatedAt:     now,
		LinkExpiresAt: now.Add(linkTTL),
	}
	token := portalLinkPrefix + apikey.NewToken()
	ch, err := s.audit(ctx, id, "portal_session.create", "portal_session", p.ID, p.AccountID, map[string]any{
		"user_id": p.UserID, "external_id": p.ExternalID, "permissions": p.Permissions, "environments": p.Environments,
		"return_url": p.ReturnURL, "link_expires_at": p.LinkExpiresAt, "session_ttl": p.SessionTTL,
	})
	if err != nil {
		return nil, err
	}
	if err := s.store.CreatePortalSession(ctx, ch, &p, sha256.Sum256([]byte(token))); err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "portal session created", "portal_session", p.ID, "account_id", p.AccountID, "user_id", p.UserID, "by", id.KeyID)
	return &keyward.PortalLink{PortalSession: p, URL: keyward.PortalPath + "/link/" + token}, nil
}

// portalEnvironments validates the environments a session grants, sorted
// and without repeats; none grants DefaultEnvironment.
func portalEnvironments(envs []string) ([]string, error) {
	if len(envs) == 0 {
		return []string{keyward.DefaultEnvironment}, nil
	}
	if len(envs) > keyward.MaxPortalGrants {
		return nil, keyward.Errorf(keyward.EINVALID, "a portal session grants at most %d environments", keyward.MaxPortalGrants)
	}
	for _, e := range envs {
		if err := keyward.ValidateEnvironment("environment", e); err != nil {
			return nil, err
		}
	}
	envs = slices.Clone(envs)
	slices.Sort(envs)
	return slices.Compact(envs), nil
}

// portalTTL returns d, or def when it is 0; EINVALID beyond max.
func portalTTL(field string, d keyward.Duration, def, max time.Duration) (time.Duration, error) {
	switch v := time.Duration(d); {
	case v == 0:
		return def, nil
	case v < time.Minute || v > max:
		return 0, keyward.Errorf(keyward.EINVALID, "%s must be between 1m and %s", field, max)
	default:
		return v, nil
	}
}

// StartPortalSession uses a portal link (its token, as in the link's URL)
// and returns the session with the token of its cookie, shown once. A link
// works once, before it expires; every other use is ENOTFOUND, which says
// nothing about why. The start is audited with the session as the actor.
func (s *Portal) StartPortalSession(ctx context.Context, linkToken string) (string, *keyward.PortalSession, error) {
	cookie := apikey.NewToken()
	p, err := s.store.StartPortalSession(ctx, func(p *keyward.PortalSession) (keyward.Change, error) {
		// Refused before the write: the link stays unused.
		if err := s.creatorValid(ctx, p, keyward.ErrPortalLink); err != nil {
			return keyward.Change{}, err
		}
		return s.audit(ctx, p.Identity(), "portal_session.start", "portal_session", p.ID, p.AccountID, map[string]any{"user_id": p.UserID, "expires_at": p.ExpiresAt})
	}, sha256.Sum256([]byte(linkToken)), sha256.Sum256([]byte(cookie)), s.now())
	if err != nil {
		return "", nil, err
	}
	s.log.InfoContext(ctx, "portal session started", "portal_session", p.ID, "account_id", p.AccountID, "user_id", p.UserID)
	return cookie, p, nil
}

// errPortalEnded is the answer for a cookie of no live session.
var errPortalEnded = keyward.Errorf(keyward.EUNAUTHORIZED, "the portal session has ended: go back to the service and open the portal again")

// PortalSession returns the live session of a cookie's token and records
// the use; EUNAUTHORIZED if it ended, never existed or went unused for the
// idle timeout, or if the key that created it is no longer valid
// (revoked, deleted, disabled or expired): a session acts within its
// creator's grant, so it lasts only while that key does.
func (s *Portal) PortalSession(ctx context.Context, cookie string) (*keyward.PortalSession, error) {
	if cookie == "" {
		return nil, errPortalEnded
	}
	hash := sha256.Sum256([]byte(cookie))
	p, err := s.store.PortalSessionByHash(ctx, hash)
	now := s.now()
	if keyward.ErrorCode(err) == keyward.ENOTFOUND || (err == nil && (p.ExpiresAt == nil || !now.Before(*p.ExpiresAt))) {
		return nil, errPortalEnded
	}
	if err != nil {
		return nil, err
	}
	if p.LastSeenAt != nil && now.Sub(*p.LastSeenAt) >= s.idle {
		return nil, errPortalEnded // and stays so: its last use will not move
	}
	if err := s.creatorValid(ctx, p, errPortalEnded); err != nil {
		return nil, err
	}
	if p.LastSeenAt == nil || now.Sub(*p.LastSeenAt) >= s.touchAfter {
		err := s.store.TouchPortalSession(ctx, hash, now)
		if keyward.ErrorCode(err) == keyward.ENOTFOUND {
			return nil, errPortalEnded // ended since it was read
		}
		if err != nil {
			return nil, err
		}
		p.LastSeenAt = &now
	}
	return p, nil
}

// creatorValid returns ended unless the key that created p verifies now
// (Key.Status VALID); a store failure is returned as it is.
func (s *Portal) creatorValid(ctx context.Context, p *keyward.PortalSession, ended error) error {
	k, err := s.store.Key(ctx, p.CreatedBy)
	if keyward.ErrorCode(err) == keyward.ENOTFOUND {
		return ended
	}
	if err != nil {
		return err
	}
	if k.Status(s.now()) != keyward.DecisionValid {
		return ended
	}
	return nil
}

// EndPortalSession ends the session of a cookie's token (the portal's
// sign-out); ending an ended session is not an error.
func (s *Portal) EndPortalSession(ctx context.Context, cookie string) error {
	err := s.store.EndPortalSession(ctx, sha256.Sum256([]byte(cookie)), s.now())
	if keyward.ErrorCode(err) == keyward.ENOTFOUND {
		return nil
	}
	return err
}

// as returns ctx acting as the portal session p.
func as(ctx context.Context, p *keyward.PortalSession) context.Context {
	return keyward.NewContextWithIdentity(ctx, p.Identity())
}

// PortalKeys lists the keys of p's user in the environments p grants, a
// page of the store: with one environment granted the store filters it;
// with several, the keys of the others are left out of the page, which
// may then be shorter than its limit.
func (s *Portal) PortalKeys(ctx context.Context, p *keyward.PortalSession, pg keyward.Page) (*keyward.KeyList, error) {
	f := keyward.KeyFilter{AccountID: p.AccountID, UserID: p.UserID}
	if len(p.Environments) == 1 {
		f.Environment = p.Environments[0]
	}
	l, err := s.keys.Keys(as(ctx, p), f, pg)
	if err != nil {
		return nil, err
	}
	l.Items = slices.DeleteFunc(l.Items, func(k *keyward.Key) bool { return !slices.Contains(p.Environments, k.Environment) })
	return l, nil
}

// PortalCreateKey creates a key for p's user, in an environment p grants
// (empty: the first it grants) and with permissions within p's, through
// Keys.CreateKey with the session's identity.
func (s *Portal) PortalCreateKey(ctx context.Context, p *keyward.PortalSession, c keyward.KeyCreate) (*keyward.CreatedKey, error) {
	if c.Environment == "" {
		c.Environment = p.Environments[0]
	}
	if !slices.Contains(p.Environments, c.Environment) {
		return nil, keyward.Errorf(keyward.EFORBIDDEN, "this portal may create keys only in %q", p.Environments)
	}
	c.AccountID, c.UserID, c.Role = p.AccountID, p.UserID, keyward.RoleUser
	return s.keys.CreateKey(as(ctx, p), c)
}

// portalKey returns a key of p's user in an environment p grants; any other
// key is ENOTFOUND.
func (s *Portal) portalKey(ctx context.Context, p *keyward.PortalSession, keyID string) (*keyward.Key, error) {
	k, err := s.keys.Key(ctx, keyID)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(p.Environments, k.Environment) {
		return nil, notFound("key", keyID)
	}
	return k, nil
}

// PortalKey returns a key of p's user in an environment p grants.
func (s *Portal) PortalKey(ctx context.Context, p *keyward.PortalSession, keyID string) (*keyward.Key, error) {
	return s.portalKey(as(ctx, p), p, keyID)
}

// PortalRotateKey rotates a key of p's user (Keys.RotateKey), with a grace
// for the old key.
func (s *Portal) PortalRotateKey(ctx context.Context, p *keyward.PortalSession, keyID string, r keyward.KeyRotate) (*keyward.CreatedKey, error) {
	ctx = as(ctx, p)
	if _, err := s.portalKey(ctx, p, keyID); err != nil {
		return nil, err
	}
	return s.keys.RotateKey(ctx, keyID, r)
}

// PortalRevokeKey revokes a key of p's user (Keys.RevokeKey).
func (s *Portal) PortalRevokeKey(ctx context.Context, p *keyward.PortalSession, keyID string) (*keyward.Key, error) {
	ctx = as(ctx, p)
	if _, err := s.portalKey(ctx, p, keyID); err != nil {
		return nil, err
	}
	return s.keys.RevokeKey(ctx, keyID)
}

// PortalUsage reports the usage of the keys of p's user (f's account and
// user are p's; a key of f must be one of them).
func (s *Portal) PortalUsage(ctx context.Context, p *keyward.PortalSession, f keyward.UsageFilter) (*keyward.UsageReport, error) {
	if f.KeyID != "" {
		if _, err := s.PortalKey(ctx, p, f.KeyID); err != nil {
			return nil, err
		}
	}
	f.AccountID, f.UserID = p.AccountID, p.UserID
	if err := f.Validate(); err != nil {
		return nil, err
	}
	rows, err := s.store.Usage(ctx, f)
	if err != nil {
		return nil, err
	}
	return usageReport(f.Granularity, rows), nil
}

// PortalBranding returns the branding of an account: root or the account's
// admins (empty fields when none is set).
func (s *Portal) PortalBranding(ctx context.Context, accountID string) (*keyward.PortalBranding, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := requireAccountManager(id, accountID, "read the portal branding"); err != nil {
		return nil, err
	}
	return s.branding(ctx, accountID)
}

// BrandingOf returns the branding of p's account, for its pages.
func (s *Portal) BrandingOf(ctx context.Context, p *keyward.PortalSession) (*keyward.PortalBranding, error) {
	return s.branding(ctx, p.AccountID)
}

func (s *Portal) branding(ctx context.Context, accountID string) (*keyward.PortalBranding, error) {
	b, err := s.store.PortalBranding(ctx, accountID)
	if keyward.ErrorCode(err) == keyward.ENOTFOUND {
		if _, err := s.store.Account(ctx, accountID); err != nil {
			return nil, err
		}
		return &keyward.PortalBranding{AccountID: accountID}, nil
	}
	return b, err
}

// SetPortalBranding replaces the branding of an account: root or the
// account's admins. Colours are #rrggbb only.
func (s *Portal) SetPortalBranding(ctx context.Context, b keyward.PortalBranding) (*keyward.PortalBranding, error) {
	id, err := changer(ctx)
	if err != nil {
		return nil, err
	}
	if err := requireAccountManager(id, b.AccountID, "set the portal branding"); err != nil {
		return nil, err
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	b.UpdatedAt = s.utc()
	ch, err := s.audit(ctx, id, "account.portal_branding", "account", b.AccountID, b.AccountID, map[string]any{
		"title": b.Title, "accent_color": b.AccentColor, "background_color": b.BackgroundColor, "text_color": b.TextColor,
	})
	if err != nil {
		return nil, err
	}
	if err := s.store.SetPortalBranding(ctx, ch, &b); err != nil {
		return nil, err
	}
	return &b, nil
}
