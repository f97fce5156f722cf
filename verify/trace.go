package verify

import (
	"context"

	"github.com/keyward/keyward"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Tracing (Config.TracerProvider). The engine never starts a trace of its
// own: it records only inside a request whose span is sampled (recording),
// so an unsampled request costs a context lookup, and with tracing off the
// hot path does nothing but check that Engine.tracer is nil.
//
// A verification is the span keyward.verify, with the events cache.hit or
// cache.miss, and on a miss the child span keyward.store.key_by_hash for
// the store lookup (once for all the requests a lookup serves). Their
// attributes are the decision and the key's id, never the key or its hash.
const (
	spanVerify      = "keyward.verify"
	spanStoreLookup = "keyward.store.key_by_hash"
	eventCacheHit   = "cache.hit"
	eventCacheMiss  = "cache.miss"
)

// startSpan starts the span name as a child of the recording span in ctx;
// without one it returns ctx and a nil span.
func (e *Engine) startSpan(ctx context.Context, name string) (context.Context, trace.Span) {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, nil
	}
	return e.tracer.Start(ctx, name)
}

// addEvent adds the event name to the recording span in ctx, if any.
func addEvent(ctx context.Context, name string) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent(name)
	}
}

// endVerifySpan records the decision of res (and the id of the key found)
// and ends span.
func endVerifySpan(span trace.Span, res *Result) {
	span.SetAttributes(attribute.String("keyward.decision", string(res.Decision)))
	if id := res.KeyID(); id != "" {
		span.SetAttributes(attribute.String("keyward.key_id", id))
	}
	span.End()
}

// endLookupSpan records the outcome of a store lookup and ends span.
func endLookupSpan(span trace.Span, err error) {
	found := err == nil
	if code := keyward.ErrorCode(err); code != "" && code != keyward.ENOTFOUND {
		span.SetStatus(codes.Error, "the store could not answer: "+code)
	}
	span.SetAttributes(attribute.Bool("keyward.found", found))
	span.End()
}
