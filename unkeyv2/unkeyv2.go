// Package unkeyv2 answers the Unkey v2 keys API under /v2/, so that a
// service calling that API through one of its published SDKs can move to
// keyward by changing the SDK's server URL (docs/unkey.md).
//
// Every operation is POST /v2/<namespace>.<operation> with the caller's
// key in Authorization: Bearer. The caller is authenticated as on the /v1
// API (the verification engine, unmetered) and each operation calls the
// same admin services, so the role checks, the audit entries and their
// actor are those of the matching /v1 route. Successes are
// {"meta": {"requestId"}, "data": ...}; errors are {"meta", "error":
// {title, detail, status, type, errors[]}}, application/json except a
// 429, which is application/problem+json. A field keyward cannot honour is
// refused with a 400 naming it, never ignored.
package unkeyv2

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/clientaddr"
	"github.com/keyward/keyward/httpedge"
	"github.com/keyward/keyward/ratelimit"
	"github.com/keyward/keyward/verify"
)

// Prefix is the path every operation is under.
const Prefix = "/v2/"

// maxBodyBytes bounds a request body, as on the /v1 API.
const maxBodyBytes = 1 << 20

// TenancyServices are the account and user services the operations call.
type TenancyServices interface {
	keyward.AccountService
	keyward.UserService
}

// KeyServices are the key, credit and import services the operations
// call.
type KeyServices interface {
	keyward.KeyService
	keyward.CreditService
	keyward.KeyImportService
	keyward.MeterService
	// DecrementCredits takes n credits from a key, leaving zero when
	// fewer remain; admin.Keys is one.
	DecrementCredits(ctx context.Context, keyID string, n int64) (*keyward.Credits, error)
}

// DeniedAuditor records refused actions in the audit log; admin.Audit is
// one.
type DeniedAuditor interface {
	AuditDenied(ctx context.Context, route string, cause error)
}

