package postgres_test

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/postgres"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestQueriesTraced: with a tracer provider, the queries of a store call
// inside a sampled span are its client spans, named by operation, with
// neither the statement nor its arguments (a key hash here); calls outside
// a span make none.
func TestQueriesTraced(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	dbURL := keywardtest.PostgresURL(t)
	s, err := postgres.OpenOptions(t.Context(), dbURL, postgres.Options{Schema: keywardtest.NewPostgresSchema(t, dbURL), TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var h keyward.KeyHash
	copy(h[:], "a hash no key has, in any table!")
	if _, err := s.KeyByHash(t.Context(), h); keyward.ErrorCode(err) != keyward.ENOTFOUND {
		t.Fatalf("KeyByHash outside a span: %v", err)
	}
	if n := len(exp.GetSpans()); n != 0 {
		t.Fatalf("%d spans without a sampled parent", n)
	}
	ctx, parent := tp.Tracer("test").Start(t.Context(), "request")
	if _, err := s.KeyByHash(ctx, h); keyward.ErrorCode(err) != keyward.ENOTFOUND {
		t.Fatalf("KeyByHash: %v", err)
	}
	parent.End()
	var queries int
	for _, sp := range exp.GetSpans() {
		if sp.Name == "request" {
			continue
		}
		queries++
		if sp.Name != "postgres SELECT" || sp.Parent.SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("span %q (parent %s), want postgres SELECT under the request", sp.Name, sp.Parent.SpanID())
		}
		for _, a := range sp.Attributes {
			v := a.Value.String()
			if strings.Contains(strings.ToLower(v), "key_hash") || strings.Contains(v, hex.EncodeToString(h[:])) || strings.Contains(v, string(h[:])) {
				t.Errorf("span %q attribute %s holds the statement or its argument: %q", sp.Name, a.Key, v)
			}
		}
	}
	if queries == 0 {
		t.Error("no query span")
	}
}
