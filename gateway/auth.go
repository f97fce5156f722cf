package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/httpedge"
)

// Refusals of the gateway itself; refused keys answer with
// keyward.Decision.Refusal so every keyward service refuses alike.
var (
	errNoRoute  = keyward.Errorf(keyward.ENOTFOUND, "no route for this path")
	errUpstream = keyward.Errorf(keyward.EUNAVAILABLE, "the upstream service did not answer: try again shortly")
	errMethod   = keyward.Errorf(keyward.EFORBIDDEN, "this route admits no request of this method")
)

// anyMethod is the key of Route.Methods for the methods it does not list.
const anyMethod = "*"

// authenticator verifies the credential of a request; the gateway and the
// forward-auth handler share it.
type authenticator struct {
	verifier  keyward.KeyVerifier
	anonymous bool // see Config.Anonymous
	ids       *identityHeaders
	trusted   []netip.Prefix
	challenge string   // see Config.Challenge
	aliases   []string // see Config.AgentHeaders
	log       *slog.Logger
}

// verify checks the credential in h for the permissions, query and role
// rt (nil: none) needs of a request of method, on behalf of agent at ip,
// counting against the route's rate limits with its cost; a method rt
// does not admit is refused at once (403). It returns the identity of a valid key, or the client-facing
// error: 401 for no or a refused credential, 403, 429, or 503 when no
// decision could be made (the verifier failed, or answered UNAVAILABLE);
// and in both cases the state of the rate limits the request counted
// against, for the RateLimit headers (see setLimitHeaders).
func (a *authenticator) verify(ctx context.Context, h http.Header, rt *route, method, agent string, ip netip.Addr) (*keyward.Identity, []keyward.RateLimitStatus, error) {
	name := "(none)"
	var req keyward.VerifyRequest
	if rt != nil {
		name = rt.name
		q, ok := rt.query(method)
		if !ok {
			a.log.DebugContext(ctx, "request refused", "route", name, "reason", "method not admitted", "method", method)
			return nil, nil, errMethod
		}
		req = keyward.VerifyRequest{Permissions: rt.Permissions, Query: q, RequireRole: rt.RequireRole, Limits: rt.Limits, Cost: rt.Cost, Environment: rt.Environment}
	}
	raw, err := apikey.FromHeaders(h)
	if err != nil && !(a.anonymous && err == apikey.ErrNoCredential) {
		a.log.DebugContext(ctx, "request refused", "route", name, "reason", keyward.ErrorMessage(err))
		return nil, nil, err
	}
	req.Key, req.Agent = raw, agent
	if ip.IsValid() {
		req.IP = ip.String()
	}
	res, err := a.verifier.VerifyKey(ctx, req)
	switch {
	case err != nil:
		a.log.WarnContext(ctx, "key verification failed", "route", name, "err", err)
		return nil, nil, keyward.DecisionUnavailable.Refusal()
	case res == nil || res.Valid != (res.Code == keyward.DecisionValid) || res.Valid && res.Identity == nil:
		a.log.ErrorContext(ctx, "verifier returned an inconsistent result", "route", name)
		return nil, nil, keyward.DecisionUnavailable.Refusal()
	case !res.Valid:
		a.log.DebugContext(ctx, "request refused", "route", name, "decision", res.Code, "key_id", res.KeyID, "agent", agent, "ip", req.IP)
		if res.LimitLevel != "" {
			return nil, res.RateLimits, &httpedge.LimitRefusal{Err: res.Code.Refusal(), Level: res.LimitLevel}
		}
		return nil, res.RateLimits, res.Code.Refusal()
	case req.Environment != "" && res.Environment != req.Environment:
		// A verifier that does not know environments answered VALID.
		a.log.DebugContext(ctx, "request refused", "route", name, "decision", keyward.DecisionWrongEnvironment, "key_id", res.KeyID, "environment", res.Environment, "agent", agent, "ip", req.IP)
		return nil, res.RateLimits, keyward.DecisionWrongEnvironment.Refusal()
	}
	id := *res.Identity
	if id.KeyID == "" {
		id.KeyID = res.KeyID
	}
	if res.Permissions != nil {
		id.Permissions = res.Permissions
	}
	id.Agent = agent
	return &id, res.RateLimits, nil
}

