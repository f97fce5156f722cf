package gateway

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/httpedge"
	"github.com/keyward/keyward/permission"
	"go.opentelemetry.io/otel/trace"
)

// Defaults of Config.
const (
	DefaultDialTimeout           = 10 * time.Second
	DefaultTLSHandshakeTimeout   = 10 * time.Second
	DefaultResponseHeaderTimeout = 2 * time.Minute
	DefaultIdleConnTimeout       = 90 * time.Second
	DefaultReadHeaderTimeout     = 10 * time.Second
	DefaultIdleTimeout           = 2 * time.Minute
	DefaultMaxHeaderBytes        = 64 << 10
	DefaultMaxBodyBytes          = 10 << 20
)

// HeaderNames are the request headers that carry the identity of a
// verified key to the upstream (and the forward-auth answer). Empty fields
// take the defaults of DefaultHeaderNames.
type HeaderNames struct {
	// KeyID carries the key's id. Default X-Keyward-Key-Id.
	KeyID string `yaml:"key_id"`
	// Account carries the key's account id; absent for root keys.
	// Default X-Keyward-Account.
	Account string `yaml:"account"`
	// User carries the key's user id; absent unless a user key. Default
	// X-Keyward-User.
	User string `yaml:"user"`
	// Role carries root, account_admin or user. Default X-Keyward-Role.
	Role string `yaml:"role"`
	// Agent carries the agent the client named in X-Keyward-Agent. Default
	// X-Keyward-Agent.
	Agent string `yaml:"agent"`
	// Permissions carries the key's permissions separated by single
	// spaces (a permission never contains a space). Default
	// X-Keyward-Permissions.
	Permissions string `yaml:"permissions"`
}

// DefaultHeaderNames returns the default identity header names.
func DefaultHeaderNames() HeaderNames {
	return HeaderNames{
		KeyID:       "X-Keyward-Key-Id",
		Account:     "X-Keyward-Account",
		User:        "X-Keyward-User",
		Role:        "X-Keyward-Role",
		Agent:       keyward.HeaderAgent,
		Permissions: "X-Keyward-Permissions",
	}
}

// list returns the names in a fixed order, with their field names.
func (h *HeaderNames) list() []struct {
	field string
	name  *string
} {
	return []struct {
		field string
		name  *string
	}{
		{"key_id", &h.KeyID}, {"account", &h.Account}, {"user", &h.User},
		{"role", &h.Role}, {"agent", &h.Agent}, {"permissions", &h.Permissions},
	}
}

