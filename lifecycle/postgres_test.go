package lifecycle_test

import (
	"database/sql"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/keyward/keyward"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/lifecycle"
	"github.com/keyward/keyward/postgres"
)

// sharedSchema opens n stores on one new schema of the test database, as n
// instances share it, and a connection pool to the database; the schema
// (returned) is dropped when the test ends.
func sharedSchema(t *testing.T, n int) ([]*postgres.Store, *sql.DB, string) {
	t.Helper()
	dbURL := keywardtest.PostgresURL(t)
	schema := keywardtest.NewPostgresSchema(t, dbURL)
	stores := make([]*postgres.Store, n)
	for i := range stores {
		s, err := postgres.OpenOptions(t.Context(), dbURL, postgres.Options{Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return stores, db, schema
}

// TestInstancesShareTheWork runs the jobs of two instances on one
// PostgreSQL database at the same time, again and again as the clock moves:
// each expired key is announced once, each key due for rotation once, and
// each retired key deleted once, whichever instance does it.
func TestInstancesShareTheWork(t *testing.T) {
	stores, db, schema := sharedSchema(t, 2)
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	c := &clock{t: t0}
	cfg := lifecycle.Config{Settings: lifecycle.Settings{KeyRetention: 6 * time.Hour}, BatchSize: 7}
	a, b := newInstance(t, stores[0], c, cfg), newInstance(t, stores[1], c, cfg)
	s, h := stores[0], keywardtest.NewHasher(t)
	acct := keywardtest.NewAccount(t, s, "acme")
	if err := s.SetRotationPolicy(t.Context(), keyward.Change{}, &keyward.RotationPolicy{AccountID: acct.ID, MaxAge: keyward.Duration(2 * time.Hour), UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	const n = 40
	var expiring []string
	for i := range n {
		k := keywardtest.NewKey(t, s, h, keyward.Key{Role: keyward.RoleAccountAdmin, AccountID: acct.ID, CreatedAt: t0,
			ExpiresAt: ptr(t0.Add(time.Duration(1+i%4) * time.Hour))})
		expiring = append(expiring, k.ID)
	}
	var lasting []string // due for rotation at 2h, never expire
	for range n {
		lasting = append(lasting, keywardtest.NewKey(t, s, h, keyward.Key{Role: keyward.RoleAccountAdmin, AccountID: acct.ID, CreatedAt: t0}).ID)
	}

	ran := map[string]int{}
	for range 12 { // 12 hours, one run of each instance an hour, at once
		var wg sync.WaitGroup
		results := make([][]lifecycle.Result, 2)
		for i, in := range []*instance{a, b} {
			wg.Go(func() {
				res, err := in.runner.RunOnce(t.Context())
				if err != nil {
					t.Errorf("instance %d: RunOnce: %v", i, err)
				}
				results[i] = res
			})
		}
		wg.Wait()
		for _, res := range results {
			for _, r := range res {
				if r.Ran {
					ran[r.Job]++
				}
			}
		}
		c.Add(time.Hour)
	}
	if t.Failed() {
		return
	}
	got := byKey(events(t, db, "SELECT type, data FROM "+schema+".webhook_events"))
	for _, id := range expiring {
		// Expired keys are due for rotation too, unless they expired
		// first (at 1h): those expiring at 2h, 3h and 4h are announced.
		if got[keyward.EventKeyExpired][id] != 1 {
			t.Errorf("key %s: %d key.expired events, want 1", id, got[keyward.EventKeyExpired][id])
		}
	}
	for _, id := range lasting {
		if got[keyward.EventKeyRotationDue][id] != 1 {
			t.Errorf("key %s: %d key.rotation_due events, want 1", id, got[keyward.EventKeyRotationDue][id])
		}
		if _, err := s.Key(t.Context(), id); err != nil {
			t.Errorf("live key %s: %v", id, err)
		}
	}
	if len(got[keyward.EventKeyExpired]) != n {
		t.Errorf("key.expired events for %d keys, want %d", len(got[keyward.EventKeyExpired]), n)
	}
	// Every expiring key expired by 4h and was deleted 6h later.
	for _, id := range expiring {
		if _, err := s.Key(t.Context(), id); keyward.ErrorCode(err) != keyward.ENOTFOUND {
			t.Errorf("retired key %s not deleted: %v", id, err)
		}
	}
	var deletes int
	if err := db.QueryRowContext(t.Context(), "SELECT count(*) FROM "+schema+".audit_log WHERE action = 'key.delete'").Scan(&deletes); err != nil {
		t.Fatal(err)
	}
	if deletes != n {
		t.Errorf("%d key.delete audit entries, want %d (one per retired key)", deletes, n)
	}
	for _, job := range lifecycle.Jobs {
		if ran[job] < 12 {
			t.Errorf("job %s ran %d times in 12 rounds of two instances, want at least 12", job, ran[job])
		}
	}
}
