// Package console serves keyward's web console at /console: server-rendered
// pages (html/template, one small committed script, no front-end build)
// for signing in with an API key and managing keys, accounts, users, named
// roles, credits and shared limits, IP rules and webhooks, and reading
// anomalies, usage and the audit log.
//
// The console is another edge over the admin services, like httpapi: a
// sign-in verifies the key with the verification engine (its failures
// count toward brute-force blocking like any other), a server-side
// session keeps it in memory, every request verifies it again and acts
// with its identity in the context, so the services' role checks and
// audit entries are the API's. See docs/console.md.
package console

import (
	"context"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/clientaddr"
	"github.com/keyward/keyward/httpedge"
	"github.com/keyward/keyward/verify"
)

// Path is where the console is mounted.
const Path = "/console"

// Cookie names: the session, and the sign-in form's CSRF token (before a
// session exists).
const (
	SessionCookie = "keyward_console"
	signInCookie  = "keyward_console_signin"
)

// ContentSecurityPolicy is sent with every console response: only the
// console's own files, no inline script or style, no framing.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Tenancy manages accounts and their users (admin.Tenancy is one).
type Tenancy interface {
	keyward.AccountService
	keyward.UserService
}

// Audit reads the audit log and usage, and records refused admin actions
// in the audit log, as the API does; admin.Audit is one.
type Audit interface {
	keyward.AuditService
	keyward.UsageService
	AuditDenied(ctx context.Context, route string, cause error)
}

// Keys manages keys, their credits and the shared limits of accounts
// and users (admin.Keys is one).
type Keys interface {
	keyward.KeyService
	keyward.CreditService
	keyward.MeterService
}

// Abuse manages IP rules and reads anomalies (admin.Abuse is one).
type Abuse interface {
	keyward.IPRuleService
	keyward.AnomalyService
}

