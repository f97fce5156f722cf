package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/keywardtest"
)

func TestAuditTamper(t *testing.T) {
	t.Parallel()
	keywardtest.TestAuditTamper(t, func(t *testing.T) (keyward.Store, func(string, ...any) error) {
		path := filepath.Join(t.TempDir(), "keyward.db")
		s, db := keywardtest.OpenSQLiteStore(t, path), rawDB(t, path)
		return s, func(query string, args ...any) error {
			_, err := db.ExecContext(t.Context(), query, args...)
			return err
		}
	})
}
