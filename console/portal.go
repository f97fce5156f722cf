package console

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/clientaddr"
	"github.com/keyward/keyward/httpedge"
)

// PortalPath is where the end-user portal is mounted (keyward.PortalPath,
// where admin.Portal's links lead).
const PortalPath = keyward.PortalPath

// PortalCookie is the portal session's cookie.
const PortalCookie = "keyward_portal"

// PortalSessions serves the portal's customers: it starts, reads and ends
// portal sessions and acts for them through the admin services (admin.Portal
// is one).
type PortalSessions interface {
	StartPortalSession(ctx context.Context, linkToken string) (string, *keyward.PortalSession, error)
	PortalSession(ctx context.Context, cookie string) (*keyward.PortalSession, error)
	EndPortalSession(ctx context.Context, cookie string) error
	BrandingOf(ctx context.Context, p *keyward.PortalSession) (*keyward.PortalBranding, error)
	PortalKeys(ctx context.Context, p *keyward.PortalSession, pg keyward.Page) (*keyward.KeyList, error)
	PortalCreateKey(ctx context.Context, p *keyward.PortalSession, c keyward.KeyCreate) (*keyward.CreatedKey, error)
	PortalRotateKey(ctx context.Context, p *keyward.PortalSession, keyID string, r keyward.KeyRotate) (*keyward.CreatedKey, error)
	PortalRevokeKey(ctx context.Context, p *keyward.PortalSession, keyID string) (*keyward.Key, error)
	PortalUsage(ctx context.Context, p *keyward.PortalSession, f keyward.UsageFilter) (*keyward.UsageReport, error)
}

// Denials records refused actions in the audit log (admin.Audit is one).
type Denials interface {
	AuditDenied(ctx context.Context, route string, cause error)
}

// PortalConfig configures a Portal.
type PortalConfig struct {
	// Sessions serves the customers. Required.
	Sessions PortalSessions
	// Denied records the customers' refused actions as auth.denied, as
	// the API and the console record theirs. Required.
	Denied Denials
	// TrustedProxies: as Config.TrustedProxies.
	TrustedProxies []netip.Prefix
	// Now is the clock of usage periods; nil: time.Now.
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Portal is the end-user portal (docs/portal.md): a service's customer,
// sent there with a single-use link (POST /v1/portal/sessions), lists,
// creates, rotates and revokes the keys of its user within what the
// service granted, and sees their usage. Sessions live in the store, so
// every instance serves them. It is an http.Handler for the paths under
// PortalPath.
type Portal struct {
	sessions PortalSessions
	denied   Denials
	trusted  []netip.Prefix
	now      func() time.Time
	log      *slog.Logger
	mux      *http.ServeMux
	pages    map[string]*template.Template
}

var portalPages = []string{"portal_keys", "portal_created", "portal_usage", "portal_message"}

// NewPortal returns a Portal for cfg. It panics without Sessions or if a
// template does not parse: wiring bugs.
func NewPortal(cfg PortalConfig) *Portal {
	if cfg.Sessions == nil || cfg.Denied == nil {
		panic("console: PortalConfig.Sessions and PortalConfig.Denied are required")
	}
	p := &Portal{sessions: cfg.Sessions, denied: cfg.Denied, trusted: slices.Clone(cfg.TrustedProxies), now: cfg.Now, log: cfg.Logger, mux: http.NewServeMux(), pages: map[string]*template.Template{}}
	if p.now == nil {
		p.now = time.Now
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	p.log = p.log.With("component", "portal")
	for _, name := range portalPages {
		p.pages[name] = template.Must(template.New("portal_layout.html").Funcs(funcs).ParseFS(templateFS, "templates/portal_layout.html", "templates/usage_totals.html", "templates/"+name+".html"))
	}
	static, _ := fs.Sub(staticFS, "static")
	p.mux.Handle("GET "+PortalPath+"/static/", http.StripPrefix(PortalPath+"/static/", http.FileServerFS(static)))
	p.mux.HandleFunc("GET "+PortalPath+"/link/{token}", p.useLink)
	p.mux.Handle("POST "+PortalPath+"/sign-out", p.authed(p.signOut))
	p.mux.Handle("GET "+PortalPath+"/{$}", p.authed(func(w http.ResponseWriter, r *http.Request, s *portalSession) {
		http.Redirect(w, r, PortalPath+"/keys", http.StatusSeeOther)
	}))
	p.mux.Handle("GET "+PortalPath+"/theme.css", p.authed(p.theme))
	p.mux.Handle("GET "+PortalPath+"/keys", p.authed(p.keysPage))
	p.mux.Handle("POST "+PortalPath+"/keys", p.authed(p.createKey))
	p.mux.Handle("POST "+PortalPath+"/keys/{id}/{action}", p.authed(p.keyAction))
	p.mux.Handle("GET "+PortalPath+"/usage", p.authed(p.usagePage))
	return p
}

// ServeHTTP sets the console's security headers and routes r.
func (p *Portal) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w, clientaddr.HTTPS(r, p.trusted))
	w.Header().Set("Cache-Control", "no-store")
	if _, pattern := p.mux.Handler(r); pattern == "" {
		p.message(w, r, nil, http.StatusNotFound, "Not found", "There is no such portal page.", "")
		return
	}
	p.mux.ServeHTTP(w, r)
}

