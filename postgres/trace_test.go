package postgres_test

import (
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/postgres"
	"go.opentelemetry.io/otel/trace"
)

// TestQueriesTraced: PostgreSQL meets the tracing contract of a SQL store.
func TestQueriesTraced(t *testing.T) {
	t.Parallel()
	keywardtest.TestQueriesTraced(t, "postgres", func(t *testing.T, tp trace.TracerProvider) keyward.Store {
		dbURL := keywardtest.PostgresURL(t)
		s, err := postgres.OpenOptions(t.Context(), keywardtest.PostgresNoSync(dbURL), postgres.Options{Schema: keywardtest.NewPostgresSchema(t, dbURL), TracerProvider: tp})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
