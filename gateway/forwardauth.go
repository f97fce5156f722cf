package gateway

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/clientaddr"
	"github.com/keyward/keyward/httpedge"
	"github.com/keyward/keyward/ratelimit"
)

// Headers a proxy names the original request with.
const (
	HeaderForwardedMethod = "X-Forwarded-Method" // Traefik, Caddy
	HeaderOriginalMethod  = "X-Original-Method"  // nginx configurations, ingress-nginx
	HeaderForwardedURI    = "X-Forwarded-Uri"    // Traefik, Caddy
	HeaderOriginalURI     = "X-Original-URI"     // nginx auth_request configurations
	HeaderOriginalURL     = "X-Original-URL"     // ingress-nginx: an absolute URL
	HeaderForwardedHost   = "X-Forwarded-Host"   // Traefik, Caddy
)

var (
	errURIConflict = keyward.Errorf(keyward.EINVALID, "the original URI headers (X-Forwarded-Uri, X-Original-URI, X-Original-URL) and the path below the forward-auth endpoint disagree or repeat: the proxy must name one path")
	errBadURI      = keyward.Errorf(keyward.EINVALID, "the original URI is not a valid request URI")
	errNoURI       = keyward.Errorf(keyward.EINVALID, "no original URI: the proxy must send X-Forwarded-Uri or X-Original-URI (routes with permissions depend on it)")
	errBadMethod   = keyward.Errorf(keyward.EINVALID, "the original method headers (X-Forwarded-Method, X-Original-Method) disagree, repeat or name no upper-case method: the proxy must name one method")
	errNoMethod    = keyward.Errorf(keyward.EINVALID, "no original method: the proxy must send X-Forwarded-Method or X-Original-Method (this route's permissions depend on it)")
)

// ForwardAuth answers authentication subrequests of reverse proxies (nginx
// auth_request, Traefik ForwardAuth, Caddy forward_auth, Envoy ext_authz
// HTTP) for any method, reading no body. It is an http.Handler.
//
// The credential is the forwarded request's Authorization: Bearer or
// X-API-Key header. The original path comes from X-Forwarded-Uri,
// X-Original-URI or X-Original-URL, or from the request path below
// Config.ForwardAuthPath (Envoy); when several are sent they must agree.
// It is checked in the gateway's canonical form, and refused (400) where
// the gateway would refuse it. Its route (path prefix, and
// X-Forwarded-Host from a trusted proxy, else Host) gives the permissions,
// query and role required and the exempt paths; a route with per-method
// queries (Route.Methods) needs the original method, from
// X-Forwarded-Method or X-Original-Method (400 without it when the proxy
// names the URI in headers; Envoy's own method otherwise). Without a matching route a valid key is
// enough. The client address is the peer's X-Forwarded-For only when the
// peer is a trusted proxy.
//
// A valid key answers 200 with every identity header, empty when it does
// not apply, so a proxy that copies them overwrites what the client sent;
// an exempt path answers 200 with them all empty. Refusals are the API's
// problem+json: 401 with WWW-Authenticate, 403, 429, 503.
//
// The rate limits a request counts against and its cost come from its
// route (Route.Limits, Route.Cost), like its permissions, and never from
// the subrequest's query or headers: proxies pass the client's headers on
// (Traefik) or append the client's URI to the subrequest's (Envoy), so a
// client could name a cheaper cost or a limit its key lacks. The 200 and
// a 429 carry RateLimit-Policy and RateLimit (a 429 by a limit also
// Retry-After) for a key with limits; configure the proxy to copy them to
// the client (Traefik authResponseHeaders, nginx auth_request_set).
type ForwardAuth struct {
	auth   *authenticator
	routes *router
	mount  string
}

// NewForwardAuth returns the forward-auth handler for cfg; routes need no
// upstream. It returns a *ConfigError naming each invalid field.
func NewForwardAuth(cfg Config) (*ForwardAuth, error) {
	if err := Validate(cfg, false); err != nil {
		return nil, err
	}
	cfg = withDefaults(cfg)
	return &ForwardAuth{auth: newAuthenticator(cfg), routes: newRouter(cfg.Routes), mount: cfg.ForwardAuthPath}, nil
}