// Config configures a Console.
type Config struct {
	// Tenancy, Keys, Roles, Abuse and Hooks (webhooks) are the admin
	// services the pages act through, as the API does. Required.
	Tenancy Tenancy
	Keys    Keys
	Roles   keyward.RoleService
	Abuse   Abuse
	Hooks   keyward.WebhookService
	// Branding reads and sets the end-user portal's branding of accounts.
	// Required.
	Branding keyward.PortalService
	// Audit serves the audit log and usage pages and records refused
	// actions. Required.
	Audit Audit
	// Engine verifies the signed-in key on sign-in and on every request.
	// Required.
	Engine *verify.Engine
	// TrustedProxies are the proxies whose X-Forwarded-For names the
	// client and whose X-Forwarded-Proto says whether the browser used
	// https (Secure cookies); the same setting as the API's.
	TrustedProxies []netip.Prefix
	// IdleTimeout ends a session after this long without a request; 0:
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxAge ends a session this long after sign-in; 0: DefaultMaxAge.
	MaxAge time.Duration
	// MaxSessions bounds the sessions in memory; 0: DefaultMaxSessions.
	MaxSessions int
	// Now is the clock of sessions; nil: time.Now.
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Console is the web console; it is an http.Handler for the paths under
// Path.
type Console struct {
	tenancy  Tenancy
	keys     Keys
	roles    keyward.RoleService
	abuse    Abuse
	hooks    keyward.WebhookService
	branding keyward.PortalService
	audit    Audit
	engine   *verify.Engine
	trusted  []netip.Prefix
	sessions *sessions
	now      func() time.Time
	log      *slog.Logger
	mux      *http.ServeMux
	pages    map[string]*template.Template
}

// New returns a Console for cfg. It panics if a service or the engine is
// missing, or a template does not parse: wiring bugs.
func New(cfg Config) *Console {
	if cfg.Tenancy == nil || cfg.Keys == nil || cfg.Roles == nil || cfg.Abuse == nil || cfg.Hooks == nil || cfg.Branding == nil || cfg.Audit == nil || cfg.Engine == nil {
		panic("console: Config.Tenancy, Config.Keys, Config.Roles, Config.Abuse, Config.Hooks, Config.Branding, Config.Audit and Config.Engine are required")
	}
	c := &Console{
		tenancy:  cfg.Tenancy,
		keys:     cfg.Keys,
		roles:    cfg.Roles,
		abuse:    cfg.Abuse,
		hooks:    cfg.Hooks,
		branding: cfg.Branding,
		audit:    cfg.Audit,
		engine:   cfg.Engine,
		trusted:  slices.Clone(cfg.TrustedProxies),
		now:      cfg.Now,
		log:      cfg.Logger,
		mux:      http.NewServeMux(),
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	c.log = c.log.With("component", "console")
	idle, maxAge, max := cfg.IdleTimeout, cfg.MaxAge, cfg.MaxSessions
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	if maxAge <= 0 {
		maxAge = DefaultMaxAge
	}
	if max <= 0 {
		max = DefaultMaxSessions
	}
	c.sessions = newSessions(idle, maxAge, max, c.now)
	c.pages = parsePages()
	c.routes()
	return c
}

func (c *Console) routes() {
	static, _ := fs.Sub(staticFS, "static")
	c.mux.Handle("GET "+Path+"/static/", http.StripPrefix(Path+"/static/", http.FileServerFS(static)))
	c.mux.HandleFunc("GET "+Path+"/{$}", c.home)
	c.mux.HandleFunc("GET "+Path+"/sign-in", c.signInPage)
	c.mux.HandleFunc("POST "+Path+"/sign-in", c.signIn)
	c.mux.Handle("POST "+Path+"/sign-out", c.authed(c.signOut))
	c.mux.Handle("GET "+Path+"/keys", c.authed(c.listKeys))
	c.mux.Handle("GET "+Path+"/keys/new", c.authed(c.newKeyPage))
	c.mux.Handle("POST "+Path+"/keys", c.authed(c.createKey))
	c.mux.Handle("GET "+Path+"/keys/{id}", c.authed(c.keyPage))
	c.mux.Handle("POST "+Path+"/keys/{id}/{action}", c.authed(c.keyAction))
	c.mux.Handle("GET "+Path+"/accounts", c.authed(c.listAccounts))
	c.mux.Handle("POST "+Path+"/accounts", c.authed(c.createAccount))
	c.mux.Handle("GET "+Path+"/accounts/{id}", c.authed(c.accountPage))
	c.mux.Handle("POST "+Path+"/accounts/{id}/users", c.authed(c.createUser))
	c.mux.Handle("GET "+Path+"/accounts/{id}/users/{uid}", c.authed(c.userPage))
	c.mux.Handle("POST "+Path+"/accounts/{id}/limits", c.authed(c.setMeter(false)))
	c.mux.Handle("POST "+Path+"/accounts/{id}/limits/delete", c.authed(c.setMeter(true)))
	c.mux.Handle("POST "+Path+"/accounts/{id}/users/{uid}/limits", c.authed(c.setMeter(false)))
	c.mux.Handle("POST "+Path+"/accounts/{id}/users/{uid}/limits/delete", c.authed(c.setMeter(true)))
	c.mux.Handle("GET "+Path+"/accounts/{id}/portal", c.authed(c.brandingPage))
	c.mux.Handle("POST "+Path+"/accounts/{id}/portal", c.authed(c.setBranding))
	c.mux.Handle("GET "+Path+"/accounts/{id}/roles", c.authed(c.rolesPage))
	c.mux.Handle("POST "+Path+"/accounts/{id}/roles", c.authed(c.createRole))
	c.mux.Handle("POST "+Path+"/accounts/{id}/roles/{name}", c.authed(c.updateRole))
	c.mux.Handle("POST "+Path+"/accounts/{id}/roles/{name}/delete", c.authed(c.deleteRole))
	c.mux.Handle("GET "+Path+"/audit", c.authed(c.auditPage))
	c.mux.Handle("GET "+Path+"/ip-rules", c.authed(c.ipRulesPage))
	c.mux.Handle("POST "+Path+"/ip-rules", c.authed(c.createIPRule))
	c.mux.Handle("POST "+Path+"/ip-rules/{id}/delete", c.authed(c.deleteIPRule))
	c.mux.Handle("GET "+Path+"/anomalies", c.authed(c.anomaliesPage))
	c.mux.Handle("GET "+Path+"/webhooks", c.authed(c.webhooksPage))
	c.mux.Handle("POST "+Path+"/webhooks", c.authed(c.createWebhook))
	c.mux.Handle("GET "+Path+"/webhooks/{id}", c.authed(c.webhookPage))
	c.mux.Handle("POST "+Path+"/webhooks/{id}/{action}", c.authed(c.webhookAction))
	c.mux.Handle("POST "+Path+"/webhooks/{id}/deliveries/{event}/retry", c.authed(c.retryDelivery))
	c.mux.Handle("GET "+Path+"/audit/verify", c.authed(c.auditVerifyPage))
	c.mux.Handle("GET "+Path+"/usage", c.authed(c.usagePage))
}

// ServeHTTP sets the security headers every console response carries and
// routes r.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w, c.https(r))
	if _, pattern := c.mux.Handler(r); pattern == "" {
		c.renderError(w, r, nil, keyward.Errorf(keyward.ENOTFOUND, "no such console page"))
		return
	}
	c.mux.ServeHTTP(w, r)
}

// securityHeaders sets the headers every console and portal response
// carries: the strict CSP, no sniffing, no referrer, no framing, and HSTS
// over https.
func securityHeaders(w http.ResponseWriter, https bool) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	if https {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
}

// https reports whether the browser reached the console over https.
func (c *Console) https(r *http.Request) bool { return clientaddr.HTTPS(r, c.trusted) }

// cookie returns a console cookie: HttpOnly, SameSite=Strict, scoped to
// Path, Secure over https. maxAge < 0 deletes it.
func (c *Console) cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: Path, MaxAge: maxAge, HttpOnly: true, Secure: c.https(r), SameSite: http.SameSiteStrictMode}
}

