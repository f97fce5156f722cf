package middleware

import (
	"context"
	"net/http"
	"slices"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/permission"
)

// stateKey is the context key of what New passes to the handlers behind
// it.
type stateKey struct{}

type state struct {
	result    *keyward.VerifyResult
	write     ErrorWriter
	challenge string
}

// ResultFrom returns the verification result of the request's key (its
// meta, expiry, permissions), or nil when the request did not pass through
// New with a valid key. Read-only.
func ResultFrom(ctx context.Context) *keyward.VerifyResult {
	if s, _ := ctx.Value(stateKey{}).(*state); s != nil {
		return s.result
	}
	return nil
}

// RequirePermissions returns middleware for one route that lets a request
// through only when the identity New put in its context holds every one of
// perms (a root key holds all; a held wildcard covers them, as
// HasPermissions says). A request without an identity (an exempt path, or
// no New in front) gets 401; one whose key lacks a permission gets 403.
// Refusals go through New's ErrorWriter.
//
//	mux.Handle("DELETE /notes/{id}", middleware.RequirePermissions("notes:delete")(deleteNote))
func RequirePermissions(perms ...string) func(http.Handler) http.Handler {
	perms = slices.Clone(perms)
	return require(func(id *keyward.Identity) bool { return HasPermissions(id, perms...) })
}

// RequireQuery is RequirePermissions with a permission query
// ("notes:read AND (search:run OR admin:*)"), parsed once: it panics if q
// does not parse, naming the position.
//
//	mux.Handle("GET /search", middleware.RequireQuery("notes:read AND search:run")(search))
func RequireQuery(q string) func(http.Handler) http.Handler {
	query := mustParse(q)
	return require(func(id *keyward.Identity) bool {
		return id.Role == keyward.RoleRoot || query.Eval(permission.NewSet(id.Permissions))
	})
}

// require returns middleware that lets a request through when its
// identity passes allowed; see RequirePermissions.
func require(allowed func(*keyward.Identity) bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			write, challenge := ErrorWriter(WriteProblem), WWWAuthenticate
			if s, _ := r.Context().Value(stateKey{}).(*state); s != nil {
				write, challenge = s.write, s.challenge
			}
			id := keyward.IdentityFrom(r.Context())
			switch {
			case id == nil:
				writeDenial(w, r, write, challenge, refusal(apikey.ErrNoCredential))
			case !allowed(id):
				d := refusal(keyward.DecisionInsufficientPermissions.Refusal())
				d.Decision, d.KeyID = keyward.DecisionInsufficientPermissions, id.KeyID
				writeDenial(w, r, write, challenge, d)
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
}

// mustParse parses a query given by code, panicking with the position of
// a syntax error: a wiring bug.
func mustParse(q string) *permission.Query {
	parsed, err := permission.Parse(q)
	if err != nil {
		panic("middleware: " + err.Error())
	}
	return parsed
}

// HasPermissions reports whether id holds every one of perms: one of its
// permissions covers each ("notes:*" covers "notes:read", see package
// permission). A root identity holds all permissions; a nil one none.
func HasPermissions(id *keyward.Identity, perms ...string) bool {
	if id == nil {
		return false
	}
	return id.Role == keyward.RoleRoot || permission.HoldsAll(id.Permissions, perms)
}
