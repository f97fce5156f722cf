package server

import (
	"strings"
	"testing"
)

// TestTracingSettings: a variable keyward cannot use stops serve with a
// message naming it.
func TestTracingSettings(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		name string
	}{
		{map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317"}, "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, "OTEL_TRACES_SAMPLER_ARG"},
	} {
		_, err := readTracing(func(k string) string { return tc.env[k] })
		if err == nil || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%v: error %v, want one naming %s", tc.env, err, tc.name)
		}
	}
	s, err := readTracing(func(k string) string {
		return map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}[k]
	})
	if err != nil || s == nil || s.protocol != "http/protobuf" || s.samplerName != "parentbased_traceidratio 0.01" || s.service != "keyward" {
		t.Errorf("defaults: %+v, %v", s, err)
	}
}