// Route sends the requests under PathPrefix (on Host, if set) to Upstream.
// Its yaml tags are the keys of a route in keyward.yaml (the upstream is
// read as text there and parsed by the configuration).
type Route struct {
	// PathPrefix selects the requests of this route: the path equals it or
	// continues it with a "/" ("/api" matches /api and /api/x, not
	// /apix). "/" matches every path. The longest matching prefix wins.
	PathPrefix string `yaml:"prefix"`
	// Host, if set, limits the route to requests for this host (the Host
	// header, port ignored, case-insensitive). Routes of the request's
	// host are tried first, then those without a host.
	Host string `yaml:"host"`
	// Upstream is where requests are sent: scheme http or https and a
	// host, with an optional base path that the request path is appended
	// to. Required by New; ignored by NewForwardAuth.
	Upstream *url.URL `yaml:"-"`
	// Permissions the key must hold for every request of the route; a
	// held wildcard covers them ("memories:*" covers "memories:read").
	Permissions []string `yaml:"permissions"`
	// Query is a permission query every request of the route must
	// satisfy too (YAML "query"): permissions joined by AND and OR, AND
	// binding tighter, with parentheses, e.g. "memories:read AND
	// (search:run OR admin:*)". Validate parses it and names the position
	// of a syntax error.
	Query string `yaml:"query"`
	// Methods gives the query of each request method (YAML "methods"),
	// needed besides Permissions and Query: {"GET": "memories:read",
	// "POST": "memories:write"}; "*" stands for every method not listed,
	// and an empty query needs nothing more. HEAD takes GET's query when
	// it is not listed. When Methods is set, a request with a method it
	// neither lists nor covers by "*" is refused (403) before its key is
	// checked: a method the configuration forgot is never open.
	// Forward-auth reads the method from X-Forwarded-Method or
	// X-Original-Method.
	Methods map[string]string `yaml:"methods"`
	// RequireRole, when set, is the least role of the keys the route
	// admits (YAML "require_role"): root, account_admin or user, a role
	// admitting those above it (keyward.Role.Covers), or a named role
	// the key must hold (keyward.Key.HasRole).
	RequireRole keyward.Role `yaml:"require_role"`
	// Limits names the key's rate limits every request of the route
	// counts against (YAML "limits"), manual ones included; empty: all of
	// the key's limits but the manual ones (keyward.RateLimit.Manual). A
	// name the key does not carry is ignored, so a route naming only
	// "heavy" is unlimited for keys without a limit of that name.
	Limits []string `yaml:"limits"`
	// Cost is what each request spends from those limits and the key's
	// credits (YAML "cost"): 0 to keyward.MaxVerificationCost, 0 meaning
	// 1.
	Cost int64 `yaml:"cost"`
	// Environment, if set, is the environment every key of the route
	// must be in (YAML "environment", e.g. live): a key of another is
	// refused with 403 (WRONG_ENVIRONMENT), and so is a valid answer that
	// names no environment or another (a verifier that does not know
	// environments).
	Environment string `yaml:"environment"`
	// Exempt lists exact paths that pass without a key ("/", "/docs",
	// "/openapi.json"), compared case-sensitively with the decoded path.
	// Identity headers sent by the client are removed from them too.
	Exempt []string `yaml:"exempt"`
	// StampField, if set, is a top-level field of the JSON body of every
	// request with a body, whatever its method, that is overwritten with
	// the id of the verified key (e.g. "created_by"), whatever the client
	// sent; fields with the same name in another case are removed. Such
	// requests must send Content-Type: application/json (or +json), no
	// Content-Encoding, and a JSON object of at most MaxBodyBytes.
	StampField string `yaml:"stamp_field"`
	// StampValue says what StampField is set to (YAML "stamp_value"):
	// StampKey (the default) the key's id; StampUser its user, refusing
	// (403) keys that belong to no user; StampSubject whom the key speaks
	// for: its user, else its account, else its id. The user and the
	// subject stay the same when a key is rotated or a keystore token
	// replaced, so attribution survives. Needs StampField.
	StampValue string `yaml:"stamp_value"`
	// CaseInsensitive matches PathPrefix ignoring case (YAML
	// "case_insensitive"), for an upstream that serves /ADMIN as /admin:
	// then /ADMIN/x needs this route's permissions too. Every route whose
	// prefix lies under a case-insensitive one must be case-insensitive
	// as well. Exempt paths still match exactly.
	CaseInsensitive bool `yaml:"case_insensitive"`
	// AllowSemicolon lets request paths of this route hold ';' or %3B
	// (YAML "allow_semicolon"); by default they get 400, because servlet
	// containers and others cut ";params" off path segments and would
	// serve /admin;x as /admin. Even then a path is refused if, cut so,
	// it would have another route or a dot segment.
	AllowSemicolon bool `yaml:"allow_semicolon"`
	// AllowBackslash lets request paths of this route hold '\' or %5C
	// (YAML "allow_backslash"); by default they get 400, because some
	// upstreams take '\' for '/'. Even then a path is refused if, read
	// so, it would have another route or a dot segment.
	AllowBackslash bool `yaml:"allow_backslash"`
}

// What Route.StampValue stamps.
const (
	StampKey     = "key"
	StampUser    = "user"
	StampSubject = "subject"
)

