// Package httpapi serves keyward's HTTP API: the v1 admin routes for
// accounts, users and keys, key verification, whoami, health, readiness,
// Prometheus metrics, the OpenAPI 3.1 document and a docs page.
//
// Every authenticated route goes through one generic handler that
// authenticates the caller's key with the verification engine, decodes the
// body strictly, calls the service and maps errors through one table to RFC
// 9457 problem+json responses. Authorisation is the service's job (package
// admin): this package only establishes who the caller is.
package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/httpedge"
	"github.com/keyward/keyward/tracing"
	"github.com/keyward/keyward/verify"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// Services are what the API serves, by domain: the service interfaces of
// package keyward, acting for the identity in the context. admin.New
// returns them in process (admin.Services); client.Client implements every
// one over HTTP.
type Services struct {
	// Tenancy serves accounts and their users.
	Tenancy TenancyServices
	// Roles serves the named roles of accounts.
	Roles keyward.RoleService
	// Keys serves keys, credits, shared limits, imports and rotation
	// policies.
	Keys KeyServices
	// Credentials serves provider connections and their credentials.
	Credentials keyward.CredentialService
	// Webhooks serves webhook endpoints and their deliveries.
	Webhooks keyward.WebhookService
	// Audit serves the audit log and usage. If it also records refused
	// actions (AuditDenied, as admin.Audit does), every EFORBIDDEN answer
	// is recorded.
	Audit AuditServices
	// Abuse serves IP rules, anomalies and leak reports.
	Abuse AbuseServices
	// Portal serves portal sessions and the portal branding of accounts;
	// nil leaves their routes unregistered (404).
	Portal keyward.PortalService
}

// TenancyServices manage accounts and their users.
type TenancyServices interface {
	keyward.AccountService
	keyward.UserService
}

// KeyServices manage keys.
type KeyServices interface {
	keyward.KeyService
	keyward.CreditService
	keyward.MeterService
	keyward.KeyImportService
	keyward.RotationPolicyService
}

// AuditServices read the audit log and usage.
type AuditServices interface {
	keyward.AuditService
	keyward.UsageService
}

// AbuseServices manage IP rules, anomalies and leak reports.
type AbuseServices interface {
	keyward.IPRuleService
	keyward.AnomalyService
	keyward.LeakService
}

// Pinger reports whether storage is reachable; keyward.Store is one.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Config configures a Server.
type Config struct {
	// Services answer every /v1 route except authentication. Each is
	// required but Portal.
	Services Services
	// Engine authenticates the caller's key on every /v1 request.
	// Required.
	Engine *verify.Engine
	// Store is pinged by /readyz; nil means always ready.
	Store Pinger
	// Gatherer is exposed on /metrics. Nil: a private registry holding
	// only the HTTP metrics of this server.
	Gatherer prometheus.Gatherer
	// Registerer receives this server's HTTP request metrics. Nil: the
	// private registry used when Gatherer is nil, or none.
	Registerer prometheus.Registerer
	// ReadyTimeout bounds the store ping of /readyz; 0 means 2s.
	ReadyTimeout time.Duration
	// ForwardAuth, if set, answers /v1/forward-auth for every method, and
	// every path below it (Envoy ext_authz appends the original path): the
	// endpoint reverse proxies (nginx auth_request, Traefik ForwardAuth,
	// Caddy forward_auth, Envoy ext_authz) call to authenticate a request.
	// It authenticates the forwarded credential itself (gateway.ForwardAuth);
	// nil leaves the routes unregistered.
	ForwardAuth http.Handler
	// TrustedProxies are the proxies whose X-Forwarded-For names the
	// client (package clientaddr): the address the API's own
	// authentication checks against the IP rules and brute-force
	// blocking, and the audit log records. From any other peer the peer
	// is the client. Serve passes its trusted_proxies setting, which the
	// gateway and forward-auth use too.
	TrustedProxies []netip.Prefix
	// Challenge is the WWW-Authenticate value of every 401 (see
	// httpedge.Challenge); empty: keyward.WWWAuthenticate. Serve passes
	// its www_authenticate_scheme and _realm settings.
	Challenge string
	// PortalURL is the base of the end-user portal's links, such as
	// https://keys.example.com (serve's console.public_url); empty: the
	// address each request reached keyward at.
	PortalURL string
	// AgentHeaders are read as the agent besides X-Keyward-Agent (see
	// httpedge.Agent). Serve passes its agent_headers setting.
	AgentHeaders []string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Version is reported by /healthz and /readyz.
	Version string
	// TracerProvider traces every request with a server span named after
	// its route pattern (package tracing). Nil: no tracing.
	TracerProvider trace.TracerProvider
}