// Config configures a Server.
type Config struct {
	// Tenancy and Keys answer the operations; both are required.
	Tenancy TenancyServices
	Keys    KeyServices
	// Roles answers permissions.*'s role operations; nil: they are not
	// served.
	Roles keyward.RoleService
	// Engine authenticates the caller's key, as on the /v1 API. Required.
	Engine *verify.Engine
	// Denied, when set, records every refusal for lack of permission
	// (EFORBIDDEN), as the /v1 API does.
	Denied DeniedAuditor
	// Prefixes are the deployment's key prefixes: a createKey naming a
	// prefix gets the environment whose prefix it is.
	Prefixes apikey.Prefixes
	// TrustedProxies are the proxies whose X-Forwarded-For names the
	// client (package clientaddr), as for the /v1 API.
	TrustedProxies []netip.Prefix
	// Challenge is the WWW-Authenticate value of every 401; empty:
	// keyward.WWWAuthenticate.
	Challenge string
	// AgentHeaders are read as the agent besides X-Keyward-Agent.
	AgentHeaders []string
	// Limiter is the deployment's rate limit engine, which counts
	// ratelimit.limit's standalone limits; nil: that operation is not
	// served.
	Limiter ratelimit.Limiter
	// Now is the clock of ratelimit.limit; nil: time.Now.
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Server answers the Unkey v2 operations; it is an http.Handler for the
// paths under Prefix.
type Server struct {
	cfg Config
	ops map[string]operation
	log *slog.Logger
}

// operation is one Unkey v2 operation: it decodes body itself (strictly)
// and returns the data of the answer and, for lists, their pagination.
type operation func(ctx context.Context, r *http.Request, body []byte) (any, *pagination, error)

// pagination is the page information of a list answer.
type pagination struct {
	Cursor  string `json:"cursor,omitempty"`
	HasMore bool   `json:"hasMore"`
}

// New returns a Server for cfg. It panics if a service or the engine is
// missing or an agent header cannot be one: wiring bugs.
func New(cfg Config) *Server {
	if cfg.Tenancy == nil || cfg.Keys == nil || cfg.Engine == nil {
		panic("unkeyv2: Config.Tenancy, Config.Keys and Config.Engine are required")
	}
	if err := httpedge.CheckAgentHeaders(cfg.AgentHeaders); err != nil {
		panic("unkeyv2: Config.AgentHeaders: " + keyward.ErrorMessage(err))
	}
	cfg.TrustedProxies = slices.Clone(cfg.TrustedProxies)
	cfg.AgentHeaders = slices.Clone(cfg.AgentHeaders)
	s := &Server{cfg: cfg, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("component", "unkeyv2")
	s.ops = map[string]operation{
		"apis.createApi":            op(s.createAPI),
		"apis.getApi":               op(s.getAPI),
		"apis.deleteApi":            op(s.deleteAPI),
		"apis.listKeys":             s.listKeys,
		"keys.createKey":            op(s.createKey),
		"keys.getKey":               op(s.getKey),
		"keys.deleteKey":            op(s.deleteKey),
		"keys.updateKey":            op(s.updateKey),
		"keys.whoami":               op(s.whoami),
		"keys.verifyKey":            op(s.verifyKey),
		"keys.rerollKey":            op(s.rerollKey),
		"keys.updateCredits":        op(s.updateCredits),
		"keys.addPermissions":       changeList(s, permissionList, addTo),
		"keys.removePermissions":    changeList(s, permissionList, removeFrom),
		"keys.setPermissions":       changeList(s, permissionList, replaceWith),
		"keys.addRoles":             changeList(s, roleList, addTo),
		"keys.removeRoles":          changeList(s, roleList, removeFrom),
		"keys.setRoles":             changeList(s, roleList, replaceWith),
		"keys.migrateKeys":          op(s.migrateKeys),
		"identities.createIdentity": op(s.createIdentity),
		"identities.getIdentity":    op(s.getIdentity),
		"identities.listIdentities": s.listIdentities,
		"identities.updateIdentity": op(s.updateIdentity),
		"identities.deleteIdentity": op(s.deleteIdentity),
	}
	if cfg.Roles != nil {
		s.ops["permissions.createRole"] = op(s.createRole)
		s.ops["permissions.getRole"] = op(s.getRole)
		s.ops["permissions.listRoles"] = s.listRoles
		s.ops["permissions.deleteRole"] = op(s.deleteRole)
		s.ops["permissions.setRolePermissions"] = op(s.setRolePermissions)
	}
	if cfg.Limiter != nil {
		s.ops["ratelimit.limit"] = op(s.ratelimitLimit)
	}
	return s
}

// now is the time of the configured clock.
func (s *Server) now() time.Time {
	if s.cfg.Now != nil {
		return s.cfg.Now()
	}
	return time.Now()
}

// Operations returns the names of the operations served, sorted.
func (s *Server) Operations() []string {
	names := make([]string, 0, len(s.ops))
	for name := range s.ops {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Routes returns the route of each operation served ("POST
// /v2/keys.verifyKey"), the labels of its requests in metrics and traces.
func (s *Server) Routes() []string {
	ops := s.Operations()
	for i, name := range ops {
		ops[i] = http.MethodPost + " " + Prefix + name
	}
	return ops
}

// Route returns the route of r, one of Routes, or "" when r names no
// operation served or is not a POST.
func (s *Server) Route(r *http.Request) string {
	name, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if _, served := s.ops[name]; !ok || !served || r.Method != http.MethodPost {
		return ""
	}
	return http.MethodPost + " " + r.URL.Path
}

// op adapts a handler of a decoded request to an operation.
func op[REQ, RESP any](fn func(ctx context.Context, r *http.Request, in *REQ) (RESP, error)) operation {
	return func(ctx context.Context, r *http.Request, body []byte) (any, *pagination, error) {
		in := new(REQ)
		if err := decode(body, in); err != nil {
			return nil, nil, err
		}
		out, err := fn(ctx, r, in)
		return out, nil, err
	}
}

// ServeHTTP answers one operation: it authenticates the caller, finds the
// operation named by the path, runs it and writes the envelope.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	reqID := apikey.NewID("req")
	w.Header().Set("X-Request-Id", reqID)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.writeError(w, r, reqID, errMethod)
		return
	}
	id, err := s.authenticate(r)
	if err != nil {
		s.writeError(w, r, reqID, err)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, Prefix)
	fn, ok := s.ops[name]
	if !ok {
		s.writeError(w, r, reqID, unknownOperation(name))
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		s.writeError(w, r, reqID, err)
		return
	}
	ctx := keyward.NewContextWithIdentity(r.Context(), id)
	ctx = keyward.NewContextWithRequestInfo(ctx, s.requestInfo(r, reqID))
	data, page, err := fn(ctx, r, body)
	if err != nil {
		if s.cfg.Denied != nil && keyward.ErrorCode(err) == keyward.EFORBIDDEN {
			s.cfg.Denied.AuditDenied(ctx, "POST "+r.URL.Path, err)
		}
		s.writeError(w, r, reqID, err)
		return
	}
	writeJSON(w, http.StatusOK, "application/json", success{Meta: meta{RequestID: reqID}, Data: data, Pagination: page})
}

var errMethod = keyward.Errorf(keyward.EINVALID, "every operation of the Unkey v2 API is a POST")

// unknownOperation refuses an operation keyward does not serve, naming it
// (a key sent as a path is redacted by the error writer).
func unknownOperation(name string) error {
	return fieldErr("path", keyward.Errorf(keyward.EINVALID, "operation %q is not served by keyward's Unkey v2 API: see docs/unkey.md for the operations it answers", name))
}

// authenticate verifies the caller's key with the engine, unmetered, as
// the /v1 API does, and returns its identity.
func (s *Server) authenticate(r *http.Request) (*keyward.Identity, error) {
	raw, err := apikey.FromRequest(r)
	if err != nil {
		return nil, err
	}
	agent, err := httpedge.Agent(r.Header, s.cfg.AgentHeaders...)
	if err != nil {
		return nil, err
	}
	res := s.cfg.Engine.Verify(r.Context(), verify.Request{Key: raw, Agent: agent, IP: s.clientIP(r), Unmetered: true})
	if res.Decision.Valid() {
		return res.Identity(), nil
	}
	s.log.DebugContext(r.Context(), "authentication refused", "decision", res.Decision, "key_id", res.KeyID(), "path", apikey.Redact(r.URL.Path))
	return nil, res.Decision.Refusal()
}

// clientIP is the client of r: the peer, or the client a trusted proxy's
// X-Forwarded-For names.
func (s *Server) clientIP(r *http.Request) netip.Addr {
	return clientaddr.FromRequest(r, s.cfg.TrustedProxies)
}

// requestInfo is what the audit log records of r (httpedge.RequestInfo),
// with reqID, the id the answer's meta carries, unless the client sent
// X-Request-Id.
func (s *Server) requestInfo(r *http.Request, reqID string) keyward.RequestInfo {
	ri := httpedge.RequestInfo(r, s.clientIP(r))
	if ri.RequestID == "" {
		ri.RequestID = reqID
	}
	return ri
}

type meta struct {
	RequestID string `json:"requestId"`
}

type success struct {
	Meta       meta        `json:"meta"`
	Data       any         `json:"data"`
	Pagination *pagination `json:"pagination,omitempty"`
}

// empty is the data of an operation that answers nothing.
type empty struct{}

// fieldError is a refusal that names the request field at fault
// ("body.credits.refill.interval"), answered in the errors list of a 400.
type fieldError struct {
	location string
	err      *keyward.Error
}

func (e *fieldError) Error() string { return e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

// fieldErr returns err (an EINVALID) as the refusal of the field at
// location.
func fieldErr(location string, err *keyward.Error) error {
	return &fieldError{location: location, err: err}
}

// badField refuses the body field named by field ("credits.remaining") with
// a message that names it.
func badField(field, format string, args ...any) error {
	return fieldErr("body."+field, keyward.Errorf(keyward.EINVALID, "%s: "+format, append([]any{field}, args...)...))
}

type validationError struct {
	Location string `json:"location"`
	Message  string `json:"message"`
}

type errorBody struct {
	Title  string            `json:"title"`
	Detail string            `json:"detail"`
	Status int               `json:"status"`
	Type   string            `json:"type"`
	Errors []validationError `json:"errors"`
}

type failure struct {
	Meta  meta      `json:"meta"`
	Error errorBody `json:"error"`
}

// writeError writes err in the Unkey v2 error shape, with the status,
// title, type and redacted detail keyward gives its code, and the headers
// of a refusal (WWW-Authenticate on a 401, Retry-After on a 503).
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, reqID string, err error) {
	p := httpedge.ProblemOf(err, r.URL.Path)
	if p.Code == keyward.EINTERNAL {
		s.log.ErrorContext(r.Context(), "operation failed", "path", apikey.Redact(r.URL.Path), "err", err)
	}
	body := errorBody{Title: p.Title, Detail: p.Detail, Status: p.Status, Type: p.Type, Errors: []validationError{}}
	if fe, ok := errors.AsType[*fieldError](err); ok {
		body.Errors = append(body.Errors, validationError{Location: apikey.Redact(fe.location), Message: p.Detail})
	}
	httpedge.SetRefusalHeaders(w.Header(), p.Status, s.cfg.Challenge, nil)
	contentType := "application/json"
	if p.Status == http.StatusTooManyRequests {
		contentType = keyward.ProblemContentType
	}
	writeJSON(w, p.Status, contentType, failure{Meta: meta{RequestID: reqID}, Error: body})
}

// writeJSON writes v with status and its length.
func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only a bug gets here: every answer is made of encodable types.
		panic("unkeyv2: encoding an answer: " + err.Error())
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

var (
	errBodyTooLarge = keyward.Errorf(keyward.ETOOLARGE, "request body is larger than %d bytes", maxBodyBytes)
	errNotObject    = keyward.Errorf(keyward.EINVALID, "request body must be a single JSON object")
)

// readBody reads the body of r, at most maxBodyBytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > maxBodyBytes {
		return nil, errBodyTooLarge
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, errBodyTooLarge
		}
		return nil, keyward.Errorf(keyward.EINVALID, "reading the request body failed: send it again")
	}
	return b, nil
}

// decode reads body, one JSON object, into v: an unknown field, a wrong
// type or trailing data is a 400 naming what is wrong, and the body is
// never echoed (it may hold a key). An empty body is an empty object.
func decode(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if t := bytes.TrimSpace(body); t[0] != '{' {
		return errNotObject
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errNotObject
	}
	return nil
}

// decodeError turns a decoding failure into a refusal naming the field.
func decodeError(err error) error {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
		kerr   *keyward.Error
	)
	switch {
	case errors.As(err, &syntax):
		return keyward.Errorf(keyward.EINVALID, "request body is not valid JSON (at byte %d)", syntax.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return keyward.Errorf(keyward.EINVALID, "request body is truncated JSON")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return errNotObject
		}
		return badField(typ.Field, "must not be a JSON %s", typ.Value)
	case errors.As(err, &kerr):
		return kerr
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no error type for this; the message holds
		// only the field's name, quoted.
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		return fieldErr("body."+name, keyward.Errorf(keyward.EINVALID, "unknown field %q: keyward's Unkey v2 API does not support it (docs/unkey.md)", name))
	}
	return keyward.Errorf(keyward.EINVALID, "request body does not match the operation's schema: check field types")
}
