package keyward

import (
	"context"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The end-user portal (docs/portal.md): a service hands one of its own
// customers (a user of an account) a short-lived, single-use link; the
// customer manages their own keys there, within the permissions and
// environments the service granted.

// Bounds of a portal session.
const (
	// DefaultPortalLinkTTL is how long a portal link may be used when the
	// request sets no link_ttl; MaxPortalLinkTTL bounds it.
	DefaultPortalLinkTTL = 5 * time.Minute
	MaxPortalLinkTTL     = time.Hour
	// DefaultPortalSessionTTL is how long a portal session lasts after its
	// link is used when the request sets no session_ttl;
	// MaxPortalSessionTTL bounds it.
	DefaultPortalSessionTTL = time.Hour
	MaxPortalSessionTTL     = 12 * time.Hour
	// DefaultPortalIdleTimeout ends a portal session after this long
	// without a request, unless the server sets another.
	DefaultPortalIdleTimeout = 30 * time.Minute
	// MaxPortalReturnURLLen bounds the return URL of a portal session.
	MaxPortalReturnURLLen = 2048
	// MaxPortalGrants bounds the permissions and the environments a
	// portal session grants.
	MaxPortalGrants = 100
)

// ErrPortalLink is the one answer for a portal link that cannot be used:
// unknown, used, expired, or created by a key no longer valid, alike.
var ErrPortalLink = Errorf(ENOTFOUND, "this portal link is unknown, was used already or has expired: ask the service for a new one")

// PortalSessionCreate is the input of PortalService.CreatePortalSession.
type PortalSessionCreate struct {
	// AccountID is the account of the user; an account admin may leave it
	// empty (its own), root must name it.
	AccountID string `json:"account_id,omitempty"`
	// ExternalID is the user's external id in the account (User.ExternalID).
	ExternalID string `json:"external_id"`
	// Permissions are what the customer's new keys may hold (each key
	// holds a subset); the caller must hold them. Empty: keys without
	// permissions.
	Permissions []string `json:"permissions,omitempty"`
	// Environments are the environments of the keys the customer sees and
	// creates; empty: DefaultEnvironment only.
	Environments []string `json:"environments,omitempty"`
	// ReturnURL is where the portal's "Back" leads: an absolute http or
	// https URL of the service.
	ReturnURL string `json:"return_url"`
	// LinkTTL is how long the link may be used (once); 0:
	// DefaultPortalLinkTTL, at most MaxPortalLinkTTL.
	LinkTTL Duration `json:"link_ttl,omitempty"`
	// SessionTTL is how long the portal session lasts after the link is
	// used; 0: DefaultPortalSessionTTL, at most MaxPortalSessionTTL.
	SessionTTL Duration `json:"session_ttl,omitempty"`
}

// PortalSession is a portal session: the grant a service made for one user,
// from its link's creation to the end of the session. The link's token and
// the session's cookie are stored as SHA-256 hashes only.
type PortalSession struct {
	ID           string   `json:"id"`
	AccountID    string   `json:"account_id"`
	UserID       string   `json:"user_id"`
	ExternalID   string   `json:"external_id"`
	Permissions  []string `json:"permissions"`
	Environments []string `json:"environments"`
	ReturnURL    string   `json:"return_url"`
	// SessionTTL is how long the session lasts once the link is used.
	SessionTTL Duration `json:"session_ttl"`
	// CreatedBy is the key that created the session.
	CreatedBy     string    `json:"created_by"`
	CreatedAt     time.Time `json:"created_at"`
	LinkExpiresAt time.Time `json:"link_expires_at"`
	// StartedAt is when the link was used (nil: not yet); the session
	// ends at ExpiresAt.
	StartedAt *time.Time `json:"started_at,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// LastSeenAt is when the session was last used (its start, then
	// about once a minute while it is used); not part of the API.
	LastSeenAt *time.Time `json:"-"`
}

// Identity returns the identity the portal session acts with: a user of
// its account, holding the granted permissions, named in the audit log by
// the session's id (as the key id) and the agent "portal". It has no
// expiry: the portal ends the session itself, and the keys it creates may
// outlive it, as keys the service created would.
func (p *PortalSession) Identity() *Identity {
	return &Identity{
		KeyID:         p.ID,
		AccountID:     p.AccountID,
		UserID:        p.UserID,
		ExternalID:    p.ExternalID,
		Role:          RoleUser,
		Agent:         PortalAgent,
		Permissions:   p.Permissions,
		PortalSession: p.ID,
	}
}

// PortalAgent is the agent of a portal session's identity.
const PortalAgent = "portal"

// PortalPath is where the portal is served under keyward's address; a
// link is PortalPath + "/link/" + its token.
const PortalPath = "/portal"

// PortalLink is a new portal session with its single-use link, shown once.
type PortalLink struct {
	PortalSession
	// URL is the link to send the customer's browser to; it holds the
	// token, which is usable once before LinkExpiresAt.
	URL string `json:"url"`
}

// PortalBranding is how an account's portal pages look.
type PortalBranding struct {
	AccountID string `json:"account_id"`
	// Title names the portal (the service's name); empty: "API keys".
	Title string `json:"title,omitempty"`
	// AccentColor, BackgroundColor and TextColor are #rrggbb; empty: the
	// default.
	AccentColor     string    `json:"accent_color,omitempty"`
	BackgroundColor string    `json:"background_color,omitempty"`
	TextColor       string    `json:"text_color,omitempty"`
	UpdatedAt       time.Time `json:"updated_at,omitzero"`
}

// MaxPortalTitleLen bounds a portal title, in characters.
const MaxPortalTitleLen = 80

// Validate checks the title (printable, at most MaxPortalTitleLen
// characters) and that each colour is #rrggbb or empty, so nothing but a
// colour ever reaches a stylesheet. It returns EINVALID.
func (b *PortalBranding) Validate() error {
	if utf8.RuneCountInString(b.Title) > MaxPortalTitleLen || strings.ContainsFunc(b.Title, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return Errorf(EINVALID, "title must be at most %d printable characters", MaxPortalTitleLen)
	}
	for _, c := range []struct{ field, v string }{{"accent_color", b.AccentColor}, {"background_color", b.BackgroundColor}, {"text_color", b.TextColor}} {
		if c.v != "" && !IsHexColor(c.v) {
			return Errorf(EINVALID, "%s %q is not a colour: use #rrggbb, such as #1f6feb", c.field, c.v)
		}
	}
	return nil
}

// IsHexColor reports whether s is a colour written #rrggbb.
func IsHexColor(s string) bool {
	if len(s) != 7 || s[0] != '#' {
		return false
	}
	for _, c := range []byte(s[1:]) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// ValidateReturnURL checks a portal session's return URL: absolute http or
// https with a host, without user info, spaces, control characters or
// backslashes (which browsers may read as a slash), at most
// MaxPortalReturnURLLen bytes. It returns EINVALID.
func ValidateReturnURL(s string) error {
	if s == "" {
		return Errorf(EINVALID, "return_url is required: the absolute http(s) URL the portal's Back link leads to")
	}
	if len(s) > MaxPortalReturnURLLen {
		return Errorf(EINVALID, "return_url is longer than %d bytes", MaxPortalReturnURLLen)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" || u.Opaque != "" {
		return Errorf(EINVALID, "return_url must be an absolute http or https URL, such as https://example.com/account")
	}
	if u.User != nil {
		return Errorf(EINVALID, "return_url must not carry a user name or password")
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x21 || r == 0x7f || r == '\\' }) {
		return Errorf(EINVALID, "return_url must not contain spaces, control characters or backslashes")
	}
	return nil
}

// PortalService creates portal sessions and manages the portal branding of
// accounts, for root and account admins. Implemented by admin.Portal.
type PortalService interface {
	// CreatePortalSession grants a user of an account a portal session
	// and returns its single-use link; URL is the path of the link under
	// the portal, which the HTTP API makes absolute.
	CreatePortalSession(ctx context.Context, c PortalSessionCreate) (*PortalLink, error)
	// PortalBranding returns the branding of an account (empty fields
	// when none is set).
	PortalBranding(ctx context.Context, accountID string) (*PortalBranding, error)
	// SetPortalBranding replaces the branding of an account.
	SetPortalBranding(ctx context.Context, b PortalBranding) (*PortalBranding, error)
}

// PortalStore holds portal sessions and the branding of accounts; part of
// Store.
type PortalStore interface {
	// CreatePortalSession inserts p with the SHA-256 of its link's token.
	// ENOTFOUND if its account or user does not exist. It deletes the
	// sessions that ended before p.CreatedAt.
	CreatePortalSession(ctx context.Context, ch Change, p *PortalSession, linkHash [32]byte) error
	// StartPortalSession uses the link whose token hashes to linkHash:
	// if it was never used and LinkExpiresAt is after now, it records the
	// SHA-256 of the session's cookie, StartedAt and LastSeenAt now and
	// ExpiresAt now plus the session's SessionTTL, and returns the session. Exactly one
	// of concurrent calls for one link succeeds; the others, and every
	// call for an unknown, used or expired link, get ENOTFOUND. record
	// returns the change to write with it, from the started session.
	StartPortalSession(ctx context.Context, record func(*PortalSession) (Change, error), linkHash, sessionHash [32]byte, now time.Time) (*PortalSession, error)
	// PortalSessionByHash returns the started session whose cookie hashes
	// to sessionHash, ended or not (the caller checks ExpiresAt).
	// ENOTFOUND if none.
	PortalSessionByHash(ctx context.Context, sessionHash [32]byte) (*PortalSession, error)
	// TouchPortalSession sets the LastSeenAt of the live session whose
	// cookie hashes to sessionHash to now. ENOTFOUND if none, or if it
	// ended at or before now.
	TouchPortalSession(ctx context.Context, sessionHash [32]byte, now time.Time) error
	// EndPortalSession ends the session whose cookie hashes to
	// sessionHash at now. ENOTFOUND if none.
	EndPortalSession(ctx context.Context, sessionHash [32]byte, now time.Time) error
	// SetPortalBranding inserts or replaces b. ENOTFOUND if its account
	// does not exist.
	SetPortalBranding(ctx context.Context, ch Change, b *PortalBranding) error
	// PortalBranding returns the branding of the account. ENOTFOUND if
	// none is set.
	PortalBranding(ctx context.Context, accountID string) (*PortalBranding, error)
}
