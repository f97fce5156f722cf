package verify_test

import (
	"context"
	"encoding/hex"
	"slices"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/tracing"
	"github.com/keyward/keyward/verify"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// tracedEnv is an env whose engine traces into an in-memory exporter,
// every root span sampled.
func tracedEnv(t *testing.T) (*env, *tracetest.InMemoryExporter, trace.Tracer) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	e := newEnv(t, func(c *verify.Config) { c.TracerProvider = tp })
	return e, exp, tracing.Tracer(tp)
}

// TestVerifyTracesSampledRequests: inside a sampled request a
// verification is a child span keyward.verify with the event cache.miss
// and a child span for the store lookup, then, cached, the event cache.hit
// and no lookup; its attributes hold the decision and the key's id, never
// the key or its hash.
func TestVerifyTracesSampledRequests(t *testing.T) {
	e, exp, tracer := tracedEnv(t)
	k := e.key(keyward.Key{})
	for range 2 {
		ctx, root := tracer.Start(e.ctx, "request")
		if d := e.engine.Verify(ctx, verify.Request{Key: k.Secret}).Decision; d != keyward.DecisionValid {
			t.Fatalf("Decision = %s", d)
		}
		root.End()
	}
	spans := exp.GetSpans()
	var names []string
	byName := map[string][]tracetest.SpanStub{}
	for _, s := range spans {
		names = append(names, s.Name)
		byName[s.Name] = append(byName[s.Name], s)
		for _, a := range s.Attributes {
			v := a.Value.String()
			if strings.Contains(v, k.Secret) || strings.Contains(v, hex.EncodeToString(k.Key.Hash[:])) {
				t.Errorf("span %s attribute %s holds the key or its hash", s.Name, a.Key)
			}
		}
	}
	slices.Sort(names)
	want := []string{"keyward.store.key_by_hash", "keyward.verify", "keyward.verify", "request", "request"}
	if !slices.Equal(names, want) {
		t.Fatalf("spans %v, want %v", names, want)
	}
	verifies := byName["keyward.verify"]
	for i, ev := range []string{"cache.miss", "cache.hit"} {
		v := verifies[i]
		if len(v.Events) != 1 || v.Events[0].Name != ev {
			t.Errorf("verification %d: events %v, want [%s]", i, v.Events, ev)
		}
		if v.Parent.SpanID() != byName["request"][i].SpanContext.SpanID() {
			t.Errorf("verification %d is not a child of its request", i)
		}
		attrs := map[string]string{}
		for _, a := range v.Attributes {
			attrs[string(a.Key)] = a.Value.String()
		}
		if attrs["keyward.decision"] != string(keyward.DecisionValid) || attrs["keyward.key_id"] != k.Key.ID {
			t.Errorf("verification %d: attributes %v", i, attrs)
		}
	}
	if l := byName["keyward.store.key_by_hash"][0]; l.Parent.SpanID() != verifies[0].SpanContext.SpanID() {
		t.Errorf("the store lookup is not a child of the first verification")
	}
}

// TestVerifyTracesNothingUnsampled: a verification outside a sampled
// request records nothing, and a cache hit then allocates nothing, as with
// tracing off.
func TestVerifyTracesNothingUnsampled(t *testing.T) {
	e, exp, tracer := tracedEnv(t)
	k := e.key(keyward.Key{})
	req := verify.Request{Key: k.Secret}
	e.want(k.Secret, keyward.DecisionValid)
	unsampled, span := tracer.Start(e.ctx, "request", trace.WithNewRoot())
	span.End()
	exp.Reset()
	ctx := trace.ContextWithSpanContext(e.ctx, span.SpanContext().WithTraceFlags(0))
	for _, c := range []context.Context{e.ctx, ctx, unsampled} {
		if d := e.engine.Verify(c, req).Decision; d != keyward.DecisionValid {
			t.Fatalf("Decision = %s", d)
		}
	}
	if spans := exp.GetSpans(); len(spans) != 0 {
		t.Errorf("exported %d spans without a sampled request", len(spans))
	}
	if raceEnabled {
		return
	}
	if n := testing.AllocsPerRun(100, func() { e.engine.Verify(ctx, req) }); n != 0 {
		t.Errorf("an unsampled cache hit with tracing on allocates %v times, want 0", n)
	}
}
