package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/keystore"
	"github.com/keyward/keyward/sqlite"
)

// TestEndToEndImport imports keys of another system as SHA-256 digests with
// the CLI binary, verifies each over HTTP, and checks in the database that
// the first use replaced each digest by the peppered hash; the keys keep
// verifying after a restart, from the store.
func TestEndToEndImport(t *testing.T) {
	requireBinary(t)
	data := filepath.Join(t.TempDir(), "data")
	p := startBinary(t, data)
	line := p.stdout.WaitLine(t, "the root key line", nil, func(l string) bool { return strings.HasPrefix(l, "root key: ") })
	root := strings.TrimPrefix(line, "root key: ")

	var acc keyward.Account
	var usr keyward.User
	binaryJSON(t, p.url, root, &acc, "accounts", "create", "--name", "acme")
	binaryJSON(t, p.url, root, &usr, "users", "create", "--account", acc.ID, "--name", "alice", "--external-id", "alice@example.com")

	// Raw keys of the old system: its own formats, and one long token.
	raws := []string{"sk-legacy-9f8e7d6c5b4a39281706f5e4d3c2b1a0", "6f1d0c9b8a7e6d5c4b3a29180f7e6d5c", strings.Repeat("Zz9-", 60)}
	dir := t.TempDir()
	file := filepath.Join(dir, "keys.jsonl")
	src := "# keys of the old service\n" +
		fmt.Sprintf(`{"sha256": %q, "name": "ci", "account": "acme", "user": "alice@example.com", "permissions": ["memories:read"]}`+"\n", keystore.Digest(raws[0])) +
		fmt.Sprintf(`{"sha256": %q, "name": "ops", "role": "account_admin", "account": %q, "meta": {"plan": "pro"}}`+"\n", strings.ToUpper(keystore.Digest(raws[1])), acc.ID) +
		fmt.Sprintf(`{"sha256": %q, "name": "root", "role": "root"}`+"\n", keystore.Digest(raws[2]))
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}

	// Bad files change nothing, and say which line is wrong.
	bad := filepath.Join(dir, "bad.jsonl")
	for _, tc := range []struct {
		content string
		code    int
		want    string
	}{
		{src + `{"sha256": "xyz", "role": "root"}` + "\n", ExitUsage, "line 5: sha256 must be the 64 hex characters"},
		{src + fmt.Sprintf(`{"sha256": %q, "role": "account_admin", "account": "nope"}`, keystore.Digest("other")) + "\n", ExitNotFound, `line 5: account "nope" not found`},
		{src + fmt.Sprintf(`{"sha256": %q, "role": "root"}`, keystore.Digest(raws[1])) + "\n", ExitUsage, "line 5: the same sha256 as line 3"},
	} {
		if err := os.WriteFile(bad, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		r := runBinary(t, p.url, root, "keys", "import", bad)
		if msg := checkFails(t, r, tc.code, []string{"keys", "import"}); !strings.Contains(msg, tc.want) {
			t.Errorf("import of a bad file: %q, want it to contain %q", msg, tc.want)
		}
	}
	var none keyward.KeyList
	binaryJSON(t, p.url, root, &none, "keys", "list", "--account", acc.ID)
	if len(none.Items) != 0 {
		t.Fatalf("a failed import left %d keys", len(none.Items))
	}

	var imp keyward.KeyImportResult
	binaryJSON(t, p.url, root, &imp, "keys", "import", file)
	if len(imp.Imported) != 3 || imp.Counts.Pending != 3 || imp.Imported[0].Line != 2 || imp.Imported[0].ID == "" {
		t.Fatalf("import = %+v", imp)
	}
	// Importing again is a conflict naming the line.
	r := runBinary(t, p.url, root, "keys", "import", file)
	if msg := checkFails(t, r, ExitConflict, []string{"keys", "import"}); !strings.Contains(msg, "line 2: this sha256 is already imported") {
		t.Errorf("second import: %q", msg)
	}

	for i, raw := range raws {
		if res := verifyHTTP(t, p.url, root, raw); !res.Valid || res.KeyID != imp.Imported[i].ID {
			t.Fatalf("verify imported key %d = %+v", i, res)
		}
	}
	if res := verifyHTTP(t, p.url, root, raws[0], "memories:read"); !res.Valid || res.Identity.UserID != usr.ID || res.Identity.AccountID != acc.ID {
		t.Fatalf("verify imported user key = %+v", res)
	}
	if res := verifyHTTP(t, p.url, root, raws[0]+"x"); res.Valid || res.Code != keyward.DecisionMalformed {
		t.Fatalf("verify a near miss = %+v", res)
	}
	p.stop(t)
	first := p

	// In the database: no digest left, each key under its peppered hash.
	pepperText, err := os.ReadFile(filepath.Join(data, "pepper"))
	if err != nil {
		t.Fatal(err)
	}
	peppers, err := config.ParsePepperList(strings.Split(string(pepperText), "\n"), "pepper")
	if err != nil {
		t.Fatal(err)
	}
	decoded := map[int]keyward.Secret{}
	for v, enc := range peppers {
		b, err := config.DecodePepper(enc)
		if err != nil {
			t.Fatal(err)
		}
		decoded[v] = keyward.Secret(b)
	}
	hasher, err := apikey.NewHasher(decoded)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(data, "keyward.db"))
	if err != nil {
		t.Fatal(err)
	}
	for i, raw := range raws {
		if _, err := db.KeyByDigest(ctx, keyward.DigestOf(raw)); keyward.ErrorCode(err) != keyward.ENOTFOUND {
			t.Errorf("key %d: KeyByDigest after first use: %v, want ENOTFOUND", i, err)
		}
		k, err := db.KeyByHash(ctx, hasher.Hash(raw))
		if err != nil || k.ID != imp.Imported[i].ID || k.PepperVersion != hasher.Current() {
			t.Errorf("key %d: KeyByHash(peppered) = %+v, %v; want %s", i, k, err, imp.Imported[i].ID)
		}
	}
	if c, err := db.KeyImportCounts(ctx); err != nil || c.Pending != 0 || c.Adopted != 3 {
		t.Errorf("KeyImportCounts = %+v, %v; want 0 pending, 3 adopted", c, err)
	}
	if entries, _, err := db.AuditEntries(ctx, keyward.AuditFilter{Action: "key.import"}, keyward.Page{}); err != nil || len(entries) != 1 {
		t.Errorf("key.import audit entries: %d, %v; want 1", len(entries), err)
	}
	db.Close()

	// After a restart the keys verify from the store, by the normal path.
	p = startBinary(t, data)
	for i, raw := range raws {
		if res := verifyHTTP(t, p.url, root, raw); !res.Valid || res.KeyID != imp.Imported[i].ID {
			t.Errorf("after restart, imported key %d = %s", i, res.Code)
		}
	}
	p.stop(t)
	forms := map[string]string{}
	for _, raw := range raws {
		for _, f := range keyForms(raw) {
			forms[f] = "an imported raw key"
		}
	}
	assertNoSecrets(t, "the first run's log", first.stderr.String(), forms)
	assertNoSecrets(t, "the second run's log", p.stderr.String(), forms)
}
