package middleware

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/clientaddr"
	"github.com/keyward/keyward/httpedge"
	"github.com/keyward/keyward/ratelimit"
)

// HeaderAgent names the agent acting with a key, as on the keyward server.
// It is echoed in the identity and never grants anything.
const HeaderAgent = keyward.HeaderAgent

// MaxAgentLen bounds the X-Keyward-Agent header, as on the keyward server.
const MaxAgentLen = keyward.MaxAgentLen

// Option configures New.
type Option func(*config)

type config struct {
	perms    []string
	query    string
	role     keyward.Role
	exempt   []string
	exemptFn func(*http.Request) bool
	write    ErrorWriter
	log      *slog.Logger
	trusted  []netip.Prefix
	// challenge is the WWW-Authenticate value of a 401.
	challenge string
	// agentHeaders are read as the agent besides X-Keyward-Agent.
	agentHeaders []string
	// env is the environment every key must be in; "" for any.
	env string
}

// WithPermissions makes every request need all of perms: a valid key
// without them is refused with 403. Permissions of single routes are
// checked with RequirePermissions.
func WithPermissions(perms ...string) Option {
	return func(c *config) { c.perms = append(c.perms, perms...) }
}

// WithQuery makes every request need the permission query q as well:
// permissions joined by AND and OR, AND binding tighter, with parentheses
// ("memories:read AND (search:run OR admin:*)"); a valid key that does not
// satisfy it is refused with 403. q is parsed once, by New, which panics
// if it does not parse (the message names the position). Queries of single
// routes are checked with RequireQuery.
func WithQuery(q string) Option {
	return func(c *config) { c.query = q }
}

// WithRole makes every request need a key of role at least role: root,
// account_admin or user (keyward.Role.Covers), or a key holding the named
// role role (keyward.Key.HasRole); another key is refused with 403. New
// panics if role is neither a tier nor a role name.
func WithRole(role keyward.Role) Option {
	return func(c *config) { c.role = role }
}

// WithEnvironment makes every request need a key of environment env
// (such as live): a valid key of another is refused with 403
// (WRONG_ENVIRONMENT), and so is a valid answer naming no environment or
// another (a verifier that does not know environments). New panics if env
// is not an environment name.
func WithEnvironment(env string) Option {
	return func(c *config) { c.env = env }
}

// WithExempt lets requests for paths through without a key (a landing
// page, /healthz, /openapi.json). A path matches exactly ("/docs"), or as
// a prefix when it ends in "*" ("/public/*" matches "/public/a.css"). A
// request path that is not clean ("/public/../admin", "//x") is never
// exempt. Handlers behind an exempt path see no identity. Each path must
// start with "/"; New panics otherwise.
func WithExempt(paths ...string) Option {
	return func(c *config) { c.exempt = append(c.exempt, paths...) }
}

// WithExemptFunc lets requests for which f reports true through without a
// key, in addition to WithExempt (e.g. CORS preflight: OPTIONS requests).
func WithExemptFunc(f func(*http.Request) bool) Option {
	return func(c *config) { c.exemptFn = f }
}

// WithErrorWriter replaces WriteProblem as the writer of refusals, for
// services with their own error format. WWW-Authenticate (on 401), the
// RateLimit fields and Retry-After (on 429, see Denial.RateLimits),
// Retry-After (on 503) and Cache-Control are set before it is called.
// RequirePermissions behind this middleware uses the same writer.
func WithErrorWriter(w ErrorWriter) Option {
	return func(c *config) { c.write = w }
}

// WithLogger sets the logger of refusals (debug) and verifier failures
// (warn); default slog.Default(). The middleware adds
// component=keyward-middleware. Raw keys are never logged.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.log = l }
}

// WithTrustedProxies names the reverse proxies in front of the service.
// When the peer (RemoteAddr) is one of them, the client IP sent to the
// verifier is the right-most address of X-Forwarded-For that is not a
// trusted proxy. Without this option X-Forwarded-For is ignored: any
// client can write it.
func WithTrustedProxies(prefixes ...netip.Prefix) Option {
	return func(c *config) {
		for _, p := range prefixes {
			c.trusted = append(c.trusted, p.Masked())
		}
	}
}