// Config configures a Gateway (New) and the forward-auth handler
// (NewForwardAuth). Zero values take the defaults.
type Config struct {
	// Verifier decides on every key: verify.Engine in process,
	// client.Client for a remote keyward, or a simple-mode verifier.
	// Required.
	Verifier keyward.KeyVerifier
	// Routes maps requests to upstreams and the permissions they need. New
	// needs at least one; NewForwardAuth may have none (then every request
	// only needs a valid key).
	Routes []Route
	// Headers names the identity headers. Every one of them, in any case
	// and with "_" for "-", is removed from each client request before
	// anything else, so a client cannot forge an identity; the default
	// names are removed too when renamed.
	Headers HeaderNames
	// ForwardCredentials keeps the Authorization and X-API-Key headers on
	// requests sent upstream. By default they are removed: the upstream
	// sees the identity, never the key.
	ForwardCredentials bool
	// Anonymous passes requests without a credential to the Verifier too
	// (with an empty key) instead of refusing them at once. Only dev mode
	// (keystore.Dev, loopback only) sets it; every other verifier refuses
	// an empty key.
	Anonymous bool
	// TrustedProxies are the peers whose X-Forwarded-For is believed: the
	// client address is then the right-most address of the chain that is
	// not a trusted proxy. From any other peer the socket address is the
	// client, and forwarding headers it sends are replaced.
	TrustedProxies []netip.Prefix
	// Challenge is the WWW-Authenticate value of every 401; build it with
	// httpedge.Challenge. Default keyward.WWWAuthenticate,
	// Bearer realm="keyward".
	Challenge string
	// AgentHeaders are read as the agent besides X-Keyward-Agent
	// (X-OpenViking-Agent, say; see httpedge.Agent). Like X-Keyward-Agent
	// they are removed from the request: the upstream gets the agent in
	// the identity header Headers.Agent only.
	AgentHeaders []string
	// DialTimeout bounds connecting to an upstream. Default
	// DefaultDialTimeout.
	DialTimeout time.Duration
	// TLSHandshakeTimeout bounds the TLS handshake with an https upstream.
	// Default DefaultTLSHandshakeTimeout.
	TLSHandshakeTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for the upstream's response
	// headers once the request is sent; a streamed body is not bounded.
	// Default DefaultResponseHeaderTimeout.
	ResponseHeaderTimeout time.Duration
	// IdleConnTimeout closes idle upstream connections. Default
	// DefaultIdleConnTimeout.
	IdleConnTimeout time.Duration
	// FlushInterval is how often a response is flushed to the client while
	// it is copied; 0 flushes streamed responses (no Content-Length, or
	// text/event-stream) after every write and others when done; negative
	// flushes after every write.
	FlushInterval time.Duration
	// ReadHeaderTimeout bounds reading a client's request headers (see
	// Server). Default DefaultReadHeaderTimeout.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes idle client connections (see Server). Default
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a client's request headers (see Server).
	// Default DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// MaxBodyBytes bounds a request body sent upstream; larger bodies get
	// 413. Default DefaultMaxBodyBytes; negative: no limit (except for
	// stamped bodies, which are read whole: DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// ForwardAuthPath is where NewForwardAuth's handler is mounted; a
	// request below it (Envoy ext_authz appends the original path) carries
	// the original path. Default httpedge.ForwardAuthPath.
	ForwardAuthPath string
	// Transport sends requests upstream. Default: an http.Transport with
	// the timeouts above, no proxy from the environment, and up to 256
	// idle connections per upstream.
	Transport http.RoundTripper
	// Logger receives refusals (debug), verifier failures and upstream
	// errors, never a key. Default slog.Default(); component=gateway is
	// added.
	Logger *slog.Logger
	// TracerProvider traces each request with a server span (the child of
	// the client's traceparent) and its upstream call with a client span
	// whose traceparent replaces the client's (package tracing). Nil: no
	// tracing, and the client's traceparent reaches the upstream as sent.
	TracerProvider trace.TracerProvider
}

