package postgres

import (
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keyward/keyward"
)

// TestDiskFullIsStorageFull: PostgreSQL's disk_full (53100) is told apart
// from other outages as storage full; other insufficient-resources errors
// stay "database unavailable".
func TestDiskFullIsStorageFull(t *testing.T) {
	var s Store
	err := s.dbError(&pgconn.PgError{Code: "53100", Message: "could not extend file"}, nil)
	if keyward.ErrorCode(err) != keyward.EUNAVAILABLE || !errors.Is(err, keyward.ErrStorageFull) || !s.Storage().Full() {
		t.Fatalf("disk_full: %v (code %s), Full = %v; want EUNAVAILABLE storage full", err, keyward.ErrorCode(err), s.Storage().Full())
	}
	err = s.dbError(&pgconn.PgError{Code: "53300", Message: "too many connections"}, nil)
	if keyward.ErrorCode(err) != keyward.EUNAVAILABLE || errors.Is(err, keyward.ErrStorageFull) {
		t.Fatalf("too_many_connections: %v, want EUNAVAILABLE but not storage full", err)
	}
}
