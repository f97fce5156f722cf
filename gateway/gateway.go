// Package gateway protects HTTP services with keyward keys, two ways.
//
// A Gateway is a reverse proxy: it routes each request by path prefix (and
// optional host) to an upstream, verifies the request's key with a
// keyward.KeyVerifier (the in-process verify.Engine, a remote keyward
// through client.Client, or a simple-mode verifier) for the route's
// permissions, and forwards it with the key's identity in headers
// (X-Keyward-Key-Id, -Account, -User, -Role, -Agent, -Permissions).
//
// A ForwardAuth answers the authentication subrequests of a reverse proxy
// that already fronts the service: nginx auth_request, Traefik ForwardAuth,
// Caddy forward_auth, Envoy ext_authz (HTTP). It reads the credential and
// the original URI from the forwarded headers and answers 200 with the
// identity headers, or a refusal.
//
// Both remove identity headers sent by the client before anything else,
// check one canonical form of the request path and refuse (400) paths an
// upstream could read as another one (see Route), never read a key from
// the query string, believe X-Forwarded-For only from trusted proxies, and
// refuse in the keyward API's problem+json shape: 401
// with WWW-Authenticate, 403, 429 or 503 (no decision could be made). A
// refused request never reaches the upstream.
//
// A route may name the key's rate limits its requests count against and a
// cost per request (Route.Limits, Route.Cost). A request over a limit, or
// beyond the key's credits, is refused with 429; every response for a key
// with limits carries the IETF RateLimit-Policy and RateLimit fields, and a
// refusal by a limit Retry-After.
package gateway

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/clientaddr"
	"github.com/keyward/keyward/httpedge"
	"github.com/keyward/keyward/ratelimit"
	"github.com/keyward/keyward/tracing"
	"go.opentelemetry.io/otel/trace"
)

// Gateway is an authenticating reverse proxy; it is an http.Handler. Serve
// it with the limits of its Config through Server.
type Gateway struct {
	cfg         Config
	auth        *authenticator
	routes      *router
	credentials headerSet
	transport   http.RoundTripper
	buffers     *bufferPool
	log         *slog.Logger
	tracer      trace.Tracer // nil: tracing is off
}

var (
	_ http.Handler = (*Gateway)(nil)
	_ http.Handler = (*ForwardAuth)(nil)
)

// New returns a Gateway for cfg, or a *ConfigError naming each invalid
// field.
func New(cfg Config) (*Gateway, error) {
	if err := Validate(cfg, true); err != nil {
		return nil, err
	}
	cfg = withDefaults(cfg)
	g := &Gateway{
		cfg:         cfg,
		auth:        newAuthenticator(cfg),
		routes:      newRouter(cfg.Routes),
		credentials: newHeaderSet(credentialHeaders...),
		transport:   cfg.Transport,
		buffers:     newBufferPool(),
		log:         cfg.Logger,
		tracer:      tracing.Tracer(cfg.TracerProvider),
	}
	if g.transport == nil {
		g.transport = newTransport(cfg)
	}
	g.transport = tracing.Transport(g.tracer, spanUpstream, g.transport)
	errorLog := slog.NewLogLogger(g.log.Handler(), slog.LevelWarn)
	for _, r := range g.routes.all() {
		r.proxy = &httputil.ReverseProxy{
			Rewrite:       g.rewrite(r),
			Transport:     g.transport,
			FlushInterval: cfg.FlushInterval,
			BufferPool:    g.buffers,
			ErrorLog:      errorLog,
			ErrorHandler:  g.proxyError(r),
		}
	}
	return g, nil
}

func newAuthenticator(cfg Config) *authenticator {
	return &authenticator{
		verifier:  cfg.Verifier,
		anonymous: cfg.Anonymous,
		ids:       newIdentityHeaders(cfg.Headers, cfg.AgentHeaders),
		trusted:   slices.Clone(cfg.TrustedProxies),
		challenge: cfg.Challenge,
		aliases:   slices.Clone(cfg.AgentHeaders),
		log:       cfg.Logger,
	}
}