// caller is the signed-in session of a request and what it acts as.
type caller struct {
	id      string
	session *session
	ident   *keyward.Identity
}

type authedFunc func(w http.ResponseWriter, r *http.Request, cl *caller)

// authed serves fn for a signed-in session: it verifies the session's key
// again (a revoked, disabled or expired key ends the session), checks the
// CSRF token of a POST, puts the identity and request info in the
// context, and marks the response not cacheable.
func (c *Console) authed(fn authedFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		id := sessionID(r)
		ss := c.sessions.get(id)
		if ss == nil {
			c.toSignIn(w, r)
			return
		}
		res := c.engine.Verify(r.Context(), verify.Request{Key: ss.key.Reveal(), IP: clientaddr.FromRequest(r, c.trusted), Unmetered: true})
		if !res.Decision.Valid() {
			c.log.InfoContext(r.Context(), "console session ended: its key no longer verifies", "decision", res.Decision, "key_id", res.KeyID())
			c.sessions.end(id)
			http.SetCookie(w, c.cookie(r, SessionCookie, "", -1))
			c.toSignIn(w, r)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if !tokensEqual(ss.csrf, r.PostFormValue("csrf")) {
				c.renderError(w, r, nil, errCSRF)
				return
			}
		}
		ctx := keyward.NewContextWithIdentity(r.Context(), res.Identity())
		ctx = keyward.NewContextWithRequestInfo(ctx, httpedge.RequestInfo(r, clientaddr.FromRequest(r, c.trusted)))
		fn(w, r.WithContext(ctx), &caller{id: id, session: ss, ident: res.Identity()})
	})
}

// maxFormBytes bounds a console form.
const maxFormBytes = 64 << 10

var errCSRF = keyward.Errorf(keyward.EFORBIDDEN, "the form's security token is missing or stale: reload the page and submit it again")

func sessionID(r *http.Request) string {
	ck, err := r.Cookie(SessionCookie)
	if err != nil {
		return ""
	}
	return ck.Value
}

func (c *Console) toSignIn(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, Path+"/sign-in", http.StatusSeeOther)
}