// cookie returns the portal's cookie: HttpOnly, scoped to PortalPath,
// Secure over https, and SameSite=Lax: the customer arrives from the
// service's site, and a Strict cookie set at the end of that cross-site
// navigation would not be sent on the redirect to the portal. Forms are
// protected by CSRF tokens. maxAge < 0 deletes it.
func (p *Portal) cookie(r *http.Request, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: PortalCookie, Value: value, Path: PortalPath, MaxAge: maxAge, HttpOnly: true, Secure: clientaddr.HTTPS(r, p.trusted), SameSite: http.SameSiteLaxMode}
}

// useLink uses a portal link once: it starts the session, sets its cookie
// and redirects to the keys page, so the token leaves the address bar
// (and, with Referrer-Policy no-referrer, is never sent anywhere). A used,
// expired or unknown link gets 404 and says so.
func (p *Portal) useLink(w http.ResponseWriter, r *http.Request) {
	ctx := p.requestContext(r)
	cookie, s, err := p.sessions.StartPortalSession(ctx, r.PathValue("token"))
	if keyward.ErrorCode(err) == keyward.ENOTFOUND {
		p.message(w, r, nil, http.StatusNotFound, "This link cannot be used", "A portal link works once, for a few minutes: this one was used already, has expired or does not exist. Go back to the service and open the portal again.", "")
		return
	}
	if err != nil {
		p.fail(w, r, nil, err)
		return
	}
	maxAge := int(s.ExpiresAt.Sub(p.now()).Seconds())
	http.SetCookie(w, p.cookie(r, cookie, max(maxAge, 1)))
	http.Redirect(w, r, PortalPath+"/keys", http.StatusSeeOther)
}

// portalSession is a request's live portal session.
type portalSession struct {
	*keyward.PortalSession
	cookie   string
	branding *keyward.PortalBranding
}

// csrf is the session's CSRF token, derived from its cookie (which only
// the browser and this request hold), so nothing more is stored.
func (s *portalSession) csrf() string {
	h := sha256.Sum256([]byte("keyward portal csrf\x00" + s.cookie))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

type portalFunc func(w http.ResponseWriter, r *http.Request, s *portalSession)

// authed serves fn for a live portal session: it reads the session from
// the store (any instance's), checks the CSRF token of a POST and puts the
// request's info in the context for the audit log.
func (p *Portal) authed(fn portalFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var cookie string
		if ck, err := r.Cookie(PortalCookie); err == nil {
			cookie = ck.Value
		}
		r = r.WithContext(p.requestContext(r))
		ps, err := p.sessions.PortalSession(r.Context(), cookie)
		if err != nil {
			if keyward.ErrorCode(err) == keyward.EUNAUTHORIZED {
				http.SetCookie(w, p.cookie(r, "", -1))
			}
			p.fail(w, r, nil, err)
			return
		}
		b, err := p.sessions.BrandingOf(r.Context(), ps)
		if err != nil {
			p.fail(w, r, nil, err)
			return
		}
		// The session's identity, for the audit log of a refusal (the
		// services act with it too).
		r = r.WithContext(keyward.NewContextWithIdentity(r.Context(), ps.Identity()))
		s := &portalSession{PortalSession: ps, cookie: cookie, branding: b}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if !tokensEqual(s.csrf(), r.PostFormValue("csrf")) {
				p.show(w, r, s, errCSRF) // a forgery, not the customer's refused action
				return
			}
		}
		fn(w, r, s)
	})
}