// ForwardAuthPath is where Config.ForwardAuth is mounted.
const ForwardAuthPath = httpedge.ForwardAuthPath

// Server is the keyward HTTP API; it is an http.Handler.
type Server struct {
	svc          Services
	engine       *verify.Engine
	store        Pinger
	readyTimeout time.Duration
	log          *slog.Logger
	version      string
	mux          *http.ServeMux
	routes       []string
	metrics      *httpMetrics
	docs         []byte
	trusted      []netip.Prefix
	challenge    string
	portalURL    string
	agentHeaders []string
	tracer       trace.Tracer // nil: tracing is off
}

// New returns a Server for cfg. It panics if a service or Engine is missing,
// an agent header cannot be one or the metrics cannot be registered: all
// are wiring bugs.
func New(cfg Config) *Server {
	sv := cfg.Services
	if sv.Tenancy == nil || sv.Roles == nil || sv.Keys == nil || sv.Credentials == nil || sv.Webhooks == nil || sv.Audit == nil || sv.Abuse == nil || cfg.Engine == nil {
		panic("httpapi: Config.Services (each of them) and Config.Engine are required")
	}
	if err := httpedge.CheckAgentHeaders(cfg.AgentHeaders); err != nil {
		panic("httpapi: Config.AgentHeaders: " + keyward.ErrorMessage(err))
	}
	s := &Server{
		svc:          cfg.Services,
		engine:       cfg.Engine,
		store:        cfg.Store,
		readyTimeout: cfg.ReadyTimeout,
		log:          cfg.Logger,
		version:      cfg.Version,
		mux:          http.NewServeMux(),
		trusted:      slices.Clone(cfg.TrustedProxies),
		challenge:    cfg.Challenge,
		portalURL:    cfg.PortalURL,
		agentHeaders: slices.Clone(cfg.AgentHeaders),
		tracer:       tracing.Tracer(cfg.TracerProvider),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("component", "httpapi")
	if s.readyTimeout <= 0 {
		s.readyTimeout = 2 * time.Second
	}
	gatherer, registerer := cfg.Gatherer, cfg.Registerer
	if gatherer == nil && registerer == nil {
		reg := prometheus.NewRegistry()
		gatherer, registerer = reg, reg
	} else if gatherer == nil {
		gatherer = prometheus.NewRegistry()
	}
	s.metrics = newHTTPMetrics(registerer)
	registerStorage(registerer, cfg.Store)
	s.addRoutes(gatherer, cfg.ForwardAuth)
	s.metrics.init(s.routes)
	docs, err := renderDocs(openapiJSON)
	if err != nil {
		panic(fmt.Sprintf("httpapi: embedded OpenAPI document: %v", err))
	}
	s.docs = docs
	return s
}

// Routes returns the registered route patterns ("GET /v1/keys/{id}"), in
// registration order. A pattern without a method ("/v1/forward-auth")
// answers every method.
func (s *Server) Routes() []string { return slices.Clone(s.routes) }

func (s *Server) handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h)
	s.routes = append(s.routes, pattern)
}

