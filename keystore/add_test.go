package keystore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/keyward/keyward"
)

// TestAddConcurrent: adds racing on one file each hold the file's lock, so
// every entry survives and every token verifies.
func TestAddConcurrent(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keys.yaml")
	const n = 16
	tokens := make([]keyward.Secret, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			tokens[i], errs[i] = Add(file, NewEntry{ID: fmt.Sprintf("key-%d", i), Subject: "svc", Role: keyward.RoleUser})
		})
	}
	wg.Wait()
	ks, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if ks.Len() != n {
		t.Errorf("the file holds %d keys after %d adds: %v", ks.Len(), n, ks.IDs())
	}
	for i, tok := range tokens {
		if errs[i] != nil {
			t.Errorf("add %d: %v", i, errs[i])
			continue
		}
		res, _ := ks.VerifyKey(context.Background(), keyward.VerifyRequest{Key: tok.Reveal()})
		if !res.Valid || res.KeyID != fmt.Sprintf("key-%d", i) {
			t.Errorf("the token of key-%d verifies as %+v", i, res)
		}
	}
}

// TestAddLocksOnlyItsFile: the lock of one keystore file does not hold up
// an add to another file in the same directory, and Add leaves only the
// lock file beside the file it wrote.
func TestAddLocksOnlyItsFile(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
	unlock, err := lockFile(a)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if _, err := Add(b, NewEntry{ID: "x", Role: keyward.RoleUser}); err != nil {
		t.Fatalf("add to b while a is locked: %v", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if fmt.Sprint(names) != "[.a.yaml.lock .b.yaml.lock b.yaml]" {
		t.Errorf("the directory holds %v", names)
	}
}
