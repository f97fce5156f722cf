package tracing_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyward/keyward/tracing"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

func provider(t *testing.T) (*sdktrace.TracerProvider, *tracetest.InMemoryExporter) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return tp, exp
}

// TestTracerOff: nil and no-op providers give a nil tracer, and Transport
// then returns its base unchanged.
func TestTracerOff(t *testing.T) {
	for _, tp := range []trace.TracerProvider{nil, noop.NewTracerProvider()} {
		if tracing.Tracer(tp) != nil {
			t.Errorf("Tracer(%T) is not nil", tp)
		}
	}
	base := &http.Transport{}
	if got := tracing.Transport(nil, "x", base); got != base {
		t.Errorf("Transport without a tracer wrapped its base")
	}
}

// TestServerAndClientSpans: a server span continues the traceparent it
// got and is named after the route; a client span under it sends its own
// traceparent, replacing the caller's, and records the host, never the
// path, query or headers.
func TestServerAndClientSpans(t *testing.T) {
	tp, exp := provider(t)
	tracer := tracing.Tracer(tp)
	var got http.Header
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	defer upstream.Close()
	client := &http.Client{Transport: tracing.Transport(tracer, "call", nil)}

	in := httptest.NewRequest("GET", "/v1/keys/kw_secret", nil)
	in.Header.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	r, span := tracing.StartServer(tracer, in)
	out, _ := http.NewRequestWithContext(r.Context(), "GET", upstream.URL+"/path/kw_secret?token=kw_secret", nil)
	out.Header.Set("Traceparent", "00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-01")
	out.Header.Set("Authorization", "Bearer kw_secret")
	resp, err := client.Do(out)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	tracing.SetRoute(span, "GET /v1/keys/{id}")
	tracing.EndServer(span, http.StatusNotFound)

	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	call, server := spans[0], spans[1]
	if server.Name != "GET /v1/keys/{id}" || server.Parent.SpanID().String() != "b7ad6b7169203331" ||
		server.SpanContext.TraceID().String() != "0af7651916cd43dd8448eb211c80319c" || server.SpanKind != trace.SpanKindServer {
		t.Errorf("server span %q, parent %s, trace %s", server.Name, server.Parent.SpanID(), server.SpanContext.TraceID())
	}
	if call.Name != "call" || call.Parent.SpanID() != server.SpanContext.SpanID() || call.SpanKind != trace.SpanKindClient {
		t.Errorf("client span %q, parent %s", call.Name, call.Parent.SpanID())
	}
	if want := "00-0af7651916cd43dd8448eb211c80319c-" + call.SpanContext.SpanID().String() + "-01"; got.Get("Traceparent") != want {
		t.Errorf("upstream got traceparent %q, want %q", got.Get("Traceparent"), want)
	}
	if out.Header.Get("Traceparent") != "00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-01" {
		t.Error("RoundTrip changed the caller's request")
	}
	for _, s := range spans {
		for _, a := range s.Attributes {
			if strings.Contains(a.Value.String(), "kw_secret") {
				t.Errorf("span %q attribute %s = %q", s.Name, a.Key, a.Value.String())
			}
		}
	}
}

// TestLogHandler: records logged with a context holding a valid span get
// its trace and span ids; others are left alone.
func TestLogHandler(t *testing.T) {
	tp, _ := provider(t)
	var buf bytes.Buffer
	log := slog.New(tracing.LogHandler(slog.NewJSONHandler(&buf, nil))).With("component", "test")
	ctx, span := tp.Tracer("test").Start(context.Background(), "request")
	log.InfoContext(ctx, "inside")
	log.InfoContext(context.Background(), "outside")
	span.End()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	sc := span.SpanContext()
	if !strings.Contains(lines[0], `"trace_id":"`+sc.TraceID().String()+`","span_id":"`+sc.SpanID().String()+`"`) {
		t.Errorf("inside a span: %s", lines[0])
	}
	if strings.Contains(lines[1], "trace_id") {
		t.Errorf("outside a span: %s", lines[1])
	}
}
