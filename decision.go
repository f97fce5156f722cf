package keyward

// Decision is the outcome of verifying a key. Its string form is the stable
// code returned by the API.
type Decision string

// Decision codes.
const (
	DecisionValid                   Decision = "VALID"
	DecisionMalformed               Decision = "MALFORMED"
	DecisionNotFound                Decision = "NOT_FOUND"
	DecisionDisabled                Decision = "DISABLED"
	DecisionRevoked                 Decision = "REVOKED"
	DecisionExpired                 Decision = "EXPIRED"
	DecisionIPBlocked               Decision = "IP_BLOCKED"
	DecisionIPNotAllowed            Decision = "IP_NOT_ALLOWED"
	DecisionInsufficientPermissions Decision = "INSUFFICIENT_PERMISSIONS"
	DecisionRateLimited             Decision = "RATE_LIMITED"
	DecisionUsageExceeded           Decision = "USAGE_EXCEEDED"
	DecisionUnavailable             Decision = "UNAVAILABLE"
)

// Decisions lists every decision code, for metrics and documentation.
var Decisions = []Decision{
	DecisionValid, DecisionMalformed, DecisionNotFound, DecisionDisabled,
	DecisionRevoked, DecisionExpired, DecisionIPBlocked, DecisionIPNotAllowed,
	DecisionInsufficientPermissions, DecisionRateLimited, DecisionUsageExceeded,
	DecisionUnavailable,
}

// Valid reports whether d lets the request through.
func (d Decision) Valid() bool { return d == DecisionValid }

// Unauthenticated reports whether d means the credential itself was not
// accepted (HTTP 401), as opposed to an accepted key that may not do this
// (403), a limit (429) or an outage (503).
func (d Decision) Unauthenticated() bool {
	switch d {
	case DecisionMalformed, DecisionNotFound, DecisionDisabled, DecisionRevoked, DecisionExpired:
		return true
	}
	return false
}