// ServeHTTP authenticates the request r was sent for.
func (f *ForwardAuth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	p, named, err := f.originalPath(r)
	if err != nil {
		f.auth.refuse(w, r, nil, err)
		return
	}
	var rt *route
	if named {
		// The original host picks host routes; like X-Forwarded-For it is
		// believed only from a trusted proxy, else a client could name the
		// host of a more lenient route through a proxy that passes the
		// header on.
		host := r.Host
		if clientaddr.PeerTrusted(r.RemoteAddr, f.auth.trusted) {
			if fh := firstValue(r.Header.Get(HeaderForwardedHost)); fh != "" {
				host = fh
			}
		}
		if rt, err = f.routes.resolve(host, p); err != nil {
			f.auth.refuse(w, r, nil, err)
			return
		}
	} else if len(f.routes.any)+len(f.routes.byHost) > 0 {
		f.auth.refuse(w, r, nil, errNoURI)
		return
	}
	if rt != nil && rt.exempt[p.path] {
		f.auth.ids.set(h, nil, true)
		w.WriteHeader(http.StatusOK)
		return
	}
	agent, err := httpedge.Agent(r.Header, f.auth.aliases...)
	if err != nil {
		f.auth.refuse(w, r, nil, err)
		return
	}
	// Only a route with per-method queries depends on the method.
	var method string
	if rt != nil && rt.queries != nil {
		if method, err = originalMethod(r); err == nil && method == "" {
			err = errNoMethod
		}
		if err != nil {
			f.auth.refuse(w, r, nil, err)
			return
		}
	}
	ip := clientaddr.FromRequest(r, f.auth.trusted)
	id, limits, err := f.auth.verify(r.Context(), r.Header, rt, method, agent, ip)
	if err != nil {
		f.auth.refuse(w, r, limits, err)
		return
	}
	ratelimit.SetStatusHeaders(h, limits)
	f.auth.ids.set(h, id, true)
	w.WriteHeader(http.StatusOK)
}

// originalPath returns the path of the original request in canonical
// form (see parsePath), and whether the proxy named one. The URI headers
// must agree with each other, and with the path below the mount point
// when there is one: a proxy that appends the original path (Envoy) may
// pass a client's X-Original-URI on, and preferring either would let the
// client pick the path that is checked.
func (f *ForwardAuth) originalPath(r *http.Request) (reqPath, bool, error) {
	var uri string
	n := 0
	for _, name := range [...]string{HeaderForwardedURI, HeaderOriginalURI, HeaderOriginalURL} {
		vs := r.Header[http.CanonicalHeaderKey(name)]
		if len(vs) > 1 {
			return reqPath{}, false, errURIConflict
		}
		if len(vs) == 0 {
			continue
		}
		v := vs[0]
		if name == HeaderOriginalURL {
			u, err := url.Parse(v)
			if err != nil || !u.IsAbs() {
				return reqPath{}, false, errBadURI
			}
			v = u.RequestURI()
		}
		if n > 0 && v != uri {
			return reqPath{}, false, errURIConflict
		}
		uri, n = v, n+1
	}
	// Envoy ext_authz appends the original path to the mount point.
	var below reqPath
	rest, hasBelow := strings.CutPrefix(r.URL.EscapedPath(), f.mount+"/")
	if hasBelow {
		var err error
		if below, err = parsePath("/" + rest); err != nil {
			return reqPath{}, false, err
		}
	}
	if n == 0 {
		return below, hasBelow, nil
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil || u.Path == "" || u.Path[0] != '/' {
		return reqPath{}, false, errBadURI
	}
	p, err := parsePath(u.EscapedPath())
	if err != nil {
		return reqPath{}, false, err
	}
	if hasBelow && below.raw != p.raw {
		return reqPath{}, false, errURIConflict
	}
	return p, true, nil
}

// originalMethod returns the method of the original request: the one the
// method headers name (they must agree), else the subrequest's own when
// the proxy sends the original request itself (Envoy ext_authz: no
// original URI headers), else "" (unknown: nginx's auth_request, say,
// always sends GET).
func originalMethod(r *http.Request) (string, error) {
	var m string
	for _, name := range [...]string{HeaderForwardedMethod, HeaderOriginalMethod} {
		vs := r.Header[http.CanonicalHeaderKey(name)]
		if len(vs) > 1 || len(vs) == 1 && (!validMethod(vs[0]) || m != "" && vs[0] != m) {
			return "", errBadMethod
		}
		if len(vs) == 1 {
			m = vs[0]
		}
	}
	if m != "" {
		return m, nil
	}
	for _, name := range [...]string{HeaderForwardedURI, HeaderOriginalURI, HeaderOriginalURL} {
		if r.Header.Get(name) != "" {
			return "", nil
		}
	}
	return r.Method, nil
}

// firstValue returns the first element of a comma-separated header value.
func firstValue(v string) string {
	v, _, _ = strings.Cut(v, ",")
	return strings.TrimSpace(v)
}