func (p *Portal) requestContext(r *http.Request) context.Context {
	return keyward.NewContextWithRequestInfo(r.Context(), httpedge.RequestInfo(r, clientaddr.FromRequest(r, p.trusted)))
}

// portalView is what every portal page's template receives.
type portalView struct {
	// Title is the account's portal title.
	Title string
	// Session is the customer's session, nil on pages without one.
	Session *keyward.PortalSession
	CSRF    string
	Data    any
}

// defaultPortalTitle names a portal whose account set no title.
const defaultPortalTitle = "API keys"

func (p *Portal) render(w http.ResponseWriter, r *http.Request, status int, name string, s *portalSession, data any) {
	v := portalView{Title: defaultPortalTitle, Data: data}
	if s != nil {
		v.Session, v.CSRF = s.PortalSession, s.csrf()
		if s.branding.Title != "" {
			v.Title = s.branding.Title
		}
	}
	execute(w, r, p.log, status, p.pages[name], name, v)
}

// message renders a page of one message; back, if set, links to the
// service.
func (p *Portal) message(w http.ResponseWriter, r *http.Request, s *portalSession, status int, heading, detail, back string) {
	p.render(w, r, status, "portal_message", s, map[string]any{"Heading": heading, "Detail": detail, "Alert": status >= 400, "Back": back})
}

// fail renders err with the status the API would answer, recording a
// refusal of a customer in the audit log.
func (p *Portal) fail(w http.ResponseWriter, r *http.Request, s *portalSession, err error) {
	if s != nil && keyward.ErrorCode(err) == keyward.EFORBIDDEN {
		p.denied.AuditDenied(r.Context(), r.Pattern, err)
	}
	p.show(w, r, s, err)
}

// show renders err with the status the API would answer.
func (p *Portal) show(w http.ResponseWriter, r *http.Request, s *portalSession, err error) {
	pr := httpedge.ProblemOf(err, r.URL.Path)
	if keyward.ErrorCode(err) == keyward.EINTERNAL {
		p.log.ErrorContext(r.Context(), "portal request failed", "route", r.Pattern, "err", apikey.Redact(err.Error()))
	}
	p.message(w, r, s, pr.Status, pr.Title, pr.Detail, "")
}

// theme is the account's branding as a stylesheet: only colours that are
// #rrggbb reach it (checked when set, and again here), so it can carry
// nothing else, and the CSP (style-src 'self') allows it as it allows the
// console's own.
func (p *Portal) theme(w http.ResponseWriter, r *http.Request, s *portalSession) {
	var b strings.Builder
	b.WriteString(":root {")
	for _, v := range []struct{ name, color string }{{"--accent", s.branding.AccentColor}, {"--bg", s.branding.BackgroundColor}, {"--fg", s.branding.TextColor}} {
		if keyward.IsHexColor(v.color) {
			b.WriteString(" " + v.name + ": " + v.color + ";")
		}
	}
	b.WriteString(" }\n")
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Write([]byte(b.String()))
}

// portalKeysPerPage sizes the portal's list of keys (a page of the store,
// less the keys of environments the session does not grant).
const portalKeysPerPage = 50

