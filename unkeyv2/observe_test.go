package unkeyv2

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/keyward/keyward/httpapi"
)

// TestMetricsAndTraces checks that /v2 requests, instrumented by the /v1
// API's server as the keyward server wires them, are counted in its HTTP
// metrics and traced by its tracer, labelled by operation; a request
// naming no operation served is counted as unmatched.
func TestMetricsAndTraces(t *testing.T) {
	e := newEnv(t)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	reg := prometheus.NewRegistry()
	s := e.svc
	api := httpapi.New(httpapi.Config{
		Services: httpapi.Services{Tenancy: s.Tenancy, Roles: s.Roles, Keys: s.Keys, Credentials: s.Credentials, Webhooks: s.Webhooks, Audit: s.Audit, Abuse: s.Abuse},
		Engine:   e.engine, Gatherer: reg, Registerer: reg, TracerProvider: tp,
	})
	v2 := New(Config{Tenancy: s.Tenancy, Keys: s.Keys, Roles: s.Roles, Engine: e.engine})
	ts := httptest.NewServer(api.Instrument(v2, v2.Routes(), v2.Route))
	t.Cleanup(ts.Close)
	e.url = ts.URL

	acme := e.api("acme")
	_, secret := e.createKey(map[string]any{"apiId": acme})
	e.verify(map[string]any{"key": secret})
	e.verify(map[string]any{"key": secret})
	e.refused(e.root, "keys.verifyKey", map[string]any{}, http.StatusBadRequest)
	e.refused(e.root, "keys.nope", map[string]any{}, http.StatusBadRequest)
	e.refused("", "keys.verifyKey", map[string]any{"key": secret}, http.StatusUnauthorized)

	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, want := range []string{
		`keyward_http_requests_total{code="200",route="POST /v2/keys.verifyKey"} 2`,
		`keyward_http_requests_total{code="400",route="POST /v2/keys.verifyKey"} 1`,
		`keyward_http_requests_total{code="401",route="POST /v2/keys.verifyKey"} 1`,
		`keyward_http_requests_total{code="200",route="POST /v2/apis.createApi"} 1`,
		`keyward_http_requests_total{code="400",route="unmatched"} 1`,
		`keyward_http_request_duration_seconds_count{route="POST /v2/keys.verifyKey"} 4`,
	} {
		if !strings.Contains(rec.Body.String(), want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	spans := map[string]int{}
	for _, sp := range exp.GetSpans() {
		for _, a := range sp.Attributes {
			if a.Key == attribute.Key("http.response.status_code") {
				spans[sp.Name+" "+a.Value.String()]++
			}
		}
	}
	if spans["POST /v2/keys.verifyKey 200"] != 2 || spans["POST /v2/keys.verifyKey 401"] != 1 || spans["POST 400"] != 1 {
		t.Errorf("spans by name and status: %v", spans)
	}
}
