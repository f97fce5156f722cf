package postgres_test

import (
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/keywardtest"
)

func TestAuditTamper(t *testing.T) {
	keywardtest.TestAuditTamper(t, func(t *testing.T) (keyward.Store, func(string, ...any) error) {
		dbURL := keywardtest.PostgresURL(t)
		schema := keywardtest.NewPostgresSchema(t, dbURL)
		s, conn := open(t, dbURL, schema), rawConn(t, dbURL)
		if _, err := conn.Exec(t.Context(), "SET search_path TO "+schema); err != nil {
			t.Fatal(err)
		}
		return s, func(query string, args ...any) error {
			_, err := conn.Exec(t.Context(), query, args...)
			return err
		}
	})
}
