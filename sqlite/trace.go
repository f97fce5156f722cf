package sqlite

import (
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"errors"
	"strconv"
	"strings"

	"github.com/XSAM/otelsql"
	"github.com/keyward/keyward/tracing"
	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	driver "modernc.org/sqlite"
)

// Options are the settings of OpenOptions beyond the path.
type Options struct {
	// TracerProvider traces the queries run inside a sampled request: a
	// client span per statement, transaction begin and commit, named
	// after the operation ("sqlite SELECT"), with neither the statement's
	// text nor its arguments. Nil (or a no-op provider) opens the
	// database untraced: no wrapper, no work per query.
	TracerProvider trace.TracerProvider

	// UnsafeNoSync is for tests only: it opens the database with
	// PRAGMA synchronous(OFF), so no commit waits for an fsync. A commit
	// then survives the process crashing but not the machine losing
	// power, which a revocation must. Tests set it (keywardtest) because
	// they throw their databases away and a suite pays an fsync per
	// write otherwise; no configuration setting reaches it
	// (internal/server opens the store with TracerProvider only).
	UnsafeNoSync bool
}

// sqlOpen opens dsn with the sqlite driver, wrapped to trace queries when
// tp traces.
func sqlOpen(dsn string, tp trace.TracerProvider) (*sql.DB, error) {
	if tracing.Tracer(tp) == nil {
		return sql.Open("sqlite", dsn)
	}
	return otelsql.Open("sqlite", dsn,
		otelsql.WithTracerProvider(tp),
		// keyward's metrics are its own; the wrapper's would cost a
		// histogram update per query for nothing.
		otelsql.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelsql.WithAttributes(attribute.String("db.system.name", "sqlite")),
		otelsql.WithSpanNameFormatter(spanName),
		otelsql.WithSpanOptions(otelsql.SpanOptions{
			DisableQuery:         true, // the text stays out, and so do the arguments
			DisableErrSkip:       true,
			OmitConnResetSession: true,
			OmitConnPrepare:      true,
			OmitRows:             true,
			OmitConnectorConnect: true,
			// An error's message may quote a value: only its result
			// code is kept (spanErrorAttributes).
			RecordError: func(error) bool { return false },
			// Background work (usage flushes, the outbox) outside a
			// sampled request makes no span.
			SpanFilter: func(ctx context.Context, _ otelsql.Method, _ string, _ []sqldriver.NamedValue) bool {
				return trace.SpanFromContext(ctx).IsRecording()
			},
		}),
		otelsql.WithSpanErrorAttributesGetter(spanErrorAttributes),
	)
}

// spanName is "sqlite " and the statement's operation, or the call's
// method ("sqlite commit") when there is no statement.
func spanName(_ context.Context, method otelsql.Method, query string) string {
	if query == "" {
		m := string(method)
		return "sqlite " + m[strings.LastIndexByte(m, '.')+1:]
	}
	return "sqlite " + tracing.SQLOperation(query)
}

// spanErrorAttributes marks a failed query with its SQLite result code.
func spanErrorAttributes(err error) []attribute.KeyValue {
	attrs := []attribute.KeyValue{attribute.String("error.type", "sqlite")}
	var se *driver.Error
	if errors.As(err, &se) {
		attrs = append(attrs, attribute.String("db.response.status_code", strconv.Itoa(se.Code())))
	}
	return attrs
}
