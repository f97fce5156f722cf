package httpapi

import (
	"net/http"
	"strconv"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// ProblemContentType is the media type of every error response (RFC 9457).
const ProblemContentType = "application/problem+json"

// codeInfo is one row of the error table.
type codeInfo struct {
	status int
	title  string
}

// errorTable maps every keyward error code to its HTTP status and title. It
// is the only place where codes meet statuses; the client inverts it.
var errorTable = map[string]codeInfo{
	keyward.EINVALID:      {http.StatusBadRequest, "Invalid request"},
	keyward.EUNAUTHORIZED: {http.StatusUnauthorized, "Unauthorized"},
	keyward.EFORBIDDEN:    {http.StatusForbidden, "Forbidden"},
	keyward.ENOTFOUND:     {http.StatusNotFound, "Not found"},
	keyward.ECONFLICT:     {http.StatusConflict, "Conflict"},
	keyward.ETOOLARGE:     {http.StatusRequestEntityTooLarge, "Request too large"},
	keyward.ERATELIMITED:  {http.StatusTooManyRequests, "Rate limited"},
	keyward.EUNAVAILABLE:  {http.StatusServiceUnavailable, "Unavailable"},
	keyward.EINTERNAL:     {http.StatusInternalServerError, "Internal error"},
	// A provider of external credentials failed or timed out: the
	// detail names it.
	keyward.EUPSTREAM:        {http.StatusBadGateway, "Provider error"},
	keyward.EUPSTREAMTIMEOUT: {http.StatusGatewayTimeout, "Provider timeout"},
}

// StatusOf returns the HTTP status for an error code; unknown codes are
// internal errors.
func StatusOf(code string) int {
	if info, ok := errorTable[code]; ok {
		return info.status
	}
	return http.StatusInternalServerError
}

// problemOf builds the problem for err. Internal errors get a generic
// detail: their cause is for the log, never for the client.
func problemOf(err error, instance string) *keyward.Problem {
	code := keyward.ErrorCode(err)
	info, ok := errorTable[code]
	if !ok {
		code, info = keyward.EINTERNAL, errorTable[keyward.EINTERNAL]
	}
	detail := keyward.ErrorMessage(err)
	if code == keyward.EINTERNAL {
		detail = "internal error: the cause has been logged"
	}
	// A client may put a raw key where an id belongs (a path, a filter,
	// a body field): it is never echoed.
	return &keyward.Problem{
		Type:     keyward.ProblemTypePrefix + code,
		Title:    info.title,
		Status:   info.status,
		Detail:   apikey.Redact(detail),
		Code:     code,
		Instance: apikey.Redact(instance),
	}
}

// writeError renders err as problem+json and logs what the client does not
// see: the cause of internal and unavailable errors.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	// Logs name the route pattern, not the path: a path may hold anything
	// a client typed, a raw key included; so may an error's message.
	p := problemOf(err, r.URL.Path)
	cause := apikey.Redact(err.Error())
	switch p.Code {
	case keyward.EINTERNAL:
		s.log.ErrorContext(r.Context(), "internal error", "route", r.Pattern, "err", cause)
	case keyward.EUNAVAILABLE:
		s.log.WarnContext(r.Context(), "unavailable", "route", r.Pattern, "err", cause)
	case keyward.EUPSTREAM, keyward.EUPSTREAMTIMEOUT:
		s.log.WarnContext(r.Context(), "a credential provider failed", "route", r.Pattern, "err", cause)
	default:
		s.log.DebugContext(r.Context(), "request refused", "route", r.Pattern, "code", p.Code, "err", cause)
	}
	writeProblem(w, p)
}

// WriteError renders err as problem+json in the API's shape: the status and
// title of its keyward error code, its client-safe message as the detail
// (a generic one for internal errors), the request path as the instance,
// WWW-Authenticate on a 401 and Retry-After on a 503. It logs nothing: the
// caller logs what the client must not see. Services that answer for
// keyward outside this package (the gateway, forward-auth) use it so every
// refusal looks the same.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	writeProblem(w, problemOf(err, r.URL.Path))
}

// writeProblem writes p with its status, and the challenge on a 401.
func writeProblem(w http.ResponseWriter, p *keyward.Problem) {
	h := w.Header()
	if p.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", keyward.WWWAuthenticate)
	}
	if p.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", strconv.Itoa(1))
	}
	h.Set("Cache-Control", "no-store")
	writeBody(w, p.Status, ProblemContentType, p) // a Problem always encodes
}
