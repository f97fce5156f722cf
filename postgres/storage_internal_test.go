package postgres

import (
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/sqlstore"
)

// TestDiskFullIsStorageFull: PostgreSQL's disk_full (53100) is told apart
// from other outages as storage full; other insufficient-resources errors
// stay "database unavailable".
func TestDiskFullIsStorageFull(t *testing.T) {
	t.Parallel()
	var (
		d       dialect
		storage keyward.StorageFull
	)
	err := d.Classify(&pgconn.PgError{Code: "53100", Message: "could not extend file"}, sqlstore.Conflicts{}, &storage)
	if keyward.ErrorCode(err) != keyward.EUNAVAILABLE || !errors.Is(err, keyward.ErrStorageFull) || !storage.Full() {
		t.Fatalf("disk_full: %v (code %s), Full = %v; want EUNAVAILABLE storage full", err, keyward.ErrorCode(err), storage.Full())
	}
	err = d.Classify(&pgconn.PgError{Code: "53300", Message: "too many connections"}, sqlstore.Conflicts{}, &storage)
	if keyward.ErrorCode(err) != keyward.EUNAVAILABLE || errors.Is(err, keyward.ErrStorageFull) {
		t.Fatalf("too_many_connections: %v, want EUNAVAILABLE but not storage full", err)
	}
}

// TestForeignKeyIsNotFound: a foreign key violation (23503) is ENOTFOUND
// with the message given for it, the PgError kept as the cause; a unique
// violation is ECONFLICT, with the primary key's message for a _pkey.
func TestForeignKeyIsNotFound(t *testing.T) {
	t.Parallel()
	var (
		d       dialect
		storage keyward.StorageFull
	)
	c := sqlstore.Conflicts{PK: "id taken", Unique: "name taken", FK: "account missing"}
	for _, tc := range []struct {
		pe        *pgconn.PgError
		code, msg string
	}{
		{&pgconn.PgError{Code: "23503", ConstraintName: "users_account_fkey"}, keyward.ENOTFOUND, "account missing"},
		{&pgconn.PgError{Code: "23505", ConstraintName: "accounts_pkey"}, keyward.ECONFLICT, "id taken"},
		{&pgconn.PgError{Code: "23505", ConstraintName: "accounts_name_key"}, keyward.ECONFLICT, "name taken"},
	} {
		err := d.Classify(tc.pe, c, &storage)
		var pe *pgconn.PgError
		if keyward.ErrorCode(err) != tc.code || keyward.ErrorMessage(err) != tc.msg || !errors.As(err, &pe) || pe.Code != tc.pe.Code {
			t.Errorf("%s %s: %v (code %s, message %q); want %s %q wrapping the PgError",
				tc.pe.Code, tc.pe.ConstraintName, err, keyward.ErrorCode(err), keyward.ErrorMessage(err), tc.code, tc.msg)
		}
	}
}
