package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/keyward/keyward/tracing"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// queryTracer makes a client span for each query run inside a sampled
// (recording) span, named after the statement's operation ("postgres
// SELECT"). It records the operation only: never the statement's text
// nor its arguments, which hold key hashes, sealed secrets and the rest.
// Queries outside a traced request (background jobs) make no span.
type queryTracer struct{ tracer trace.Tracer }

var _ pgx.QueryTracer = queryTracer{}

func (t queryTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx
	}
	op := tracing.SQLOperation(data.SQL)
	ctx, _ = t.tracer.Start(ctx, "postgres "+op, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("db.system.name", "postgresql"), attribute.String("db.operation.name", op)))
	return ctx
}

func (t queryTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	if data.Err != nil {
		// The message may quote a value: only its SQLSTATE class is kept.
		span.SetStatus(codes.Error, "the query failed")
		if code := errorCode(data.Err); code != "" {
			span.SetAttributes(attribute.String("db.response.status_code", code))
		}
	}
	span.End()
}

// errorCode is the SQLSTATE of err, or "" if it carries none.
func errorCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}