// newTransport is the default upstream transport: bounded dial, TLS and
// response-header waits, no proxy from the environment (the upstream is
// named explicitly), and a pool large enough for a busy gateway.
func newTransport(cfg Config) *http.Transport {
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       cfg.IdleConnTimeout,
		TLSHandshakeTimeout:   cfg.TLSHandshakeTimeout,
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
	}
}

// Server returns an http.Server for g on addr with its header limits and
// timeouts. It has no read or write timeout: streamed responses and
// websockets may last.
func (g *Gateway) Server(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           g,
		ReadHeaderTimeout: g.cfg.ReadHeaderTimeout,
		IdleTimeout:       g.cfg.IdleTimeout,
		MaxHeaderBytes:    g.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
}

// Close closes idle upstream connections.
func (g *Gateway) Close() {
	if t, ok := g.transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}

// spanUpstream names the client span of a call to an upstream.
const spanUpstream = "gateway upstream"

// ServeHTTP authenticates r and proxies it to its route's upstream, in a
// server span when tracing.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g.tracer == nil {
		g.serve(w, r)
		return
	}
	r, span := tracing.StartServer(g.tracer, r)
	sw := &statusWriter{ResponseWriter: w}
	defer func() { tracing.EndServer(span, sw.status) }()
	g.serve(sw, r)
}

// serve is ServeHTTP without its span.
func (g *Gateway) serve(w http.ResponseWriter, r *http.Request) {
	// The agent is read before the identity headers go: the client names
	// it in X-Keyward-Agent (or an alias), which is also an identity
	// header. A malformed one is refused below, unless the path is exempt.
	agent, agentErr := httpedge.Agent(r.Header, g.auth.aliases...)
	g.auth.ids.strip.remove(r.Header)
	pathOverrides.remove(r.Header)

	if !canonicalMethod(r.Method) {
		g.auth.refuse(w, r, nil, errMethodCase)
		return
	}
	p, err := parsePath(r.URL.EscapedPath())
	if err != nil {
		g.auth.refuse(w, r, nil, err)
		return
	}
	rt, err := g.routes.resolve(r.Host, p)
	if err != nil {
		g.auth.refuse(w, r, nil, err)
		return
	}
	if rt == nil {
		g.auth.refuse(w, r, nil, errNoRoute)
		return
	}
	if g.tracer != nil {
		tracing.SetRoute(trace.SpanFromContext(r.Context()), "gateway "+rt.name)
	}
	// The upstream gets the path the rules checked, in its one escaped
	// form (EscapedPath gives RawPath: it is valid and decodes to Path).
	r.URL.Path, r.URL.RawPath = p.path, p.raw
	if rt.exempt[p.path] {
		g.forward(w, r, rt)
		return
	}
	if agentErr != nil {
		g.auth.refuse(w, r, nil, agentErr)
		return
	}
	ip := clientaddr.FromRequest(r, g.auth.trusted)
	id, limits, err := g.auth.verify(r.Context(), r.Header, rt, r.Method, agent, ip)
	if err != nil {
		g.auth.refuse(w, r, limits, err)
		return
	}
	// The limits' state goes to the client with the upstream's response:
	// the upstream's own fields of these names, if any, are added after
	// ours (both are structured-field Lists).
	ratelimit.SetStatusHeaders(w.Header(), limits)
	g.auth.ids.set(r.Header, id, false)
	if rt.StampField != "" {
		value, err := stampValue(rt.StampValue, id)
		if err == nil {
			err = stamp(r, rt.StampField, value, g.stampLimit())
		}
		if err != nil {
			g.auth.refuse(w, r, nil, err)
			return
		}
	}
	g.forward(w, r, rt)
}

