package keywardtest

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// TestQueriesTraced is the tracing contract of a SQL store: with a tracer
// provider, the queries of a store call inside a sampled span are its
// client spans, named "<system> <OPERATION>" ("sqlite SELECT"), with
// neither the statement nor its arguments (a key hash, an account name
// here); calls outside a span make none. open opens a new store traced by
// tp.
func TestQueriesTraced(t *testing.T, system string, open func(t *testing.T, tp trace.TracerProvider) keyward.Store) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	s := open(t, tp)
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
	const name = "an account name only the arguments carry"
	now := Now()
	if err := s.CreateAccount(ctx, keyward.Change{}, &keyward.Account{ID: apikey.NewID("acc"), Name: name, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	// A failing statement keeps its error's meaning, and its span says
	// it failed with the database's code, not its message.
	if err := s.CreateAccount(ctx, keyward.Change{}, &keyward.Account{ID: apikey.NewID("acc"), Name: name, CreatedAt: now, UpdatedAt: now}); keyward.ErrorCode(err) != keyward.ECONFLICT {
		t.Fatalf("CreateAccount of a taken name: %v, want %s", err, keyward.ECONFLICT)
	}
	parent.End()

	names := map[string]bool{}
	failed := 0
	for _, sp := range exp.GetSpans() {
		if sp.Name == "request" {
			continue
		}
		names[sp.Name] = true
		for _, a := range sp.Attributes {
			if a.Key == "db.response.status_code" && a.Value.String() != "" {
				failed++
			}
		}
		if !strings.HasPrefix(sp.Name, system+" ") || sp.Parent.SpanID() != parent.SpanContext().SpanID() || sp.SpanKind != trace.SpanKindClient {
			t.Errorf("span %q (kind %s, parent %s), want a %s client span under the request", sp.Name, sp.SpanKind, sp.Parent.SpanID(), system)
		}
		for _, a := range sp.Attributes {
			v := a.Value.String()
			if strings.Contains(strings.ToLower(v), "key_hash") || strings.Contains(strings.ToLower(v), "insert into") ||
				strings.Contains(v, hex.EncodeToString(h[:])) || strings.Contains(v, string(h[:])) || strings.Contains(v, name) {
				t.Errorf("span %q attribute %s holds the statement or its argument: %q", sp.Name, a.Key, v)
			}
		}
	}
	if failed != 1 {
		t.Errorf("%d spans carry a database error code, want 1 (the taken name's INSERT)", failed)
	}
	for _, want := range []string{system + " SELECT", system + " INSERT"} {
		if !names[want] {
			t.Errorf("no %q span; spans: %v", want, names)
		}
	}
}