func (s *Server) addRoutes(gatherer prometheus.Gatherer, forwardAuth http.Handler) {
	// Accounts.
	s.handle("POST /v1/accounts", serveJSON(s, http.StatusCreated, s.createAccount))
	s.handle("GET /v1/accounts", serveJSON(s, http.StatusOK, s.listAccounts))
	s.handle("GET /v1/accounts/{id}", serveJSON(s, http.StatusOK, s.getAccount))
	s.handle("PATCH /v1/accounts/{id}", serveJSON(s, http.StatusOK, s.updateAccount))
	s.handle("DELETE /v1/accounts/{id}", serveJSON(s, http.StatusNoContent, s.deleteAccount))

	// Users.
	s.handle("POST /v1/accounts/{id}/users", serveJSON(s, http.StatusCreated, s.createUser))
	s.handle("GET /v1/accounts/{id}/users", serveJSON(s, http.StatusOK, s.listUsers))
	s.handle("GET /v1/accounts/{id}/users/lookup", serveJSON(s, http.StatusOK, s.lookupUser))
	s.handle("GET /v1/accounts/{id}/users/{uid}", serveJSON(s, http.StatusOK, s.getUser))
	s.handle("PATCH /v1/accounts/{id}/users/{uid}", serveJSON(s, http.StatusOK, s.updateUser))
	s.handle("DELETE /v1/accounts/{id}/users/{uid}", serveJSON(s, http.StatusNoContent, s.deleteUser))
	s.addRoleRoutes()
	if s.svc.Portal != nil {
		s.addPortalRoutes()
	}

	// Shared limits of accounts and users.
	s.handle("GET /v1/accounts/{id}/limits", serveJSON(s, http.StatusOK, s.getMeter))
	s.handle("PUT /v1/accounts/{id}/limits", serveJSON(s, http.StatusOK, s.setMeter))
	s.handle("DELETE /v1/accounts/{id}/limits", serveJSON(s, http.StatusNoContent, s.deleteMeter))
	s.handle("GET /v1/accounts/{id}/users/{uid}/limits", serveJSON(s, http.StatusOK, s.getMeter))
	s.handle("PUT /v1/accounts/{id}/users/{uid}/limits", serveJSON(s, http.StatusOK, s.setMeter))
	s.handle("DELETE /v1/accounts/{id}/users/{uid}/limits", serveJSON(s, http.StatusNoContent, s.deleteMeter))

	// Keys.
	s.handle("POST /v1/keys", serveJSON(s, http.StatusCreated, s.createKey))
	s.handle("GET /v1/keys", serveJSON(s, http.StatusOK, s.listKeys))
	s.handle("GET /v1/keys/{id}", serveJSON(s, http.StatusOK, s.getKey))
	s.handle("PATCH /v1/keys/{id}", serveJSON(s, http.StatusOK, s.updateKey))
	s.handle("DELETE /v1/keys/{id}", serveJSON(s, http.StatusNoContent, s.deleteKey))
	s.handle("POST /v1/keys/{id}/revoke", serveJSON(s, http.StatusOK, s.revokeKey))
	s.handle("POST /v1/keys/{id}/rotate", serveJSON(s, http.StatusCreated, s.rotateKey))
	s.handle("POST /v1/keys/{id}/disable", serveJSON(s, http.StatusOK, s.setKeyDisabled(true)))
	s.handle("POST /v1/keys/{id}/enable", serveJSON(s, http.StatusOK, s.setKeyDisabled(false)))
	s.handle("POST /v1/keys/verify", serveJSON(s, http.StatusOK, s.verifyKey))
	s.handle("POST /v1/keys/import", serveJSON(s, http.StatusOK, s.importKeys))
	s.handle("GET /v1/keys/{id}/credits", serveJSON(s, http.StatusOK, s.getCredits))
	s.handle("PUT /v1/keys/{id}/credits", serveJSON(s, http.StatusOK, s.setCredits))
	s.handle("DELETE /v1/keys/{id}/credits", serveJSON(s, http.StatusNoContent, s.deleteCredits))
	s.handle("POST /v1/keys/{id}/credits/top-up", serveJSON(s, http.StatusOK, s.topUpCredits))
	s.handle("GET /v1/whoami", serveJSON(s, http.StatusOK, s.whoami))
	s.handle("POST /v1/leaks", serveJSON(s, http.StatusOK, s.reportLeaks))

	// IP rules.
	s.handle("POST /v1/ip-rules", serveJSON(s, http.StatusCreated, s.createIPRule))
	s.handle("GET /v1/ip-rules", serveJSON(s, http.StatusOK, s.listIPRules))
	s.handle("DELETE /v1/ip-rules/{id}", serveJSON(s, http.StatusNoContent, s.deleteIPRule))
	s.handle("GET /v1/anomalies", serveJSON(s, http.StatusOK, s.listAnomalies))
	s.handle("GET /v1/audit", serveJSON(s, http.StatusOK, s.listAudit))
	s.handle("GET /v1/audit/verify", serveJSON(s, http.StatusOK, s.verifyAudit))
	s.handle("GET /v1/audit/head", serveJSON(s, http.StatusOK, s.auditHead))
	s.handle("GET /v1/usage", serveJSON(s, http.StatusOK, s.usage))

	// Webhooks.
	s.handle("POST /v1/webhooks", serveJSON(s, http.StatusCreated, s.createWebhook))
	s.handle("GET /v1/webhooks", serveJSON(s, http.StatusOK, s.listWebhooks))
	s.handle("GET /v1/webhooks/{id}", serveJSON(s, http.StatusOK, s.getWebhook))
	s.handle("PATCH /v1/webhooks/{id}", serveJSON(s, http.StatusOK, s.updateWebhook))
	s.handle("DELETE /v1/webhooks/{id}", serveJSON(s, http.StatusNoContent, s.deleteWebhook))
	s.handle("POST /v1/webhooks/{id}/rotate-secret", serveJSON(s, http.StatusOK, s.rotateWebhookSecret))
	s.handle("GET /v1/webhooks/{id}/deliveries", serveJSON(s, http.StatusOK, s.listWebhookDeliveries))
	s.handle("POST /v1/webhooks/{id}/deliveries/{event_id}/retry", serveJSON(s, http.StatusOK, s.retryWebhookDelivery))

	// Provider connections and the external credentials managed through
	// them.
	s.handle("POST /v1/providers", serveJSON(s, http.StatusCreated, s.addProvider))
	s.handle("GET /v1/providers", serveJSON(s, http.StatusOK, s.listProviders))
	s.handle("GET /v1/providers/{id}", serveJSON(s, http.StatusOK, s.getProvider))
	s.handle("PATCH /v1/providers/{id}", serveJSON(s, http.StatusOK, s.updateProvider))
	s.handle("DELETE /v1/providers/{id}", serveJSON(s, http.StatusNoContent, s.removeProvider))
	s.handle("POST /v1/providers/{id}/test", serveJSON(s, http.StatusOK, s.testProvider))
	s.handle("POST /v1/providers/{id}/reconcile", serveJSON(s, http.StatusOK, s.reconcileProvider))
	s.handle("POST /v1/credentials", serveJSON(s, http.StatusCreated, s.createCredential))
	s.handle("GET /v1/credentials", serveJSON(s, http.StatusOK, s.listCredentials))
	s.handle("GET /v1/credentials/{id}", serveJSON(s, http.StatusOK, s.getCredential))
	s.handle("POST /v1/credentials/{id}/revoke", serveJSON(s, http.StatusOK, s.revokeCredential))
	s.handle("POST /v1/credentials/{id}/rotate", serveJSON(s, http.StatusCreated, s.rotateCredential))
	s.handle("POST /v1/credentials/verify", serveJSON(s, http.StatusOK, s.verifyCredential))

	// Rotation policies.
	s.handle("PUT /v1/accounts/{id}/rotation-policy", serveJSON(s, http.StatusOK, s.setRotationPolicy(accountScope)))
	s.handle("GET /v1/accounts/{id}/rotation-policy", serveJSON(s, http.StatusOK, s.getRotationPolicy(accountScope)))
	s.handle("DELETE /v1/accounts/{id}/rotation-policy", serveJSON(s, http.StatusNoContent, s.deleteRotationPolicy(accountScope)))
	s.handle("PUT /v1/keys/{id}/rotation-policy", serveJSON(s, http.StatusOK, s.setRotationPolicy(keyScope)))
	s.handle("GET /v1/keys/{id}/rotation-policy", serveJSON(s, http.StatusOK, s.getRotationPolicy(keyScope)))
	s.handle("DELETE /v1/keys/{id}/rotation-policy", serveJSON(s, http.StatusNoContent, s.deleteRotationPolicy(keyScope)))
	if forwardAuth != nil {
		// Any method: proxies send the original one (Envoy) or their own.
		s.handle(ForwardAuthPath, forwardAuth)
		s.handle(ForwardAuthPath+"/{original_path...}", forwardAuth)
	}

	// Operations; no key needed.
	s.handle("GET /healthz", http.HandlerFunc(s.healthz))
	s.handle("GET /readyz", http.HandlerFunc(s.readyz))
	s.handle("GET /metrics", metricsHandler(gatherer, s.log))
	s.handle("GET /openapi.json", http.HandlerFunc(serveOpenAPI))
	s.handle("GET /docs", http.HandlerFunc(s.serveDocs))
}