func (c *Console) home(w http.ResponseWriter, r *http.Request) {
	if c.sessions.get(sessionID(r)) != nil {
		http.Redirect(w, r, Path+"/keys", http.StatusSeeOther)
		return
	}
	c.toSignIn(w, r)
}

func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) {
	c.renderSignIn(w, r, http.StatusOK, "")
}

// renderSignIn renders the sign-in form with a fresh CSRF token, also set
// as a cookie the POST must send back (no session exists yet).
func (c *Console) renderSignIn(w http.ResponseWriter, r *http.Request, status int, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	token := apikey.NewToken()
	http.SetCookie(w, c.cookie(r, signInCookie, token, 3600))
	c.render(w, r, status, "signin", nil, map[string]any{"CSRF": token, "Error": msg})
}

// errSignIn is all a refused sign-in says, like the API's 401.
const errSignIn = "invalid API key"

// signIn verifies the posted key (never from the URL) and starts a session.
// A refusal counts toward brute-force blocking of the client address, as
// on the API: the engine reports it to abuse detection.
func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if r.URL.RawQuery != "" {
		c.renderSignIn(w, r, http.StatusBadRequest, "the key must be posted in the form, never in the address")
		return
	}
	ck, err := r.Cookie(signInCookie)
	if err != nil || !tokensEqual(ck.Value, r.PostFormValue("csrf")) {
		c.renderSignIn(w, r, http.StatusForbidden, errCSRF.Error())
		return
	}
	raw := r.PostFormValue("key")
	if raw == "" {
		c.renderSignIn(w, r, http.StatusBadRequest, "enter an API key")
		return
	}
	res := c.engine.Verify(r.Context(), verify.Request{Key: raw, IP: clientaddr.FromRequest(r, c.trusted), Unmetered: true})
	if !res.Decision.Valid() {
		c.log.DebugContext(r.Context(), "console sign-in refused", "decision", res.Decision, "key_id", res.KeyID())
		// The API's answer: 401 and nothing more for a wrong key, 403
		// from a blocked address, 503 when the key cannot be checked.
		p := httpedge.ProblemOf(res.Decision.Refusal(), "")
		msg := errSignIn
		if p.Status != http.StatusUnauthorized {
			msg = p.Detail
		}
		c.renderSignIn(w, r, p.Status, msg)
		return
	}
	if old := sessionID(r); old != "" {
		c.sessions.end(old) // a new sign-in replaces the browser's session
	}
	id, _ := c.sessions.create(keyward.Secret(raw))
	http.SetCookie(w, c.cookie(r, SessionCookie, id, 0))
	http.SetCookie(w, c.cookie(r, signInCookie, "", -1))
	c.log.InfoContext(r.Context(), "console sign-in", "key_id", res.KeyID())
	http.Redirect(w, r, Path+"/keys", http.StatusSeeOther)
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request, cl *caller) {
	c.sessions.end(cl.id)
	http.SetCookie(w, c.cookie(r, SessionCookie, "", -1))
	http.Redirect(w, r, Path+"/sign-in", http.StatusSeeOther)
}

// fail renders err for a signed-in caller, recording a refusal in the
// audit log as the API does.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, cl *caller, err error) {
	if keyward.ErrorCode(err) == keyward.EFORBIDDEN {
		c.audit.AuditDenied(r.Context(), r.Pattern, err)
	}
	c.renderError(w, r, cl, err)
}

// renderError renders err as a page with the status the API would answer.
func (c *Console) renderError(w http.ResponseWriter, r *http.Request, cl *caller, err error) {
	p := httpedge.ProblemOf(err, r.URL.Path)
	if keyward.ErrorCode(err) == keyward.EINTERNAL {
		c.log.ErrorContext(r.Context(), "console request failed", "route", r.Pattern, "err", apikey.Redact(err.Error()))
	}
	w.Header().Set("Cache-Control", "no-store")
	c.render(w, r, p.Status, "error", cl, map[string]any{"Title": p.Title, "Detail": p.Detail})
}
