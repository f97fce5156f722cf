package sqlite_test

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/keywardtest"
)

// TestLookupFlagsBackfilled upgrades a database written before migration
// 0021 (its flags and triggers removed, its record of 0021 deleted): the
// migration sets keys.has_roles, users.has_meter and accounts.has_meter
// from the rows already there, so KeyByHash still reads the roles and the
// user's and account's shared limits of existing keys.
func TestLookupFlagsBackfilled(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keyward.db")
	h := keywardtest.NewHasher(t)
	s := open(t, path)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Millisecond)
	a := keywardtest.NewAccount(t, s, "acme")
	if err := s.CreateRole(ctx, keyward.Change{}, &keyward.NamedRole{AccountID: a.ID, Name: "reader",
		Permissions: []string{"memories:read"}, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	meter := &keyward.Meter{ID: a.ID, Level: keyward.LevelAccount, AccountID: a.ID, UpdatedAt: now,
		RateLimits: []keyward.RateLimit{{Name: "shared", Limit: 10, Window: keyward.Duration(time.Minute)}}}
	if err := s.SetMeter(ctx, keyward.Change{}, meter); err != nil {
		t.Fatal(err)
	}
	u := keywardtest.NewUser(t, s, a.ID, "ann")
	userMeter := &keyward.Meter{ID: u.ID, Level: keyward.LevelUser, AccountID: a.ID, UpdatedAt: now,
		RateLimits: []keyward.RateLimit{{Name: "per-user", Limit: 5, Window: keyward.Duration(time.Minute)}}}
	if err := s.SetMeter(ctx, keyward.Change{}, userMeter); err != nil {
		t.Fatal(err)
	}
	k := keywardtest.NewKey(t, s, h, keyward.Key{Role: keyward.RoleUser, AccountID: a.ID, UserID: u.ID, Roles: []string{"reader"}})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	db := rawDB(t, path)
	for _, stmt := range []string{
		"DROP TRIGGER key_roles_flag_insert", "DROP TRIGGER key_roles_flag_delete",
		"DROP TRIGGER meters_flag_insert", "DROP TRIGGER meters_flag_delete",
		"ALTER TABLE keys DROP COLUMN has_roles", "ALTER TABLE users DROP COLUMN has_meter", "ALTER TABLE accounts DROP COLUMN has_meter",
		"DELETE FROM schema_migrations WHERE version = 21",
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	db.Close()

	s = open(t, path)
	got, err := s.KeyByHash(ctx, k.Hash)
	if err != nil {
		t.Fatalf("KeyByHash after the upgrade: %v", err)
	}
	if !slices.Equal(got.Roles, []string{"reader"}) || !slices.Equal(got.RolePermissions, []string{"memories:read"}) {
		t.Errorf("after the upgrade the key has roles %q with %q; want [reader] with [memories:read]", got.Roles, got.RolePermissions)
	}
	if got.AccountMeter == nil || !slices.Equal(got.AccountMeter.RateLimits, meter.RateLimits) {
		t.Errorf("after the upgrade the key mirrors account meter %+v; want %+v", got.AccountMeter, meter)
	}
	if got.UserMeter == nil || !slices.Equal(got.UserMeter.RateLimits, userMeter.RateLimits) {
		t.Errorf("after the upgrade the key mirrors user meter %+v; want %+v", got.UserMeter, userMeter)
	}
}
