package server

import (
	"cmp"
	"context"
	"log/slog"
	"net/url"
	"strconv"
	"strings"

	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/tracing"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Tracing (docs/observability.md): off unless the standard OpenTelemetry
// environment asks for it. The switches and the endpoint are read here;
// the exporter reads the rest of its OTEL_EXPORTER_OTLP_* settings
// (headers, timeout, compression, certificates) and the batch processor
// its OTEL_BSP_* settings from the process environment itself.

// tracingSettings is what StartTracing reads from the environment.
type tracingSettings struct {
	protocol string // "grpc" or "http/protobuf"
	endpoint string // as configured, "" for the exporter's default
	// tracesEndpoint: endpoint is the traces endpoint itself (used as is)
	// rather than the base of all signals (/v1/traces appended over HTTP).
	tracesEndpoint bool
	sampler        sdktrace.Sampler
	samplerName    string
	service        string
}

// readTracing returns the tracing settings of getenv, nil when tracing is
// off, or a *config.Error naming the variable that is wrong.
func readTracing(getenv func(string) string) (*tracingSettings, error) {
	if v := strings.TrimSpace(getenv("OTEL_SDK_DISABLED")); strings.EqualFold(v, "true") {
		return nil, nil
	}
	s := &tracingSettings{endpoint: getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")}
	s.tracesEndpoint = s.endpoint != ""
	if s.endpoint == "" {
		s.endpoint = getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	}
	switch exp := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); exp {
	case "":
		if s.endpoint == "" {
			return nil, nil
		}
	case "otlp":
	case "none":
		return nil, nil
	default:
		return nil, config.Errorf("OTEL_TRACES_EXPORTER", "%q is not an exporter keyward has: use otlp (with OTEL_EXPORTER_OTLP_ENDPOINT), or none", exp)
	}
	if s.endpoint != "" {
		if u, err := url.Parse(s.endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, config.Errorf(endpointVar(s), "is not an http(s) URL: use e.g. http://otel-collector:4318 (http/protobuf) or http://otel-collector:4317 (grpc)")
		}
	}
	s.protocol = cmp.Or(getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"), getenv("OTEL_EXPORTER_OTLP_PROTOCOL"), "http/protobuf")
	if s.protocol != "grpc" && s.protocol != "http/protobuf" {
		return nil, config.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL", "%q is not supported: use http/protobuf (port 4318) or grpc (port 4317)", s.protocol)
	}
	var err error
	if s.sampler, s.samplerName, err = readSampler(getenv("OTEL_TRACES_SAMPLER"), getenv("OTEL_TRACES_SAMPLER_ARG")); err != nil {
		return nil, err
	}
	s.service = cmp.Or(getenv("OTEL_SERVICE_NAME"), "keyward")
	return s, nil
}

// endpointVar names the variable the endpoint of s came from.
func endpointVar(s *tracingSettings) string {
	if s.tracesEndpoint {
		return "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	}
	return "OTEL_EXPORTER_OTLP_ENDPOINT"
}

// readSampler returns the sampler OTEL_TRACES_SAMPLER (name) and
// OTEL_TRACES_SAMPLER_ARG (arg) name, and a description for the log. An
// unset name is keyward's default: parentbased_traceidratio at
// tracing.DefaultSampleRatio.
func readSampler(name, arg string) (sdktrace.Sampler, string, error) {
	ratio := tracing.DefaultSampleRatio
	if name == "" {
		name = "parentbased_traceidratio"
	} else if arg != "" && strings.HasSuffix(name, "traceidratio") {
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return nil, "", config.Errorf("OTEL_TRACES_SAMPLER_ARG", "%q is not a ratio: use a number from 0 to 1, e.g. 0.01", arg)
		}
		ratio = r
	} else if strings.HasSuffix(name, "traceidratio") {
		ratio = 1
	}
	desc := name
	if strings.HasSuffix(name, "traceidratio") {
		desc += " " + strconv.FormatFloat(ratio, 'g', -1, 64)
	}
	switch name {
	case "always_on":
		return sdktrace.AlwaysSample(), desc, nil
	case "always_off":
		return sdktrace.NeverSample(), desc, nil
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio), desc, nil
	case "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), desc, nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), desc, nil
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), desc, nil
	}
	return nil, "", config.Errorf("OTEL_TRACES_SAMPLER", "%q is not a sampler keyward has: use parentbased_traceidratio (the default, with OTEL_TRACES_SAMPLER_ARG), parentbased_always_on, always_on, always_off, traceidratio or parentbased_always_off", name)
}

// StartTracing returns the tracer provider the OTEL_* variables of getenv
// ask for (nil when tracing is off) and the function that flushes and
// stops it. It logs one line saying where spans go.
func StartTracing(ctx context.Context, getenv func(string) string, log *slog.Logger, version string) (trace.TracerProvider, func(context.Context), error) {
	s, err := readTracing(getenv)
	if err != nil {
		return nil, nil, err
	}
	if s == nil {
		log.Debug("tracing is off: set OTEL_EXPORTER_OTLP_ENDPOINT to export spans over OTLP (docs/observability.md)")
		return nil, func(context.Context) {}, nil
	}
	var exp sdktrace.SpanExporter
	if s.protocol == "grpc" {
		var opts []otlptracegrpc.Option
		if s.endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(s.endpoint))
		}
		exp, err = otlptracegrpc.New(ctx, opts...)
	} else {
		var opts []otlptracehttp.Option
		switch {
		case s.tracesEndpoint:
			opts = append(opts, otlptracehttp.WithEndpointURL(s.endpoint))
		case s.endpoint != "":
			opts = append(opts, otlptracehttp.WithEndpointURL(strings.TrimRight(s.endpoint, "/")+"/v1/traces"))
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	}
	if err != nil {
		return nil, nil, config.Errorf(endpointVar(s), "cannot export traces: %v", err)
	}
	res, err := resource.New(ctx, resource.WithAttributes(attribute.String("service.name", s.service), attribute.String("service.version", version)),
		resource.WithFromEnv())
	if err != nil {
		// A malformed OTEL_RESOURCE_ATTRIBUTES: the attributes that parsed
		// are kept.
		log.Warn("tracing: OTEL_RESOURCE_ATTRIBUTES is malformed; fix it to KEY=VALUE,KEY=VALUE", "err", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithSampler(s.sampler), sdktrace.WithResource(res))
	log.Info("tracing: exporting spans over OTLP", "protocol", s.protocol, "endpoint", describeEndpoint(s), "sampler", s.samplerName, "service", s.service)
	return tp, func(ctx context.Context) {
		if err := tp.Shutdown(ctx); err != nil {
			log.Warn("tracing: flushing the last spans failed", "err", err)
		}
	}, nil
}

// describeEndpoint names where spans go, for the log: the configured URL
// without user info or query (they may hold credentials), or the
// exporter's default.
func describeEndpoint(s *tracingSettings) string {
	if s.endpoint == "" {
		if s.protocol == "grpc" {
			return "localhost:4317 (default)"
		}
		return "http://localhost:4318/v1/traces (default)"
	}
	u, _ := url.Parse(s.endpoint)
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}