// WithChallenge sets the WWW-Authenticate value of every 401, built with
// httpedge.Challenge: `ApiKey realm="memories"` for clients that expect
// that scheme. Default WWWAuthenticate, Bearer realm="keyward". Keys are
// still read from Authorization: Bearer and X-API-Key. New panics if the
// challenge holds a control character.
func WithChallenge(challenge string) Option {
	return func(c *config) { c.challenge = challenge }
}

// WithAgentHeaders reads the agent from these headers too, besides
// X-Keyward-Agent (X-OpenViking-Agent, say), so clients of a service that
// moves to keyward keep their header; several of them must name the same
// agent (400 otherwise). New panics if a name is not a header name, is
// X-Keyward-Agent or a credential header, or repeats.
func WithAgentHeaders(names ...string) Option {
	return func(c *config) { c.agentHeaders = append(c.agentHeaders, names...) }
}

// New returns middleware that admits a request only with a key v accepts.
//
// The key is read as the keyward server reads it: "Authorization: Bearer
// KEY" or "X-API-Key: KEY" (both with different keys: 401), never from the
// query string. X-Keyward-Agent names the agent; the client IP is the peer
// address (see WithTrustedProxies). On VALID the request goes on with the
// identity in its context, for handlers to read with keyward.IdentityFrom
// (and the whole result with ResultFrom), and the response carries the
// RateLimit-Policy and RateLimit fields when the key has rate limits.
// Anything else is refused as RFC 9457 problem+json: 401 with
// WWW-Authenticate for a missing or refused key, 403 for missing
// permissions (a list, a query, a role) or a refused address, 429 with the RateLimit fields for a
// rate limit (and Retry-After) or quota, 503 when v fails or answers
// UNAVAILABLE, 400 for a malformed X-Keyward-Agent. Refusals never say
// which check failed.
//
// v is typically a client.CachedVerifier (a remote keyward) or a
// verify.Engine (in process). New panics if v is nil, an exempt path does
// not start with "/", or WithChallenge, WithAgentHeaders, WithQuery,
// WithRole or WithEnvironment is given something unusable: all are wiring
// bugs.
func New(v keyward.KeyVerifier, opts ...Option) func(http.Handler) http.Handler {
	if v == nil {
		panic("middleware: New needs a keyward.KeyVerifier")
	}
	c := &config{}
	for _, o := range opts {
		o(c)
	}
	for _, p := range c.exempt {
		if !strings.HasPrefix(p, "/") {
			panic("middleware: exempt path " + p + " must start with /")
		}
	}
	if err := httpedge.CheckAgentHeaders(c.agentHeaders); err != nil {
		panic("middleware: " + keyward.ErrorMessage(err))
	}
	if c.query != "" {
		mustParse(c.query)
	}
	if c.role != "" {
		if err := keyward.ValidateRequiredRole(c.role); err != nil {
			panic("middleware: WithRole: " + keyward.ErrorMessage(err))
		}
	}
	if c.env != "" {
		if err := keyward.ValidateEnvironment("WithEnvironment", c.env); err != nil {
			panic("middleware: " + keyward.ErrorMessage(err))
		}
	}
	if c.challenge == "" {
		c.challenge = WWWAuthenticate
	}
	if strings.ContainsFunc(c.challenge, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		panic("middleware: the challenge holds a control character: build it with httpedge.Challenge")
	}
	if c.write == nil {
		c.write = WriteProblem
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	c.log = c.log.With("component", "keyward-middleware")
	c.perms = slices.Clone(c.perms)
	return func(next http.Handler) http.Handler {
		return &handler{v: v, c: c, next: next}
	}
}

type handler struct {
	v    keyward.KeyVerifier
	c    *config
	next http.Handler
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.exempt(r) {
		// No identity, but RequirePermissions behind refuses with this
		// middleware's writer and challenge.
		ctx := context.WithValue(r.Context(), stateKey{}, &state{write: h.c.write, challenge: h.c.challenge})
		h.next.ServeHTTP(w, r.WithContext(ctx))
		return
	}
	raw, err := apikey.FromRequest(r)
	if err != nil {
		h.deny(w, r, refusal(err))
		return
	}
	agent, err := httpedge.Agent(r.Header, h.c.agentHeaders...)
	if err != nil {
		h.deny(w, r, refusal(err))
		return
	}
	req := keyward.VerifyRequest{Key: raw, Permissions: h.c.perms, Query: h.c.query, RequireRole: h.c.role, Agent: agent, Environment: h.c.env}
	if ip := clientaddr.FromRequest(r, h.c.trusted); ip.IsValid() {
		req.IP = ip.String()
	}
	res, err := h.v.VerifyKey(r.Context(), req)
	if err == nil && res == nil {
		err = keyward.Errorf(keyward.EINTERNAL, "the verifier returned neither a result nor an error")
	}
	if err != nil {
		h.deny(w, r, unavailable(err))
		return
	}
	if !res.Valid || res.Code != keyward.DecisionValid {
		h.deny(w, r, denialOf(res))
		return
	}
	if h.c.env != "" && res.Environment != h.c.env {
		h.deny(w, r, denialOf(&keyward.VerifyResult{Code: keyward.DecisionWrongEnvironment, KeyID: res.KeyID}))
		return
	}
	// The state of the key's rate limits goes out with the handler's
	// response.
	ratelimit.SetStatusHeaders(w.Header(), res.RateLimits)
	ctx := keyward.NewContextWithIdentity(r.Context(), identityOf(res, agent))
	ctx = context.WithValue(ctx, stateKey{}, &state{result: res, write: h.c.write, challenge: h.c.challenge})
	h.next.ServeHTTP(w, r.WithContext(ctx))
}

// exempt reports whether r may pass without a key.
func (h *handler) exempt(r *http.Request) bool {
	if h.c.exemptFn != nil && h.c.exemptFn(r) {
		return true
	}
	if len(h.c.exempt) == 0 {
		return false
	}
	p := r.URL.Path
	if !isClean(p) {
		return false
	}
	for _, e := range h.c.exempt {
		if prefix, ok := strings.CutSuffix(e, "*"); ok {
			if strings.HasPrefix(p, prefix) {
				return true
			}
		} else if p == e {
			return true
		}
	}
	return false
}

// isClean reports whether p is an absolute path without empty, "." or ".."
// segments (a trailing slash is allowed), so prefix matching cannot be
// walked around.
func isClean(p string) bool {
	if !strings.HasPrefix(p, "/") {
		return false
	}
	segs := strings.Split(p[1:], "/")
	for i, s := range segs {
		switch {
		case s == "" && i == len(segs)-1:
		case s == "", s == ".", s == "..":
			return false
		}
	}
	return true
}

// deny logs d and writes it.
func (h *handler) deny(w http.ResponseWriter, r *http.Request, d *Denial) {
	// Logs carry the method and never the path: a path can hold anything
	// a client typed, a raw key included.
	switch {
	case d.Err != nil && r.Context().Err() == nil:
		h.c.log.WarnContext(r.Context(), "API key could not be checked", "method", r.Method, "err", d.Err)
	default:
		h.c.log.DebugContext(r.Context(), "request refused", "method", r.Method, "status", d.Status,
			"decision", d.Decision, "key_id", d.KeyID, "err", d.Err)
	}
	writeDenial(w, r, h.c.write, h.c.challenge, d)
}

// identityOf returns the identity of a valid result for this request: a
// copy whose agent is the request's own.
func identityOf(res *keyward.VerifyResult, agent string) *keyward.Identity {
	var id keyward.Identity
	if res.Identity != nil {
		id = *res.Identity
	} else {
		id = keyward.Identity{KeyID: res.KeyID, Permissions: res.Permissions, ExpiresAt: res.ExpiresAt}
	}
	if id.KeyID == "" {
		id.KeyID = res.KeyID
	}
	id.Agent = agent
	return &id
}