// ServeHTTP routes r, renders unknown routes and methods as problem+json,
// turns a panic into a 500, and records the request's metrics and, with
// tracing, its span.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var span trace.Span
	if s.tracer != nil {
		r, span = tracing.StartServer(s.tracer, r)
	}
	sw := &responseWriter{ResponseWriter: w, r: r, s: s}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.ErrorContext(r.Context(), "panic serving request", "route", r.Pattern, "panic", v)
			if !sw.wroteHeader {
				s.writeProblem(sw, httpedge.ProblemOf(fmt.Errorf("panic: %v", v), r.URL.Path))
			}
		}
		s.metrics.observe(r.Pattern, sw.status, time.Since(start))
		if span != nil {
			tracing.SetRoute(span, r.Pattern)
			tracing.EndServer(span, sw.status)
		}
	}()
	s.mux.ServeHTTP(sw, r)
}

// responseWriter records the status for metrics, and replaces the mux's
// plain-text 404 and 405 (written when no pattern matched) with problems.
type responseWriter struct {
	http.ResponseWriter
	r           *http.Request
	s           *Server
	status      int
	wroteHeader bool
	discard     bool
}

func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	w.wroteHeader, w.status = true, code
	if w.r.Pattern == "" && (code == http.StatusNotFound || code == http.StatusMethodNotAllowed) {
		w.discard = true
		w.s.writeProblem(w.ResponseWriter, unmatchedProblem(w.r, code, w.Header().Get("Allow")))
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.discard {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func unmatchedProblem(r *http.Request, code int, allow string) *keyward.Problem {
	if code == http.StatusMethodNotAllowed {
		return &keyward.Problem{
			Type:     keyward.ProblemTypePrefix + keyward.EINVALID,
			Title:    "Method not allowed",
			Status:   code,
			Detail:   fmt.Sprintf("%s is not allowed here; allowed: %s", r.Method, strings.ReplaceAll(allow, ",", ", ")),
			Code:     keyward.EINVALID,
			Instance: apikey.Redact(r.URL.Path),
		}
	}
	return httpedge.ProblemOf(keyward.Errorf(keyward.ENOTFOUND, "no such endpoint: the routes are listed in /openapi.json"), r.URL.Path)
}
