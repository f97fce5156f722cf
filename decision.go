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
	// DecisionWrongEnvironment: the key is valid but of another
	// environment than the one the verification required (a test key
	// on a live route).
	DecisionWrongEnvironment Decision = "WRONG_ENVIRONMENT"
	DecisionRateLimited      Decision = "RATE_LIMITED"
	DecisionUsageExceeded    Decision = "USAGE_EXCEEDED"
	DecisionUnavailable      Decision = "UNAVAILABLE"
)

// Decisions lists every decision code, for metrics and documentation.
var Decisions = []Decision{
	DecisionValid, DecisionMalformed, DecisionNotFound, DecisionDisabled,
	DecisionRevoked, DecisionExpired, DecisionIPBlocked, DecisionIPNotAllowed,
	DecisionInsufficientPermissions, DecisionWrongEnvironment, DecisionRateLimited,
	DecisionUsageExceeded, DecisionUnavailable,
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

// Refusals of a key, by decision. A key that was sent but refused always
// gets the same message: the client never learns which check failed (the
// log does).
var (
	errInvalidKey              = Errorf(EUNAUTHORIZED, "invalid API key")
	errAuthUnavailable         = Errorf(EUNAVAILABLE, "API keys cannot be checked right now: try again shortly")
	errRateLimited             = Errorf(ERATELIMITED, "rate limit exceeded: slow down")
	errUsageExceeded           = Errorf(ERATELIMITED, "usage quota exhausted")
	errIPRefused               = Errorf(EFORBIDDEN, "requests from this address are not allowed")
	errInsufficientPermissions = Errorf(EFORBIDDEN, "the API key lacks the required permissions")
	errWrongEnvironment        = Errorf(EFORBIDDEN, "the API key is for another environment: use a key of this service's environment")
)

// Refusal returns the client-facing error for a key refused with decision
// d: EUNAUTHORIZED "invalid API key" for every decision about the
// credential itself, EFORBIDDEN for permissions, environment and IP rules, ERATELIMITED
// for limits and EUNAVAILABLE when the key could not be checked; EINTERNAL
// for VALID or a decision keyward does not define. Every service that
// protects requests with keyward (the API, the gateway, forward-auth, the
// middleware) answers through it, so their refusals match.
func (d Decision) Refusal() *Error {
	switch {
	case d.Unauthenticated():
		return errInvalidKey
	case d == DecisionUnavailable:
		return errAuthUnavailable
	case d == DecisionRateLimited:
		return errRateLimited
	case d == DecisionUsageExceeded:
		return errUsageExceeded
	case d == DecisionIPBlocked, d == DecisionIPNotAllowed:
		return errIPRefused
	case d == DecisionInsufficientPermissions:
		return errInsufficientPermissions
	case d == DecisionWrongEnvironment:
		return errWrongEnvironment
	}
	return Errorf(EINTERNAL, "unexpected decision %q", d)
}
