package postgres_test

import (
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/keywardtest"
)

func TestAuditTamper(t *testing.T) {
	t.Parallel()
	dbURL := keywardtest.PostgresURL(t)
	schemas := keywardtest.NewPostgresSchemas(t, dbURL)
	keywardtest.TestAuditTamper(t, func(t *testing.T) (keyward.Store, func(string, ...any) error) {
		s, conn := schemas.Open(t), rawConn(t, dbURL)
		if _, err := conn.Exec(t.Context(), "SET search_path TO "+s.Schema()); err != nil {
			t.Fatal(err)
		}
		return s, func(query string, args ...any) error {
			_, err := conn.Exec(t.Context(), query, args...)
			return err
		}
	})
}
