package httpapi

import (
	"net/http"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/httpedge"
)

// ProblemContentType is the media type of every error response (RFC 9457).
const ProblemContentType = keyward.ProblemContentType

// writeError renders err as problem+json (package httpedge) and logs what
// the client does not see: the cause of internal and unavailable errors.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	// Logs name the route pattern, not the path: a path may hold anything
	// a client typed, a raw key included; so may an error's message.
	p := httpedge.ProblemOf(err, r.URL.Path)
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
	s.writeProblem(w, p)
}

// writeProblem writes p with its status and the refusal headers, the
// server's challenge on a 401.
func (s *Server) writeProblem(w http.ResponseWriter, p *keyward.Problem) {
	httpedge.SetRefusalHeaders(w.Header(), p.Status, s.challenge, nil)
	httpedge.WriteProblem(w, p)
}
