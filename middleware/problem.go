package middleware

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/ratelimit"
)

// ProblemContentType is the media type of refusals written by WriteProblem
// (RFC 9457), as on the keyward server.
const ProblemContentType = "application/problem+json"

// WWWAuthenticate is the challenge sent with every 401.
const WWWAuthenticate = keyward.WWWAuthenticate

// Denial is a refused request, handed to the ErrorWriter.
type Denial struct {
	// Status is the HTTP status: 400, 401, 403, 429 or 503.
	Status int
	// Code is the keyward error code of Status (keyward.EUNAUTHORIZED,
	// ...), the "code" of the problem.
	Code string
	// Detail says what went wrong without saying which check failed; it is
	// safe to show to the client.
	Detail string
	// Decision is the verifier's decision; empty when none was made (no
	// key, or the verifier failed).
	Decision keyward.Decision
	// KeyID names the key presented, when the verifier found it. For logs.
	KeyID string
	// Err is why no decision could be made (a 503). For logs, never for
	// the client.
	Err error
	// RateLimits is the state of the key's rate limits on a 429, from
	// which the RateLimit-Policy, RateLimit and Retry-After fields are
	// set before the ErrorWriter is called.
	RateLimits []keyward.RateLimitStatus
}

// ErrorWriter writes a refusal. The status, body and any other header are
// its job; see WithErrorWriter.
type ErrorWriter func(w http.ResponseWriter, r *http.Request, d *Denial)

// WriteProblem is the default ErrorWriter: d as application/problem+json
// in the shape of the keyward API's own errors
// ({"type":"urn:keyward:error:unauthorized","title":"Unauthorized","status":401,"detail":"invalid API key","code":"unauthorized",...}),
// which the client package turns back into a *keyward.Error.
func WriteProblem(w http.ResponseWriter, r *http.Request, d *Denial) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // "<key>" reads better than "\u003ckey\u003e"
	enc.Encode(keyward.Problem{
		Type:     keyward.ProblemTypePrefix + d.Code,
		Title:    title(d),
		Status:   d.Status,
		Detail:   d.Detail,
		Code:     d.Code,
		Instance: r.URL.Path,
	})
	w.Header().Set("Content-Type", ProblemContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(d.Status)
	w.Write(b.Bytes())
}

// writeDenial sets the headers every refusal needs, then calls write.
func writeDenial(w http.ResponseWriter, r *http.Request, write ErrorWriter, d *Denial) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	switch d.Status {
	case http.StatusUnauthorized:
		h.Set("WWW-Authenticate", WWWAuthenticate)
	case http.StatusTooManyRequests:
		// Retry-After only when a limit refused: when credits refill is
		// not known here.
		ratelimit.SetStatusHeaders(h, d.RateLimits)
	case http.StatusServiceUnavailable:
		h.Set("Retry-After", "1")
	}
	write(w, r, d)
}

// titles are the keyward API's problem titles, one per code.
var titles = map[string]string{
	keyward.EINVALID:      "Invalid request",
	keyward.EUNAUTHORIZED: "Unauthorized",
	keyward.EFORBIDDEN:    "Forbidden",
	keyward.ERATELIMITED:  "Rate limited",
	keyward.EUNAVAILABLE:  "Unavailable",
}

func title(d *Denial) string {
	if t, ok := titles[d.Code]; ok {
		return t
	}
	return http.StatusText(d.Status)
}