// FieldError says what is wrong with one field of a Config, named as in
// the YAML configuration ("routes[1].upstream").
type FieldError struct {
	Field   string
	Problem string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

// ConfigError lists every invalid field of a Config.
type ConfigError struct {
	Errors []*FieldError
}

func (e *ConfigError) Error() string {
	parts := make([]string, len(e.Errors))
	for i, f := range e.Errors {
		parts[i] = f.Error()
	}
	return "gateway: invalid configuration: " + strings.Join(parts, "; ")
}

// Validate checks cfg as New (needUpstream) or NewForwardAuth would and
// returns a *ConfigError naming each wrong field, or nil. It does not
// change cfg.
func Validate(cfg Config, needUpstream bool) error {
	var errs []*FieldError
	add := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	if cfg.Verifier == nil {
		add("verifier", "is required: a verification engine, a remote keyward client or a simple-mode verifier")
	}
	if needUpstream && len(cfg.Routes) == 0 {
		add("routes", "is empty: add a route with a prefix and an upstream, e.g. prefix / and upstream http://127.0.0.1:9000")
	}
	seen := map[string]int{}
	for i, r := range cfg.Routes {
		f := fmt.Sprintf("routes[%d]", i)
		prefix, err := cleanPrefix(r.PathPrefix)
		if err != nil {
			add(f+".prefix", "%q %v", r.PathPrefix, err)
		} else if j, other := caseConflict(cfg.Routes, i); j >= 0 {
			add(f+".prefix", "%q lies under %q of routes[%d], which is case_insensitive: set case_insensitive on this route too, or its paths in another case would pass by the rules of routes[%d]", r.PathPrefix, other, j, j)
		}
		host := hostKey(r.Host)
		if strings.ContainsAny(host, "/ @?#") {
			add(f+".host", "%q is not a host name: use a bare name such as api.example.com", r.Host)
		}
		k := host + prefix
		if r.CaseInsensitive {
			k = host + strings.ToLower(prefix)
		}
		if j, dup := seen[k]; dup && err == nil {
			add(f+".prefix", "prefix %q with host %q repeats routes[%d]: merge the two routes or change one", prefix, r.Host, j)
		} else {
			seen[k] = i
		}
		if needUpstream || r.Upstream != nil {
			if err := checkUpstream(r.Upstream); err != nil {
				add(f+".upstream", "%v", err)
			}
		}
		for _, p := range r.Permissions {
			if err := permission.Check(p); err != nil {
				add(f+".permissions", "%v: use e.g. memories:read or memories:*", err)
			}
		}
		if r.Query != "" {
			if _, err := permission.Parse(r.Query); err != nil {
				add(f+".query", "%q: %v", r.Query, err)
			}
		}
		for m, q := range r.Methods {
			if m != anyMethod && !validMethod(m) {
				add(f+".methods", "%q is not a request method: use an upper-case method such as GET or POST, or \"*\" for the others", m)
			}
			if q != "" {
				if _, err := permission.Parse(q); err != nil {
					add(f+".methods."+m, "%q: %v", q, err)
				}
			}
		}
		if r.RequireRole != "" && keyward.ValidateRequiredRole(r.RequireRole) != nil {
			add(f+".require_role", "%q is neither root, account_admin, user nor a role name (a lowercase letter, then lowercase letters, digits, '_' or '-')", r.RequireRole)
		}
		for j, name := range r.Limits {
			if err := (keyward.RateLimit{Name: name, Limit: 1, Window: keyward.Duration(time.Second)}).Validate(); err != nil {
				add(f+".limits", "%q is not a rate limit name: use 1 to %d letters, digits, '_', '.' or '-', e.g. per-minute", name, keyward.MaxRateLimitName)
			} else if slices.Contains(r.Limits[:j], name) {
				add(f+".limits", "%q is named twice: name each limit once", name)
			}
		}
		if r.Cost < 0 || r.Cost > keyward.MaxVerificationCost {
			add(f+".cost", "%d is out of range: use 1 to %d (0 or omitted means 1)", r.Cost, int64(keyward.MaxVerificationCost))
		}
		if r.Environment != "" {
			if err := keyward.ValidateEnvironment("environment", r.Environment); err != nil {
				add(f+".environment", "%s", keyward.ErrorMessage(err))
			}
		}
		for _, p := range r.Exempt {
			if !strings.HasPrefix(p, "/") || !canonicalPath(p) || !plainPath(p) {
				add(f+".exempt", "%q is not a canonical path: start with / and use no . or .. segments, repeated slashes, ';', '\\', '%%XX' or control characters, e.g. /docs", p)
			}
		}
		if r.StampField != "" && (strings.TrimSpace(r.StampField) != r.StampField || strings.ContainsFunc(r.StampField, isSpaceOrControl)) {
			add(f+".stamp_field", "%q is not a JSON field name: use a plain name such as created_by", r.StampField)
		}
		switch r.StampValue {
		case "", StampKey, StampUser, StampSubject:
			if r.StampValue != "" && r.StampField == "" {
				add(f+".stamp_value", "%q needs stamp_field: name the JSON field to set, e.g. created_by", r.StampValue)
			}
		default:
			add(f+".stamp_value", "%q is not one of key, user, subject", r.StampValue)
		}
	}
	names := cfg.Headers
	names.fill()
	used := map[string]string{}
	for _, h := range names.list() {
		if !httpedge.ValidHeaderName(*h.name) {
			add("headers."+h.field, "%q is not a header name: use letters, digits and '-', e.g. X-Keyward-User", *h.name)
			continue
		}
		k := foldName(*h.name)
		if other, dup := used[k]; dup {
			add("headers."+h.field, "%q is also the %s header: give each identity header its own name", *h.name, other)
		}
		used[k] = h.field
		for _, c := range credentialHeaders {
			if foldName(c) == k {
				add("headers."+h.field, "%q is a credential header: pick another name", *h.name)
			}
		}
	}
	if err := httpedge.CheckAgentHeaders(cfg.AgentHeaders); err != nil {
		add("agent_headers", "%s", keyward.ErrorMessage(err))
	}
	if strings.ContainsFunc(cfg.Challenge, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		add("challenge", "holds control characters: build it with httpedge.Challenge")
	}
	for i, p := range cfg.TrustedProxies {
		if !p.IsValid() {
			add(fmt.Sprintf("trusted_proxies[%d]", i), "is not a CIDR prefix: use e.g. 10.0.0.0/8 or 127.0.0.1/32")
		}
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"dial_timeout", cfg.DialTimeout}, {"tls_handshake_timeout", cfg.TLSHandshakeTimeout},
		{"response_header_timeout", cfg.ResponseHeaderTimeout}, {"idle_conn_timeout", cfg.IdleConnTimeout},
		{"read_header_timeout", cfg.ReadHeaderTimeout}, {"idle_timeout", cfg.IdleTimeout},
	} {
		if d.v < 0 {
			add(d.field, "%s is negative: use a positive duration, or 0 for the default", d.v)
		}
	}
	if cfg.MaxHeaderBytes < 0 {
		add("max_header_bytes", "%d is negative: use a positive size, or 0 for the default %d", cfg.MaxHeaderBytes, DefaultMaxHeaderBytes)
	}
	if cfg.ForwardAuthPath != "" && (!strings.HasPrefix(cfg.ForwardAuthPath, "/") || !canonicalPath(cfg.ForwardAuthPath)) {
		add("forward_auth_path", "%q is not a canonical path: use e.g. %s", cfg.ForwardAuthPath, httpedge.ForwardAuthPath)
	}
	if len(errs) > 0 {
		return &ConfigError{Errors: errs}
	}
	return nil
}

