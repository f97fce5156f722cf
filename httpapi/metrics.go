package httpapi

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keyward/keyward"
)

// routeUnmatched labels requests that matched no route, so labels stay
// bounded whatever paths clients try.
const routeUnmatched = "unmatched"

// httpMetrics are the server's own request metrics, labelled by route
// pattern ("GET /v1/keys/{id}"), never by raw path.
type httpMetrics struct {
	requests  *prometheus.CounterVec
	durations *prometheus.HistogramVec
	// byRoute caches each route's histogram so the hot path does no label
	// hashing for it.
	byRoute map[string]prometheus.Observer
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_http_requests_total",
			Help: "HTTP requests served, by route pattern and status code.",
		}, []string{"route", "code"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keyward_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by route pattern.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
	}
	if reg != nil {
		m.requests = register(reg, m.requests)
		m.durations = register(reg, m.durations)
	}
	return m
}

// registerStorage exposes whether the store's storage is full, when it
// tracks it (keyward.StorageReporter).
func registerStorage(reg prometheus.Registerer, store any) {
	r, ok := store.(keyward.StorageReporter)
	if !ok || reg == nil {
		return
	}
	f := r.Storage()
	register(reg, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "keyward_storage_full",
		Help: "1 while the database refuses writes because its storage is full (SQLITE_FULL, PostgreSQL disk_full), else 0.",
	}, func() float64 {
		if f.Full() {
			return 1
		}
		return 0
	}))
	register(reg, prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "keyward_storage_full_episodes_total",
		Help: "Times the database's storage became full (each logged once at error level, \"storage full\").",
	}, func() float64 { return float64(f.Episodes()) }))
}

// register registers c, or reuses the collector already registered under
// the same description (two servers sharing one registry).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic("httpapi: registering metrics: " + err.Error())
	}
	return c
}

func (m *httpMetrics) init(routes []string) {
	m.byRoute = make(map[string]prometheus.Observer, len(routes)+1)
	for _, r := range append(routes, routeUnmatched) {
		m.byRoute[r] = m.durations.WithLabelValues(r)
	}
}

func (m *httpMetrics) observe(route string, status int, d time.Duration) {
	m.observeIn(m.byRoute, route, status, d)
}

// observeIn records a request of route, taking its histogram from byRoute
// when it is there.
func (m *httpMetrics) observeIn(byRoute map[string]prometheus.Observer, route string, status int, d time.Duration) {
	if route == "" {
		route = routeUnmatched
	}
	if status == 0 {
		status = http.StatusOK
	}
	o, ok := byRoute[route]
	if !ok {
		o = m.durations.WithLabelValues(route)
	}
	o.Observe(d.Seconds())
	m.requests.WithLabelValues(route, statusLabel(status)).Inc()
}

func statusLabel(code int) string {
	switch code {
	case http.StatusOK:
		return "200"
	case http.StatusCreated:
		return "201"
	case http.StatusNoContent:
		return "204"
	case http.StatusUnauthorized:
		return "401"
	case http.StatusForbidden:
		return "403"
	case http.StatusNotFound:
		return "404"
	}
	return strconv.Itoa(code)
}

// metricsHandler exposes g in the Prometheus text format.
func metricsHandler(g prometheus.Gatherer, log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      slogPrinter{log},
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// slogPrinter adapts a *slog.Logger to promhttp's Logger.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) {
	p.log.Error("serving metrics", "err", v)
}
