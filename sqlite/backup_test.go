package sqlite_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/sqlite"
)

// TestBackup copies a database that is being written to: the copy is
// whole (it holds what was only in the WAL), private, self-contained,
// consistent, and opens read-only without changing anything.
func TestBackup(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	s := open(t, filepath.Join(dir, "keyward.db"))
	h := keywardtest.NewHasher(t)
	acc := keywardtest.NewAccount(t, s, "acme")
	before := keywardtest.NewAdminKey(t, s, h, acc.ID)

	// A writer keeps going while the copy is taken.
	stop := make(chan struct{})
	var (
		wg       sync.WaitGroup
		writeErr error
	)
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			now := keywardtest.Now()
			if err := s.CreateAccount(ctx, keyward.Change{}, &keyward.Account{ID: apikey.NewID("acc"), Name: fmt.Sprintf("writer-%d", i), CreatedAt: now, UpdatedAt: now}); err != nil {
				writeErr = err
				return
			}
		}
	})
	dst := filepath.Join(dir, "backup", "keyward.db")
	if err := os.Mkdir(filepath.Dir(dst), 0o700); err != nil {
		t.Fatal(err)
	}
	err := sqlite.Backup(ctx, s.Path(), dst)
	close(stop)
	wg.Wait()
	if writeErr != nil {
		t.Fatalf("writing during the backup: %v", writeErr)
	}
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the copy: %v, %v", err, fi)
	}
	if err := sqlite.Backup(ctx, s.Path(), dst); err == nil {
		t.Error("Backup over an existing file succeeded")
	}
	if err := sqlite.Backup(ctx, filepath.Join(dir, "missing.db"), filepath.Join(dir, "x.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Backup of a missing database: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); err == nil {
		t.Error("Backup of a missing database created it")
	}

	c, err := sqlite.OpenReadOnly(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.CheckIntegrity(ctx); err != nil {
		t.Errorf("CheckIntegrity of the copy: %v", err)
	}
	if v, err := c.AppliedSchemaVersion(ctx); err != nil || v != sqlite.SchemaVersion() {
		t.Errorf("AppliedSchemaVersion = %d, %v; want %d", v, err, sqlite.SchemaVersion())
	}
	if k, err := c.KeyByHash(ctx, before.Key.Hash); err != nil || k.ID != before.ID {
		t.Errorf("the copy lacks a key written before it: %v", err)
	}
	// Consistent: the audit chain ends where the keys do.
	if v := keywardtest.VerifyAudit(t, c); !v.OK {
		t.Errorf("the copy's audit chain: %+v", v)
	}
	// Read-only: writes fail, and nothing appears beside the file.
	if err := c.CreateAccount(ctx, keyward.Change{}, &keyward.Account{ID: "acc_x", Name: "x", CreatedAt: keywardtest.Now(), UpdatedAt: keywardtest.Now()}); err == nil {
		t.Error("a write to the read-only copy succeeded")
	}
	entries, _ := os.ReadDir(filepath.Dir(dst))
	if len(entries) != 1 {
		t.Errorf("the backup directory holds %d files, want only the copy (no -wal, -shm, -journal)", len(entries))
	}

	// A damaged file fails the integrity check (or cannot be opened).
	b, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(b) / 2; i < len(b); i++ {
		b[i] ^= 0x5a
	}
	bad := filepath.Join(dir, "bad.db")
	if err := os.WriteFile(bad, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if d, err := sqlite.OpenReadOnly(ctx, bad); err == nil {
		defer d.Close()
		if err := d.CheckIntegrity(ctx); err == nil {
			t.Error("CheckIntegrity of a damaged file found nothing")
		}
	}
}