// refuse writes err, the refusal of r, in the keyward API's shape
// (httpedge.WriteError), with the RateLimit headers of limits on a 429
// (Retry-After too when a limit refused; a request refused for its credits
// gets none, since when they refill is not known here) and the level that
// refused. It logs nothing: verify logged what the client must not see.
func (a *authenticator) refuse(w http.ResponseWriter, r *http.Request, limits []keyward.RateLimitStatus, err error) {
	httpedge.WriteError(w, r, err, a.challenge, limits)
}

// route is a Route ready for matching.
type route struct {
	Route
	prefix string
	host   string
	name   string // for logs: host + prefix
	exempt map[string]bool
	// queries is the query of each method of Methods (anyMethod
	// included), joined with Query; nil without Methods.
	queries map[string]string
	proxy   http.Handler // set by New
}

// query returns the permission query a request of method needs on r, and
// false when r does not admit the method (see Route.Methods).
func (r *route) query(method string) (string, bool) {
	if r.queries == nil {
		return r.Query, true
	}
	q, ok := r.queries[method]
	if !ok && method == http.MethodHead {
		q, ok = r.queries[http.MethodGet]
	}
	if !ok {
		q, ok = r.queries[anyMethod]
	}
	return q, ok
}

// andQuery returns the query of a AND b, either alone when the other is
// empty.
func andQuery(a, b string) string {
	if a == "" || b == "" {
		return a + b
	}
	return "(" + a + ") AND (" + b + ")"
}

// router finds the route of a request: the longest matching prefix among
// the routes of the request's host, else among the routes without a host.
type router struct {
	byHost map[string][]*route // longest prefix first
	any    []*route
}

func newRouter(routes []Route) *router {
	rt := &router{byHost: map[string][]*route{}}
	for _, r := range routes {
		p, _ := cleanPrefix(r.PathPrefix) // checked by Validate
		x := &route{Route: r, prefix: p, host: hostKey(r.Host), exempt: map[string]bool{}}
		x.name = x.host + x.prefix
		for _, e := range r.Exempt {
			x.exempt[e] = true
		}
		if r.Methods != nil {
			x.queries = make(map[string]string, len(r.Methods))
			for m, q := range r.Methods {
				x.queries[m] = andQuery(r.Query, q)
			}
		}
		if x.host == "" {
			rt.any = append(rt.any, x)
		} else {
			rt.byHost[x.host] = append(rt.byHost[x.host], x)
		}
	}
	longestFirst := func(a, b *route) int { return len(b.prefix) - len(a.prefix) }
	slices.SortStableFunc(rt.any, longestFirst)
	for _, rs := range rt.byHost {
		slices.SortStableFunc(rs, longestFirst)
	}
	return rt
}

func (rt *router) all() []*route {
	out := slices.Clone(rt.any)
	for _, rs := range rt.byHost {
		out = append(out, rs...)
	}
	return out
}

// resolve returns the route for host and p, or nil. A path holding ';'
// or '\' is refused unless its route opts in to them and every way an
// upstream could read it (see reqPath.variants) is canonical and has the
// same route: otherwise "/admin;x" could pass by the rules of "/" and
// reach an upstream that serves /admin.
func (rt *router) resolve(host string, p reqPath) (*route, error) {
	r := rt.match(host, p.path)
	if !p.semicolon && !p.backslash {
		return r, nil
	}
	if r == nil || p.semicolon && !r.AllowSemicolon || p.backslash && !r.AllowBackslash {
		return nil, errPathSplit
	}
	for _, v := range p.variants() {
		if !canonicalPath(v) {
			return nil, errPathNotClean
		}
		if rt.match(host, v) != r {
			return nil, errPathSplit
		}
	}
	return r, nil
}

// match returns the route for host and path, or nil.
func (rt *router) match(host, path string) *route {
	if len(rt.byHost) > 0 {
		for _, r := range rt.byHost[hostKey(host)] {
			if r.matches(path) {
				return r
			}
		}
	}
	for _, r := range rt.any {
		if r.matches(path) {
			return r
		}
	}
	return nil
}

// matches reports whether path is r's prefix or below it, ignoring case
// if r is case-insensitive.
func (r *route) matches(path string) bool {
	return matchPrefix(r.prefix, path, r.CaseInsensitive)
}

// matchPrefix reports whether path is prefix or below it, ignoring case
// with fold.
func matchPrefix(prefix, path string, fold bool) bool {
	if prefix == "/" {
		return true
	}
	n, ok := len(prefix), strings.HasPrefix(path, prefix)
	if !ok && fold {
		n, ok = hasPrefixFold(path, prefix)
	}
	return ok && (len(path) == n || path[n] == '/')
}
