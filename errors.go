// Package keyward holds the domain of the keyward API key service: accounts,
// users, keys, roles, identities, verification decisions, error codes and the
// storage contract. It imports only the standard library; every adapter
// (sqlite, httpapi, verify, ...) talks to the others through these types.
package keyward

import (
	"errors"
	"fmt"

	"github.com/keyward/keyward/permission"
)

// Error codes are stable strings shared by the API, the client and the CLI.
// Callers match on them with ErrorCode, never on message text.
const (
	EINVALID      = "invalid"
	EUNAUTHORIZED = "unauthorized"
	EFORBIDDEN    = "forbidden"
	ENOTFOUND     = "not_found"
	ECONFLICT     = "conflict"
	ETOOLARGE     = "too_large"
	ERATELIMITED  = "rate_limited"
	EUNAVAILABLE  = "unavailable"
	EINTERNAL     = "internal"
	// EUPSTREAM is a failure of another system keyward acts on (a
	// credential provider): unreachable, or an unexpected answer.
	EUPSTREAM = "upstream_error"
	// EUPSTREAMTIMEOUT is another system not answering in time.
	EUPSTREAMTIMEOUT = "upstream_timeout"
	// EQUERY is a permission query that does not parse; the problem
	// names the position (QueryError).
	EQUERY = "invalid_query"
)

// QueryError returns err, the failure of permission.Parse, as an EQUERY
// error whose message names the position; the *permission.SyntaxError
// stays in its chain, for the problem's position member.
func QueryError(err error) error {
	var se *permission.SyntaxError
	if !errors.As(err, &se) {
		return err
	}
	return &Error{Code: EQUERY, Message: se.Error(), Err: se}
}

// Error is a domain error: a stable code and a message safe to show to the
// caller. Anything not safe to show stays in the wrapped Err, which is logged
// but never sent to a client.
type Error struct {
	Code    string
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Message, e.Err)
	}
	return e.Message
}

// Unwrap returns the internal cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WrapError returns an *Error with code and message that keeps err as the
// internal cause: err is logged, the message is what the client sees.
func WrapError(code string, err error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for
// any other non-nil error and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of the first *Error in err's
// chain, or a generic message for any other error.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
