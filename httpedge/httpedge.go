// Package httpedge is what every keyward HTTP surface says the same way:
// refusals as RFC 9457 problem+json with the status and title of the
// domain's error table, the challenge on a 401, Retry-After on a 503 and
// the RateLimit fields on a 429; and the agent a request names. The API
// (httpapi), the gateway and forward-auth (gateway) and the Go middleware
// (middleware) answer through it, so a client cannot tell them apart; the
// client address they share is package clientaddr. It depends on the
// standard library and keyward's light packages only, so the Go SDK may
// import it.
package httpedge

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/permission"
	"github.com/keyward/keyward/ratelimit"
)

// ForwardAuthPath is where forward-auth answers, on the keyward server
// and by default on the gateway: the endpoint reverse proxies call to
// authenticate a request.
const ForwardAuthPath = "/v1/forward-auth"

// internalDetail replaces the message of an internal error: its cause is
// for the log, never for the client.
const internalDetail = "internal error: the cause has been logged"

// ProblemOf returns the problem for err at instance (the request path):
// the code, status and title of err's keyward error code (EINTERNAL for
// any other error), its client-safe message as the detail, a generic
// detail for internal errors. A client may put a raw key where an id
// belongs (a path, a filter, a body field): detail and instance are
// redacted, so it is never echoed. A permission query that does not parse
// (EQUERY) gets the position of the problem.
func ProblemOf(err error, instance string) *keyward.Problem {
	code := keyward.ErrorCode(err)
	if keyward.ProblemTitle(code) == "" {
		code = keyward.EINTERNAL
	}
	detail := keyward.ErrorMessage(err)
	if code == keyward.EINTERNAL {
		detail = internalDetail
	}
	p := keyward.NewProblem(code, apikey.Redact(detail), apikey.Redact(instance))
	var se *permission.SyntaxError
	if code == keyward.EQUERY && errors.As(err, &se) {
		p.Position = se.Pos
	}
	return p
}

// SetRefusalHeaders sets the headers every refusal with status needs:
// Cache-Control: no-store; challenge as WWW-Authenticate on a 401 (the
// default keyward.WWWAuthenticate when empty); the RateLimit fields of
// limits on a 429 (and Retry-After when a limit refused: when credits
// refill is not known here); Retry-After: 1 on a 503.
func SetRefusalHeaders(h http.Header, status int, challenge string, limits []keyward.RateLimitStatus) {
	h.Set("Cache-Control", "no-store")
	switch status {
	case http.StatusUnauthorized:
		if challenge == "" {
			challenge = keyward.WWWAuthenticate
		}
		h.Set("WWW-Authenticate", challenge)
	case http.StatusTooManyRequests:
		ratelimit.SetStatusHeaders(h, limits)
	case http.StatusServiceUnavailable:
		h.Set("Retry-After", "1")
	}
}

// WriteProblem writes p as the body of a response with its status:
// Content-Type, Content-Length and X-Content-Type-Options: nosniff. The
// refusal headers are SetRefusalHeaders's job.
func WriteProblem(w http.ResponseWriter, p *keyward.Problem) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // "<key>" reads better than "\u003ckey\u003e"
	enc.Encode(p)            // a Problem always encodes
	h := w.Header()
	h.Set("Content-Type", keyward.ProblemContentType)
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	w.Write(b.Bytes())
}

// WriteError renders err as a refusal of r in the API's shape (see
// ProblemOf and SetRefusalHeaders), with challenge on a 401 and the state
// of limits on a 429; a *LimitRefusal in err names its level as
// limit_level. It logs nothing: the caller logs what the client must not
// see.
func WriteError(w http.ResponseWriter, r *http.Request, err error, challenge string, limits []keyward.RateLimitStatus) {
	p := ProblemOf(err, r.URL.Path)
	if lr, ok := errors.AsType[*LimitRefusal](err); ok {
		p.LimitLevel = lr.Level
	}
	SetRefusalHeaders(w.Header(), p.Status, challenge, limits)
	WriteProblem(w, p)
}

// LimitRefusal is the refusal Err (a 429) of a key refused by the rate
// limits or credits of Level (keyward.VerifyResult.LimitLevel): the key's
// own, or those its user's or account's keys all share.
type LimitRefusal struct {
	Err   error
	Level keyward.LimitLevel
}

func (e *LimitRefusal) Error() string { return e.Err.Error() }

// Unwrap returns Err, so the refusal's code and message are Err's.
func (e *LimitRefusal) Unwrap() error { return e.Err }

// ErrBadAgent refuses a request whose agent header is not printable text
// of at most keyward.MaxAgentLen bytes, or is sent more than once.
var ErrBadAgent = keyward.Errorf(keyward.EINVALID, "%s must be printable text of at most %d bytes", keyward.HeaderAgent, keyward.MaxAgentLen)

// errAgentConflict refuses a request that names two different agents in
// keyward.HeaderAgent and an alias.
var errAgentConflict = keyward.Errorf(keyward.EINVALID, "the agent headers name different agents: send the agent in one header")

