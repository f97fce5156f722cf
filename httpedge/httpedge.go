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
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
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
// redacted, so it is never echoed.
func ProblemOf(err error, instance string) *keyward.Problem {
	code := keyward.ErrorCode(err)
	if keyward.ProblemTitle(code) == "" {
		code = keyward.EINTERNAL
	}
	detail := keyward.ErrorMessage(err)
	if code == keyward.EINTERNAL {
		detail = internalDetail
	}
	return keyward.NewProblem(code, apikey.Redact(detail), apikey.Redact(instance))
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
// of limits on a 429. It logs nothing: the caller logs what the client
// must not see.
func WriteError(w http.ResponseWriter, r *http.Request, err error, challenge string, limits []keyward.RateLimitStatus) {
	p := ProblemOf(err, r.URL.Path)
	SetRefusalHeaders(w.Header(), p.Status, challenge, limits)
	WriteProblem(w, p)
}

// ErrBadAgent refuses a request whose agent header is not printable text
// of at most keyward.MaxAgentLen bytes, or is sent more than once.
var ErrBadAgent = keyward.Errorf(keyward.EINVALID, "%s must be printable text of at most %d bytes", keyward.HeaderAgent, keyward.MaxAgentLen)

// Agent returns the agent h names in keyward.HeaderAgent, trimmed:
// printable text of at most keyward.MaxAgentLen bytes, sent at most once
// (ErrBadAgent otherwise); "" when none is named.
func Agent(h http.Header) (string, error) {
	vs := h.Values(keyward.HeaderAgent)
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
