package sqlite_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keywardtest"
)

// TestStorageFull fills a database capped at its size (SQLITE_FULL, as a
// full disk answers): writes fail as "storage full", distinguishable from
// other outages, logged once at error level however many fail; reads go
// on; when there is room again writes resume and the episode ends.
func TestStorageFull(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "keyward.db"))
	var logs bytes.Buffer
	s.Storage().SetLogger(slog.New(slog.NewTextHandler(&logs, nil)))
	ctx := t.Context()
	h := keywardtest.NewHasher(t)
	acc := keywardtest.NewAccount(t, s, "acme")
	key := keywardtest.NewAdminKey(t, s, h, acc.ID)

	if err := s.LimitPages(ctx, 0); err != nil {
		t.Fatal(err)
	}
	var failed []error
	for i := 0; len(failed) < 5 && i < 1000; i++ {
		now := keywardtest.Now()
		a := &keyward.Account{ID: apikey.NewID("acc"), Name: fmt.Sprintf("filler-%d-%s", i, strings.Repeat("x", 200)), CreatedAt: now, UpdatedAt: now}
		if err := s.CreateAccount(ctx, keyward.Change{}, a); err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) < 5 {
		t.Fatalf("the capped database took every write")
	}
	for _, err := range failed {
		if keyward.ErrorCode(err) != keyward.EUNAVAILABLE || !errors.Is(err, keyward.ErrStorageFull) || !strings.Contains(keyward.ErrorMessage(err), "storage full") {
			t.Fatalf("write to a full database: %v (code %s), want EUNAVAILABLE storage full", err, keyward.ErrorCode(err))
		}
	}
	if !s.Storage().Full() || s.Storage().Episodes() != 1 {
		t.Fatalf("Full = %v, Episodes = %d; want full, one episode", s.Storage().Full(), s.Storage().Episodes())
	}
	if n := strings.Count(logs.String(), "level=ERROR msg=\"storage full"); n != 1 {
		t.Fatalf("%d error lines saying storage full for %d refused writes, want 1:\n%s", n, len(failed), logs.String())
	}
	// Reads go on: verification still finds keys.
	if k, err := s.KeyByHash(ctx, h.Hash(key.Secret)); err != nil || k.ID != key.ID {
		t.Fatalf("reading a key from a full database: %v, %v", k, err)
	}

	if err := s.LimitPages(ctx, 1<<20); err != nil {
		t.Fatal(err)
	}
	keywardtest.NewAccount(t, s, "after")
	if s.Storage().Full() || !strings.Contains(logs.String(), "storage has room again") {
		t.Fatalf("after a write succeeded: Full = %v, logs:\n%s", s.Storage().Full(), logs.String())
	}
}