func (p *Portal) keysPage(w http.ResponseWriter, r *http.Request, s *portalSession) {
	q := r.URL.Query()
	l, err := p.sessions.PortalKeys(r.Context(), s.PortalSession, keyward.Page{After: q.Get("after"), Limit: portalKeysPerPage})
	if err != nil {
		p.fail(w, r, s, err)
		return
	}
	now := p.now()
	rows := make([]keyRow, 0, len(l.Items))
	for _, k := range l.Items {
		rows = append(rows, keyRow{Key: k, Status: statusWord(k, now)})
	}
	p.render(w, r, http.StatusOK, "portal_keys", s, map[string]any{"Keys": rows, "Next": nextURL(PortalPath+"/keys", q, l.Next)})
}

// createKey creates a key of the customer's user and shows its secret
// once, on a page that is not cached.
func (p *Portal) createKey(w http.ResponseWriter, r *http.Request, s *portalSession) {
	in := keyward.KeyCreate{
		Name:        strings.TrimSpace(r.PostFormValue("name")),
		Environment: r.PostFormValue("environment"),
		Permissions: r.PostForm["permissions"],
	}
	if v := r.PostFormValue("expires_in"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			p.fail(w, r, s, keyward.Errorf(keyward.EINVALID, "choose when the key expires from the list"))
			return
		}
		at := p.now().Add(d).UTC().Truncate(time.Second)
		in.ExpiresAt = &at
	}
	k, err := p.sessions.PortalCreateKey(r.Context(), s.PortalSession, in)
	if err != nil {
		p.fail(w, r, s, err)
		return
	}
	p.render(w, r, http.StatusCreated, "portal_created", s, map[string]any{"Secret": k.Secret, "Rotated": false})
}

// keyAction rotates or revokes a key of the customer's user.
func (p *Portal) keyAction(w http.ResponseWriter, r *http.Request, s *portalSession) {
	id := r.PathValue("id")
	switch r.PathValue("action") {
	case "rotate":
		var grace time.Duration
		if v := r.PostFormValue("grace"); v != "" {
			var err error
			if grace, err = time.ParseDuration(v); err != nil || grace < 0 {
				p.fail(w, r, s, keyward.Errorf(keyward.EINVALID, "choose how long the old key keeps working from the list"))
				return
			}
		}
		k, err := p.sessions.PortalRotateKey(r.Context(), s.PortalSession, id, keyward.KeyRotate{Grace: keyward.Duration(grace)})
		if err != nil {
			p.fail(w, r, s, err)
			return
		}
		p.render(w, r, http.StatusCreated, "portal_created", s, map[string]any{"Secret": k.Secret, "Rotated": true})
	case "revoke":
		if _, err := p.sessions.PortalRevokeKey(r.Context(), s.PortalSession, id); err != nil {
			p.fail(w, r, s, err)
			return
		}
		http.Redirect(w, r, PortalPath+"/keys", http.StatusSeeOther)
	default:
		p.fail(w, r, s, keyward.Errorf(keyward.ENOTFOUND, "no such key action: use rotate or revoke"))
	}
}

// usagePage charts the verifications of the customer's keys.
func (p *Portal) usagePage(w http.ResponseWriter, r *http.Request, s *portalSession) {
	per, err := periodOf(r.URL.Query().Get("period"))
	if err != nil {
		p.fail(w, r, s, err)
		return
	}
	f := keyward.UsageFilter{Granularity: per.Granularity, Since: per.since(p.now())}
	rep, err := p.sessions.PortalUsage(r.Context(), s.PortalSession, f)
	if err != nil {
		p.fail(w, r, s, err)
		return
	}
	p.render(w, r, http.StatusOK, "portal_usage", s, usageData(f, per, rep))
}

// signOut ends the session (with the CSRF token) and shows a page linking
// back to the service: the CSP's form-action 'self' would refuse a
// redirect there from a form.
func (p *Portal) signOut(w http.ResponseWriter, r *http.Request, s *portalSession) {
	if err := p.sessions.EndPortalSession(r.Context(), s.cookie); err != nil {
		p.fail(w, r, s, err)
		return
	}
	http.SetCookie(w, p.cookie(r, "", -1))
	back := s.ReturnURL
	if u, err := url.Parse(back); err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		back = "" // never a link but http(s), whatever the store holds
	}
	p.message(w, r, nil, http.StatusOK, "Signed out", "You are signed out of the portal.", back)
}
