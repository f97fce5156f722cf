package middleware

import (
	"net/http"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/httpedge"
)

// ProblemContentType is the media type of refusals written by WriteProblem
// (RFC 9457), as on the keyward server.
const ProblemContentType = keyward.ProblemContentType

// WWWAuthenticate is the default challenge sent with every 401.
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
	// MissingPermissions and MissingRole, with
	// INSUFFICIENT_PERMISSIONS from the verifier, say what the key lacks
	// (keyward.VerifyResult). WriteProblem does not show them: an
	// ErrorWriter may.
	MissingPermissions []string
	MissingRole        keyward.Role
	// Err is why no decision could be made (a 503). For logs, never for
	// the client.
	Err error
	// RateLimits is the state of the key's rate limits on a 429, from
	// which the RateLimit-Policy, RateLimit and Retry-After fields are
	// set before the ErrorWriter is called.
	RateLimits []keyward.RateLimitStatus
	// LimitLevel, on a 429, names the level whose rate limits or credits
	// refused the request: key, user or account (shared by all the keys
	// of the user or account). WriteProblem shows it as limit_level.
	LimitLevel keyward.LimitLevel
}

// ErrorWriter writes a refusal. The status, body and any other header are
// its job; see WithErrorWriter.
type ErrorWriter func(w http.ResponseWriter, r *http.Request, d *Denial)

// WriteProblem is the default ErrorWriter: d as application/problem+json
// in the shape of the keyward API's own errors
// ({"type":"urn:keyward:error:unauthorized","title":"Unauthorized","status":401,"detail":"invalid API key","code":"unauthorized",...}),
// which the client package turns back into a *keyward.Error.
func WriteProblem(w http.ResponseWriter, r *http.Request, d *Denial) {
	p := keyward.NewProblem(d.Code, d.Detail, apikey.Redact(r.URL.Path))
	p.Status = d.Status
	if p.Code != d.Code {
		// A code keyward does not define, from a custom Denial.
		p.Type, p.Title, p.Code = keyward.ProblemTypePrefix+d.Code, http.StatusText(d.Status), d.Code
	}
	p.LimitLevel = d.LimitLevel
	httpedge.WriteProblem(w, p)
}

// writeDenial sets the headers every refusal needs (httpedge), challenge
// on a 401, then calls write.
func writeDenial(w http.ResponseWriter, r *http.Request, write ErrorWriter, challenge string, d *Denial) {
	httpedge.SetRefusalHeaders(w.Header(), d.Status, challenge, d.RateLimits)
	write(w, r, d)
}

// denialOf returns the Denial of a refused result: its status and
// client-safe detail are keyward.Decision.Refusal's, as on the keyward
// server.
func denialOf(res *keyward.VerifyResult) *Denial {
	e := res.Code.Refusal()
	if res.Valid || e.Code == keyward.EINTERNAL {
		// An unknown code, or VALID with valid false: fail closed.
		d := unavailable(keyward.Errorf(keyward.EINTERNAL, "the verifier answered code %q with valid=%t", res.Code, res.Valid))
		d.Decision, d.KeyID = res.Code, res.KeyID
		return d
	}
	d := refusal(e)
	d.Decision, d.KeyID = res.Code, res.KeyID
	d.MissingPermissions, d.MissingRole = res.MissingPermissions, res.MissingRole
	if d.Status == http.StatusTooManyRequests {
		d.RateLimits, d.LimitLevel = res.RateLimits, res.LimitLevel
	}
	return d
}

// unavailable is the refusal of a request whose key could not be checked.
func unavailable(err error) *Denial {
	d := refusal(keyward.DecisionUnavailable.Refusal())
	d.Err = err
	return d
}

// refusal returns the Denial of err, a client-safe *keyward.Error: the
// status of its code (the domain's error table) and its message as the
// detail.
func refusal(err error) *Denial {
	code := keyward.ErrorCode(err)
	return &Denial{Status: keyward.HTTPStatus(code), Code: code, Detail: keyward.ErrorMessage(err)}
}
