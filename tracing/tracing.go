// Package tracing holds what keyward's packages share to trace with
// OpenTelemetry: the tracer of a provider (nil when tracing is off, so a
// caller's check costs one comparison), server spans for incoming HTTP
// requests that continue a W3C traceparent, an http.RoundTripper that
// makes client spans and sends traceparent on, and a slog.Handler that adds
// the trace and span ids of a record's context.
//
// It depends on the OpenTelemetry API only; cmd/keyward builds the SDK's
// provider and its OTLP exporter from the OTEL_* environment variables
// (docs/observability.md).
//
// What a span records is chosen for safety: route patterns, never raw
// paths (a path may hold a key pasted where an id belongs); host and port,
// never a full URL (a webhook or provider URL may carry a token); never a
// header, a query, a body, a key, a password or secret metadata.
package tracing

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ScopeName is the instrumentation scope of keyward's spans.
const ScopeName = "github.com/keyward/keyward"

// DefaultSampleRatio is the share of requests keyward traces when
// OTEL_TRACES_SAMPLER is not set: the sampler is then
// parentbased_traceidratio with this ratio, so a request whose
// traceparent is sampled is always traced and 1% of the others are. (The
// OpenTelemetry default, parentbased_always_on, would trace every
// verification of a busy service.)
const DefaultSampleRatio = 0.01

// propagator reads and writes W3C traceparent and tracestate.
var propagator = propagation.TraceContext{}

// Tracer returns keyward's tracer from tp, or nil when tp is nil or a
// no-op provider: callers check for nil and do no tracing work at all.
func Tracer(tp trace.TracerProvider) trace.Tracer {
	switch tp.(type) {
	case nil, noop.TracerProvider, *noop.TracerProvider:
		return nil
	}
	return tp.Tracer(ScopeName)
}

// StartServer starts a server span for r named after its method, the
// child of the traceparent r carries (if any), and returns r with the span
// in its context. Its attributes are the method and the scheme; the caller
// names the span after the route (SetRoute) and ends it with EndServer.
func StartServer(tracer trace.Tracer, r *http.Request) (*http.Request, trace.Span) {
	ctx := propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	m := method(r.Method)
	ctx, span := tracer.Start(ctx, m, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", m), attribute.String("url.scheme", scheme)))
	return r.WithContext(ctx), span
}

// SetRoute names span after the route pattern that served it ("GET
// /v1/keys/{id}"), recorded as http.route too. An empty pattern (no route
// matched) leaves the name.
func SetRoute(span trace.Span, pattern string) {
	if pattern == "" || !span.IsRecording() {
		return
	}
	span.SetName(pattern)
	span.SetAttributes(attribute.String("http.route", pattern))
}

// EndServer records the response status of a server span and ends it; a
// 5xx marks it as an error.
func EndServer(span trace.Span, status int) {
	if status == 0 {
		status = http.StatusOK
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}

// Inject writes the traceparent (and tracestate) of the span in ctx into
// h, replacing any sent by the client. Without a valid span it leaves h
// alone.
func Inject(ctx context.Context, h http.Header) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	h.Del("Traceparent")
	h.Del("Tracestate")
	propagator.Inject(ctx, propagation.HeaderCarrier(h))
}

// Transport returns base (http.DefaultTransport if nil) wrapped to make a
// client span named name for each request whose context carries a span,
// and to send the span on in traceparent. Without tracer it returns base
// unchanged. The span records the method, the server's host and port and
// the response status; never the URL's path or query, nor a header.
func Transport(tracer trace.Tracer, name string, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if tracer == nil {
		return base
	}
	return &transport{tracer: tracer, name: name, base: base}
}

type transport struct {
	tracer trace.Tracer
	name   string
	base   http.RoundTripper
}

func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx := r.Context()
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return t.base.RoundTrip(r)
	}
	attrs := []attribute.KeyValue{attribute.String("http.request.method", method(r.Method))}
	if host := r.URL.Hostname(); host != "" {
		attrs = append(attrs, attribute.String("server.address", host))
	}
	if port := portOf(r); port > 0 {
		attrs = append(attrs, attribute.Int("server.port", port))
	}
	ctx, span := t.tracer.Start(ctx, t.name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	defer span.End()
	// RoundTrip must not change r: the headers go on a copy.
	r = r.Clone(ctx)
	Inject(ctx, r.Header)
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		// The message may quote the URL: only the fact is recorded.
		span.SetStatus(codes.Error, "the request got no response")
		return resp, err
	}
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode >= 500 {
		span.SetStatus(codes.Error, http.StatusText(resp.StatusCode))
	}
	return resp, nil
}

// CloseIdleConnections closes the idle connections of the wrapped
// transport, if it keeps any.
func (t *transport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// portOf is the port r goes to: the URL's, or its scheme's default.
func portOf(r *http.Request) int {
	if p := r.URL.Port(); p != "" {
		n, _ := strconv.Atoi(p)
		return n
	}
	switch r.URL.Scheme {
	case "https":
		return 443
	case "http":
		return 80
	}
	return 0
}

// method is m when it is a standard method, else "_OTHER": a client's
// made-up method never becomes an attribute value.
func method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "_OTHER"
}

// Error marks span as failed with description, a fixed text chosen by
// the caller: error messages may quote URLs or input, so they are never
// recorded.
func Error(span trace.Span, description string) {
	span.SetStatus(codes.Error, description)
}

// LogHandler wraps h to add trace_id and span_id to every record whose
// context carries a valid span, so the log lines of a traced request can
// be found from its trace and the other way round.
func LogHandler(h slog.Handler) slog.Handler { return &logHandler{h} }

type logHandler struct{ slog.Handler }

func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r = r.Clone()
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &logHandler{h.Handler.WithAttrs(attrs)}
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	return &logHandler{h.Handler.WithGroup(name)}
}

// SQLOperation is the first word of a statement, upper case ("SELECT"),
// or "QUERY" when it does not start with a word: what a query span is
// named after. The statement's text never goes into a span (it would
// carry nothing secret by itself, but its arguments would, and a store's
// spans record neither).
func SQLOperation(sql string) string {
	sql = strings.TrimSpace(sql)
	end := strings.IndexFunc(sql, func(r rune) bool { return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') })
	if end < 0 {
		end = len(sql)
	}
	if end == 0 || end > 16 {
		return "QUERY"
	}
	return strings.ToUpper(sql[:end])
}