// pathOverrides are headers with which IIS URL Rewrite, Symfony, Zend
// and others replace the request path: an upstream honouring them would
// serve a path the route rules never saw, so they never reach it.
var pathOverrides = newHeaderSet("X-Original-URL", "X-Rewrite-URL")

// forward sends r upstream through rt, without its credentials unless
// configured, and with its body bounded.
func (g *Gateway) forward(w http.ResponseWriter, r *http.Request, rt *route) {
	if !g.cfg.ForwardCredentials {
		g.credentials.remove(r.Header)
	}
	if max := g.cfg.MaxBodyBytes; max > 0 && r.Body != nil && r.Body != http.NoBody {
		if r.ContentLength > max {
			g.auth.refuse(w, r, nil, errBodyTooLarge(max))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, max)
	}
	rt.proxy.ServeHTTP(w, r)
}

func (g *Gateway) stampLimit() int64 {
	if g.cfg.MaxBodyBytes > 0 {
		return g.cfg.MaxBodyBytes
	}
	return DefaultMaxBodyBytes
}

func errBodyTooLarge(max int64) error {
	return keyward.Errorf(keyward.ETOOLARGE, "request body is larger than %d bytes", max)
}

// rewrite returns the Rewrite of rt's proxy.
func (g *Gateway) rewrite(rt *route) func(*httputil.ProxyRequest) {
	return func(pr *httputil.ProxyRequest) {
		pr.SetURL(rt.Upstream)
		in, out := pr.In, pr.Out
		// Hop-by-hop removal (a client may list any header in
		// Connection) ran before Rewrite: put the identity back.
		g.auth.ids.copy(out.Header, in.Header)

		// X-Forwarded-*: the chain a trusted proxy sent plus the peer;
		// from anyone else, only the peer.
		peer := clientaddr.Parse(in.RemoteAddr)
		trusted := clientaddr.Trusted(peer, g.auth.trusted)
		xff := ""
		if trusted {
			xff = strings.Join(in.Header["X-Forwarded-For"], ", ")
		} else {
			out.Header.Del("Forwarded")
			out.Header.Del("X-Real-Ip")
		}
		if peer.IsValid() {
			if xff != "" {
				xff += ", "
			}
			xff += peer.String()
		}
		if xff != "" {
			out.Header.Set("X-Forwarded-For", xff)
		}
		host, proto := in.Host, "http"
		if in.TLS != nil {
			proto = "https"
		}
		if trusted {
			if v := in.Header.Get("X-Forwarded-Host"); v != "" {
				host = v
			}
			if v := in.Header.Get("X-Forwarded-Proto"); v == "http" || v == "https" {
				proto = v
			}
		}
		out.Header.Set("X-Forwarded-Host", host)
		out.Header.Set("X-Forwarded-Proto", proto)
	}
}

// proxyError answers when the upstream cannot be reached or the request
// body cannot be sent.
func (g *Gateway) proxyError(rt *route) func(http.ResponseWriter, *http.Request, error) {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			g.auth.refuse(w, r, nil, errBodyTooLarge(tooLarge.Limit))
		case r.Context().Err() != nil:
			// The client went away; nobody reads an answer.
			g.log.DebugContext(r.Context(), "client gone before the upstream answered", "route", rt.name)
		default:
			g.log.WarnContext(r.Context(), "upstream failed", "route", rt.name, "upstream", rt.Upstream.Redacted(), "err", err)
			g.auth.refuse(w, r, nil, errUpstream)
		}
	}
}

// statusWriter records the status of a traced response. Unwrap lets the
// proxy reach the connection's Flush and Hijack (upgrades).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// bufferPool lends the 32 KiB copy buffers of a gateway's proxies.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any {
		buf := make([]byte, 32<<10)
		return &buf
	}}}
}

// Get implements httputil.BufferPool.
func (b *bufferPool) Get() []byte { return *b.p.Get().(*[]byte) }

// Put implements httputil.BufferPool.
func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }
