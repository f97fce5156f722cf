// Package middleware protects a Go net/http service with keyward API keys.
//
// New takes any keyward.KeyVerifier and returns the usual
// func(http.Handler) http.Handler, so it wraps a mux, a single route, or
// sits in any middleware chain (chi, alice, ...). Requests with a valid key
// reach the handler with the caller's identity in their context; all
// others are refused before the handler runs.
//
// The package imports only the standard library, the keyward root package,
// apikey (credential extraction) and ratelimit (the RateLimit header
// fields): no database driver, Redis or Prometheus.
//
// # Protecting a service with a remote keyward
//
// Give the service a key that may verify keys (root, or an account_admin
// key with the keys:verify permission, which verifies its own account's
// keys) and wrap its handler:
//
//	v := client.NewCachedVerifier(client.New("https://keyward.internal", verifierKey), client.CacheConfig{})
//	http.ListenAndServe(":8081", middleware.New(v)(mux))
//
// client.CachedVerifier keeps answers for a short TTL and collapses
// concurrent calls for the same key; see its documentation for the trade.
//
// # Verifying in process
//
// A program that embeds keyward's store verifies with the engine itself,
// without a network hop:
//
//	engine, err := verify.New(verify.Config{Store: store, Hasher: hasher})
//	handler := middleware.New(engine)(mux)
//
// # Reading the identity
//
// Handlers behind the middleware read the caller with keyward.IdentityFrom:
//
//	func listNotes(w http.ResponseWriter, r *http.Request) {
//		id := keyward.IdentityFrom(r.Context()) // never nil behind New, except on exempt paths
//		notes := store.NotesOf(id.AccountID, id.UserID)
//		...
//	}
//
// ResultFrom returns the whole verification result, with the key's meta.
//
// # Permissions
//
// WithPermissions sets permissions every request needs; RequirePermissions
// checks more for one route, with the identity New put in the context:
//
//	auth := middleware.New(v, middleware.WithPermissions("notes:read"))
//	mux.Handle("GET /notes", listNotes)
//	mux.Handle("POST /notes", middleware.RequirePermissions("notes:write")(createNote))
//	handler := auth(mux)
//
// A held wildcard covers a permission ("notes:*" covers "notes:write").
// WithQuery and RequireQuery take a permission query, parsed once,
// WithRole a least role (docs/permissions.md):
//
//	middleware.New(v, middleware.WithQuery("notes:read AND (search:run OR admin:*)"))
//	mux.Handle("GET /search", middleware.RequireQuery("search:run OR admin:*")(search))
//	middleware.New(v, middleware.WithRole(keyward.RoleAccountAdmin))
//
// # Environments
//
// WithEnvironment lets only keys of one environment through (a test key on
// a live service answers 403):
//
//	middleware.New(v, middleware.WithEnvironment("live"))
//
// # Exempt paths
//
// WithExempt lets some paths through without a key; "*" at the end makes a
// prefix:
//
//	middleware.New(v, middleware.WithExempt("/", "/healthz", "/static/*"))
//
// # Refusals
//
// Refusals are RFC 9457 problem+json in the keyward API's shape: 401 with
// WWW-Authenticate when the key is missing ("no API key: send it as ...")
// or not accepted ("invalid API key", whatever the reason), 403 when it
// lacks permissions, 429 for limits (with the IETF RateLimit-Policy and
// RateLimit fields, and Retry-After when a rate limit refused; responses to
// keys with rate limits carry the RateLimit fields too), 503 when the
// verifier cannot decide
// (keyward unreachable: the service fails closed). WithErrorWriter changes
// the format; WithLogger sets where the reasons go.
//
// # Replacing a service's own key checks
//
// WithChallenge sets the WWW-Authenticate of a 401 (`ApiKey
// realm="memories"`, built with httpedge.Challenge) and WithAgentHeaders
// reads the agent from the service's old header (X-OpenViking-Agent) too,
// so its clients keep working unchanged.
//
// # Behind a proxy
//
// The client IP sent to the verifier is the peer address; with
// WithTrustedProxies it is read from X-Forwarded-For when the peer is one of
// those proxies.
package middleware