// Agent returns the agent h names in keyward.HeaderAgent or in one of
// aliases (X-OpenViking-Agent, say: services that move to keyward keep
// their clients' header), trimmed: printable text of at most
// keyward.MaxAgentLen bytes, each header sent at most once (ErrBadAgent
// otherwise). Several of these headers must name the same agent (EINVALID
// otherwise). It returns "" when none is named. Check aliases with
// CheckAgentHeaders.
func Agent(h http.Header, aliases ...string) (string, error) {
	agent, err := agentIn(h, keyward.HeaderAgent)
	if err != nil {
		return "", err
	}
	for _, name := range aliases {
		a, err := agentIn(h, name)
		switch {
		case err != nil:
			return "", err
		case a == "":
		case agent == "":
			agent = a
		case a != agent:
			return "", errAgentConflict
		}
	}
	return agent, nil
}

// agentIn returns the agent in header name of h.
func agentIn(h http.Header, name string) (string, error) {
	vs := h.Values(name)
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", ErrBadAgent
	}
	a := strings.TrimSpace(vs[0])
	if len(a) > keyward.MaxAgentLen || !utf8.ValidString(a) || strings.ContainsFunc(a, unicode.IsControl) {
		return "", ErrBadAgent
	}
	return a, nil
}

// CheckAgentHeaders checks the names of agent header aliases: header names
// (letters, digits, '-' and '_') other than keyward.HeaderAgent itself and
// the credential headers, each given once. It returns EINVALID naming the
// first bad one.
func CheckAgentHeaders(names []string) error {
	for i, n := range names {
		switch {
		case !ValidHeaderName(n):
			return keyward.Errorf(keyward.EINVALID, "agent header %q is not a header name: use letters, digits and '-', e.g. X-OpenViking-Agent", n)
		case strings.EqualFold(n, keyward.HeaderAgent):
			return keyward.Errorf(keyward.EINVALID, "agent header %s is always read: list only other names", n)
		case strings.EqualFold(n, apikey.HeaderAuthorization) || strings.EqualFold(n, apikey.HeaderAPIKey):
			return keyward.Errorf(keyward.EINVALID, "agent header %q is a credential header: pick another name", n)
		}
		for _, m := range names[:i] {
			if strings.EqualFold(n, m) {
				return keyward.Errorf(keyward.EINVALID, "agent header %q is listed twice: list it once", n)
			}
		}
	}
	return nil
}

// ValidHeaderName reports whether s is a header name keyward accepts in
// its configuration: letters, digits, '-' and '_'.
func ValidHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Default challenge parts: keyward.WWWAuthenticate is
// Challenge(DefaultScheme, DefaultRealm).
const (
	DefaultScheme = "Bearer"
	DefaultRealm  = "keyward"
)

// maxRealmLen bounds a realm.
const maxRealmLen = 100

// Challenge returns the WWW-Authenticate value of a 401 for scheme and
// realm: `Bearer realm="keyward"` (the default, keyward.WWWAuthenticate),
// or `ApiKey realm="memories"` for services whose clients expect that
// scheme. Empty parts take the defaults. The scheme must be an HTTP token
// (RFC 9110: letters, digits and !#$%&'*+-.^_`|~); the realm printable
// ASCII of at most 100 characters without '"' or '\'. It returns EINVALID
// otherwise. The challenge only names the scheme: keys are still read
// from Authorization: Bearer and X-API-Key.
func Challenge(scheme, realm string) (string, error) {
	if scheme == "" {
		scheme = DefaultScheme
	}
	if realm == "" {
		realm = DefaultRealm
	}
	if !isToken(scheme) {
		return "", keyward.Errorf(keyward.EINVALID, "scheme %q is not an HTTP authentication scheme: use a single word such as Bearer or ApiKey", scheme)
	}
	if len(realm) > maxRealmLen || strings.ContainsFunc(realm, func(r rune) bool { return r < 0x20 || r > 0x7e || r == '"' || r == '\\' }) {
		return "", keyward.Errorf(keyward.EINVALID, "realm must be printable ASCII of at most %d characters without '\"' or '\\', e.g. keyward", maxRealmLen)
	}
	return scheme + ` realm="` + realm + `"`, nil
}

// isToken reports whether s is an HTTP token (RFC 9110, section 5.6.2).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// maxRequestInfoLen bounds the User-Agent and request id RequestInfo keeps:
// enough for either, not a way to fill the audit log.
const maxRequestInfoLen = 200

// RequestInfo returns what the audit log records of r, whose client is
// client (package clientaddr; invalid for none): the address, and the
// User-Agent and X-Request-Id headers, each cut to 200 bytes.
func RequestInfo(r *http.Request, client netip.Addr) keyward.RequestInfo {
	ri := keyward.RequestInfo{UserAgent: cut(r.UserAgent()), RequestID: cut(r.Header.Get("X-Request-Id"))}
	if client.IsValid() {
		ri.IP = client.String()
	}
	return ri
}

func cut(s string) string {
	if len(s) > maxRequestInfoLen {
		return s[:maxRequestInfoLen]
	}
	return s
}
