package httpapi

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/keyward/keyward/tracing"
)

// Instrument returns h, a handler served beside this server on the same
// listener (the Unkey v2 API), counted in this server's HTTP metrics and
// traced with its tracer as the server's own routes are. route names the
// route of a request, one of routes ("POST /v2/keys.verifyKey"), or ""
// for a request h serves under no route, counted as unmatched: labels stay
// bounded whatever paths clients try.
func (s *Server) Instrument(h http.Handler, routes []string, route func(*http.Request) string) http.Handler {
	byRoute := make(map[string]prometheus.Observer, len(routes))
	for _, r := range routes {
		byRoute[r] = s.metrics.durations.WithLabelValues(r)
	}
	return &instrumented{s: s, h: h, route: route, byRoute: byRoute}
}

type instrumented struct {
	s       *Server
	h       http.Handler
	route   func(*http.Request) string
	byRoute map[string]prometheus.Observer
}

func (in *instrumented) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var span trace.Span
	if in.s.tracer != nil {
		r, span = tracing.StartServer(in.s.tracer, r)
	}
	route := in.route(r)
	sw := &statusWriter{ResponseWriter: w}
	panicked := true
	defer func() {
		status := sw.status
		if panicked && !sw.wroteHeader {
			// net/http answers a handler's panic by dropping the
			// connection: count it as the failure it is.
			status = http.StatusInternalServerError
		}
		in.s.metrics.observeIn(in.byRoute, route, status, time.Since(start))
		if span != nil {
			tracing.SetRoute(span, route)
			tracing.EndServer(span, status)
		}
	}()
	in.h.ServeHTTP(sw, r)
	panicked = false
}

// statusWriter records the status a handler answers.
type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.wroteHeader, w.status = true, code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.wroteHeader, w.status = true, http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