// withDefaults returns cfg with every zero value replaced by its default.
func withDefaults(cfg Config) Config {
	cfg.Headers.fill()
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&cfg.DialTimeout, DefaultDialTimeout}, {&cfg.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout},
		{&cfg.ResponseHeaderTimeout, DefaultResponseHeaderTimeout}, {&cfg.IdleConnTimeout, DefaultIdleConnTimeout},
		{&cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout}, {&cfg.IdleTimeout, DefaultIdleTimeout},
	} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if cfg.MaxHeaderBytes == 0 {
		cfg.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.ForwardAuthPath == "" {
		cfg.ForwardAuthPath = httpedge.ForwardAuthPath
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Logger = cfg.Logger.With("component", "gateway")
	return cfg
}

func (h *HeaderNames) fill() {
	d := DefaultHeaderNames()
	dl := d.list()
	for i, f := range h.list() {
		if *f.name == "" {
			*f.name = *dl[i].name
		}
	}
}

// checkUpstream checks an upstream URL.
func checkUpstream(u *url.URL) error {
	switch {
	case u == nil:
		return fmt.Errorf("is required: the URL requests are sent to, e.g. http://127.0.0.1:9000")
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q must start with http:// or https://, e.g. http://127.0.0.1:9000", u.Redacted())
	case u.Host == "":
		return fmt.Errorf("%q has no host: use e.g. http://127.0.0.1:9000", u.Redacted())
	case u.User != nil:
		return fmt.Errorf("%q carries credentials: remove user:password@ (identity reaches the upstream in headers)", u.Redacted())
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("%q has a query or fragment: use scheme, host and an optional base path only", u.Redacted())
	}
	return nil
}

// cleanPrefix returns p without a trailing slash ("/" stays), after
// checking it is a canonical absolute path.
func cleanPrefix(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("must start with /, e.g. /api")
	}
	if !canonicalPath(p) || !plainPath(p) {
		return "", fmt.Errorf("is not canonical: use no . or .. segments, repeated slashes, ';', '\\', '%%XX' or control characters, e.g. /api")
	}
	if len(p) > 1 {
		p = strings.TrimSuffix(p, "/")
	}
	return p, nil
}

