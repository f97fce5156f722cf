package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/sqlite"
	"go.opentelemetry.io/otel/trace"
)

// TestQueriesTraced: SQLite meets the tracing contract of a SQL store.
func TestQueriesTraced(t *testing.T) {
	t.Parallel()
	keywardtest.TestQueriesTraced(t, "sqlite", func(t *testing.T, tp trace.TracerProvider) keyward.Store {
		s, err := sqlite.OpenOptions(t.Context(), filepath.Join(t.TempDir(), "keyward.db"), sqlite.Options{TracerProvider: tp, UnsafeNoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
