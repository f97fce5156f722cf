package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/clientaddr"
	"github.com/keyward/keyward/httpedge"
	"github.com/keyward/keyward/verify"
)

// MaxBodyBytes bounds every request body; larger bodies get 413.
const MaxBodyBytes = 1 << 20

// Request errors; refused keys answer with keyward.Decision.Refusal.
var (
	errMalformedID      = keyward.Errorf(keyward.ENOTFOUND, "not found: malformed id")
	errKeyAsID          = keyward.Errorf(keyward.ENOTFOUND, "not found: the path holds an API key where an id belongs: use the key's id (key_...), and treat the key as exposed if it went through logs or proxies")
	errBodyTooLarge     = keyward.Errorf(keyward.ETOOLARGE, "request body is larger than %d bytes", MaxBodyBytes)
	errTrailingData     = keyward.Errorf(keyward.EINVALID, "request body must hold a single JSON object")
	errInvalidBodyTypes = keyward.Errorf(keyward.EINVALID, "request body does not match the schema: check field types and formats (times are RFC 3339)")
)

// noBody is the request type of operations that take no body. Decoding
// into it still rejects a body with fields, so a misplaced field is an error
// rather than silently ignored.
type noBody struct{}

// handlerFunc is one API operation. ctx carries the authenticated caller;
// r gives path values and the query; in is the decoded body.
type handlerFunc[REQ, RESP any] func(ctx context.Context, r *http.Request, in REQ) (RESP, error)

// serveJSON is the one handler every authenticated JSON route goes through:
// it authenticates the caller, checks path ids, decodes the body (strictly,
// at most MaxBodyBytes), calls fn and writes its result with status, or the
// error as problem+json. 204 writes no body.
func serveJSON[REQ, RESP any](s *Server, status int, fn handlerFunc[REQ, RESP]) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		id, err := s.authenticate(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		for _, name := range [...]string{"id", "uid"} {
			v := r.PathValue(name)
			switch {
			case apikey.LooksLikeKey(v):
				s.writeError(w, r, errKeyAsID)
				return
			case v != "" && !validID(v):
				s.writeError(w, r, errMalformedID)
				return
			}
		}
		var in REQ
		if hasBody(r) {
			if err := decode(w, r, &in); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		ctx := keyward.NewContextWithIdentity(r.Context(), id)
		ctx = keyward.NewContextWithRequestInfo(ctx, httpedge.RequestInfo(r, s.clientIP(r)))
		out, err := fn(ctx, r, in)
		if err != nil {
			if d, ok := s.svc.Audit.(deniedAuditor); ok && keyward.ErrorCode(err) == keyward.EFORBIDDEN {
				d.AuditDenied(ctx, r.Pattern, err)
			}
			s.writeError(w, r, err)
			return
		}
		if status == http.StatusNoContent {
			w.WriteHeader(status)
			return
		}
		if err := writeBody(w, status, "application/json", out); err != nil {
			s.log.ErrorContext(r.Context(), "encoding response", "route", r.Pattern, "err", err)
		}
	})
}

// authenticate verifies the caller's own key with the engine and returns
// its identity. It spends none of the key's rate limits or credits: those
// meter the protected service, not the admin API.
func (s *Server) authenticate(r *http.Request) (*keyward.Identity, error) {
	raw, err := apikey.FromRequest(r)
	if err != nil {
		return nil, err
	}
	agent, err := httpedge.Agent(r.Header, s.agentHeaders...)
	if err != nil {
		return nil, err
	}
	res := s.engine.Verify(r.Context(), verify.Request{Key: raw, Agent: agent, IP: s.clientIP(r), Unmetered: true})
	if res.Decision.Valid() {
		return res.Identity(), nil
	}
	s.log.DebugContext(r.Context(), "authentication refused", "decision", res.Decision, "key_id", res.KeyID(), "route", r.Pattern, "agent", apikey.Redact(agent))
	return nil, res.Decision.Refusal()
}

// deniedAuditor records refused admin actions in the audit log;
// admin.Audit is one.
type deniedAuditor interface {
	AuditDenied(ctx context.Context, route string, cause error)
}

// clientIP is the address of the client of r: the peer, or, from one of
// Config.TrustedProxies, the client its X-Forwarded-For names (package
// clientaddr), as the gateway and forward-auth read it.
func (s *Server) clientIP(r *http.Request) netip.Addr {
	return clientaddr.FromRequest(r, s.trusted)
}

// validID reports whether v can be a keyward id ("key_..", "acc_.."): 1-64
// ASCII letters, digits, '_' or '-'. Anything else is not found without a
// lookup.
func validID(v string) bool {
	if len(v) == 0 || len(v) > 64 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func hasBody(r *http.Request) bool {
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		return true
	}
	return false
}

// decode reads one JSON value into v from a body of at most MaxBodyBytes,
// rejecting unknown fields and trailing data. An empty body leaves v zero.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	if r.ContentLength > MaxBodyBytes {
		return errBodyTooLarge
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if err == io.EOF {
			return nil
		}
		return decodeError(err)
	}
	if err := dec.Decode(&struct{}{}); err != io.EOF {
		if err != nil {
			if e := decodeError(err); keyward.ErrorCode(e) == keyward.ETOOLARGE {
				return e
			}
		}
		return errTrailingData
	}
	return nil
}

// decodeError turns a decoding failure into a client-safe *keyward.Error.
// It never echoes the body: it may hold a key.
func decodeError(err error) error {
	var (
		tooLarge *http.MaxBytesError
		syntax   *json.SyntaxError
		typ      *json.UnmarshalTypeError
		kerr     *keyward.Error
	)
	switch {
	case errors.As(err, &tooLarge):
		return errBodyTooLarge
	case errors.As(err, &syntax):
		return keyward.Errorf(keyward.EINVALID, "request body is not valid JSON (at byte %d)", syntax.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return keyward.Errorf(keyward.EINVALID, "request body is truncated JSON")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return keyward.Errorf(keyward.EINVALID, "request body must be a JSON object")
		}
		return keyward.Errorf(keyward.EINVALID, "field %q must not be a JSON %s", typ.Field, typ.Value)
	case errors.As(err, &kerr):
		return kerr
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no error type for this; the message is the
		// field name only, safe to show.
		return keyward.Errorf(keyward.EINVALID, "unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return errInvalidBodyTypes
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// writeBody encodes v as JSON into a pooled buffer and writes it with its
// length, so a handler never sends half a body. If v cannot be encoded (a
// bug) it writes a 500 problem instead and returns the encoding error.
func writeBody(w http.ResponseWriter, status int, contentType string, v any) error {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 64<<10 {
			bufPool.Put(buf)
		}
	}()
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	h := w.Header()
	err := enc.Encode(v)
	if err != nil {
		// Only a bug can get here (an unencodable type).
		buf.Reset()
		buf.WriteString(`{"type":"` + keyward.ProblemTypePrefix + keyward.EINTERNAL + `","title":"Internal error","status":500,"detail":"internal error: response encoding failed","code":"internal"}` + "\n")
		status, contentType = http.StatusInternalServerError, ProblemContentType
	}
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
	return err
}