// plainPath reports whether p, a decoded path from the configuration, is
// one parsePath can give: valid UTF-8 without ';', '\', a "%XX" escape or
// a control character.
func plainPath(p string) bool {
	return utf8.ValidString(p) && !hasEscape(p) && !strings.ContainsFunc(p, func(r rune) bool {
		return r == ';' || r == '\\' || r < 0x20 || r == 0x7f
	})
}

// caseConflict returns the index and prefix of a case-insensitive route
// that routes[i], a case-sensitive route, lies under ignoring case (same
// host, or the other has none), or -1. Without the rule /API/ADMIN would
// take the route of /api (case-insensitive) past the one of /api/admin.
// Two prefixes equal ignoring case count as nested.
func caseConflict(routes []Route, i int) (int, string) {
	r := routes[i]
	if r.CaseInsensitive {
		return -1, ""
	}
	p, _ := cleanPrefix(r.PathPrefix)
	for j, o := range routes {
		if j == i || !o.CaseInsensitive || (hostKey(o.Host) != "" && hostKey(o.Host) != hostKey(r.Host)) {
			continue
		}
		op, err := cleanPrefix(o.PathPrefix)
		if err == nil && matchPrefix(op, p, true) {
			return j, o.PathPrefix
		}
	}
	return -1, ""
}

// hostKey is the form of a host that routes compare: lower case, no port.
func hostKey(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			return h[:i+1]
		}
		return h
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.Count(h, ":") == 1 {
		h = h[:i]
	}
	return strings.TrimSuffix(h, ".")
}

func isSpaceOrControl(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r < 0x20 || r == 0x7f
}
