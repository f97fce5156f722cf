package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

// TestSecretMetaAndRekey rotates the master key end to end: secret metadata
// and audit details are written under master key 1 (and the database file
// holds no clear text of them), key 2 is added, keyward rekey runs, key 1 is
// removed, and after a restart everything still reads: the secret metadata
// through verify, the audit details, and the audit chain.
func TestSecretMetaAndRekey(t *testing.T) {
	const (
		accountDSN = "postgres://acme:acct-pw-5d1e@db.internal/acme"
		keyDSN     = "postgres://alice:key-pw-8c2f@db.internal/alice"
		key1       = "1:hex:1111111111111111111111111111111111111111111111111111111111111111"
		key2       = "2:hex:2222222222222222222222222222222222222222222222222222222222222222"
	)
	dir := t.TempDir()
	keysFile := filepath.Join(dir, "master-keys")
	writeKeys := func(lines ...string) {
		t.Helper()
		if err := os.WriteFile(keysFile, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeKeys(key1)
	data := filepath.Join(dir, "data")
	env := map[string]string{"KEYWARD_DATA": data, "KEYWARD_MASTER_KEY_FILE": keysFile}

	s := startServer(t, env)
	root := s.rootKey
	var acme keyward.Account
	s.okJSON(t, root, &acme, "accounts", "create", "--name", "acme", "--secret-meta", `{"dsn":"`+accountDSN+`"}`)
	if !acme.HasSecretMeta {
		t.Fatalf("account created with --secret-meta has no secret meta: %+v", acme)
	}
	var user keyward.User
	s.okJSON(t, root, &user, "users", "create", "--account", acme.ID, "--name", "alice")
	metaFile := filepath.Join(dir, "alice.json")
	if err := os.WriteFile(metaFile, []byte(`{"dsn":"`+keyDSN+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	var alice keyward.CreatedKey
	s.okJSON(t, root, &alice, "keys", "create", "--account", acme.ID, "--user", user.ID, "--name", "alice", "--secret-meta-file", metaFile)
	var verifier keyward.CreatedKey
	s.okJSON(t, root, &verifier, "keys", "create", "--account", acme.ID, "--role", "account_admin", "--name", "tenant-resolver", "--permission", "keys:verify_secrets")
	var plain keyward.CreatedKey
	s.okJSON(t, root, &plain, "keys", "create", "--account", acme.ID, "--role", "account_admin", "--name", "verifier", "--permission", "keys:verify")
	if out := s.ok(t, root, "keys", "get", alice.ID, "-o", "json"); strings.Contains(out, "key-pw") || !strings.Contains(out, `"has_secret_meta": true`) {
		t.Errorf("keys get shows the secret metadata, or not that there is some:\n%s", out)
	}
	for _, get := range [][]string{{"keys", "get", alice.ID}, {"accounts", "get", acme.ID}} {
		if out := s.ok(t, root, get...); strings.Contains(out, "pw-") || !strings.Contains(out, "set (returned only to trusted verifiers)") {
			t.Errorf("%s shows the secret metadata, or not that there is some:\n%s", strings.Join(get, " "), out)
		}
	}
	s.fails(t, ExitUsage, root, "keys", "update", alice.ID, "--secret-meta", `{"a":1}`, "--clear-secret-meta")

	wantSecrets := func(s *testServer, as string, key, account string) {
		t.Helper()
		var res keyward.VerifyResult
		s.okJSON(t, as, &res, "verify", alice.Secret)
		if !res.Valid || !strings.Contains(string(res.SecretMeta), key) || !strings.Contains(string(res.AccountSecretMeta), account) ||
			(key == "" && res.SecretMeta != nil) || (account == "" && res.AccountSecretMeta != nil) {
			t.Errorf("verify as %.12s...: valid %v, secret_meta %s, account_secret_meta %s; want %q and %q", as, res.Valid, res.SecretMeta, res.AccountSecretMeta, key, account)
		}
	}
	wantSecrets(s, verifier.Secret, keyDSN, accountDSN)
	wantSecrets(s, plain.Secret, "", "")
	s.stop(t)

	// The database holds none of it in clear.
	files, _ := filepath.Glob(filepath.Join(data, "keyward.db*"))
	if len(files) == 0 {
		t.Fatalf("no database files in %s", data)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{"acct-pw-5d1e", "key-pw-8c2f", "db.internal"} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s holds %q in clear", filepath.Base(f), secret)
			}
		}
	}

	// Master key 2 is added; rekey moves everything to it.
	writeKeys(key1, key2)
	cli := map[string]string{"KEYWARD_MASTER_KEY_FILE": keysFile}
	r := runCLI(t, cli, "rekey", "--data", data, "--dry-run")
	if r.code != 0 || !strings.Contains(r.stdout, "key secret metadata") || !strings.Contains(r.stdout, "newest master key version: 2") {
		t.Fatalf("rekey --dry-run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var report struct {
		Version  int                   `json:"version"`
		Resealed []keyward.SealedCount `json:"resealed"`
		Left     []keyward.SealedCount `json:"left"`
	}
	r = runCLI(t, cli, "rekey", "--data", data, "-o", "json")
	if r.code != 0 {
		t.Fatalf("rekey: exit %d: %s", r.code, r.stderr)
	}
	if err := json.Unmarshal([]byte(r.stdout), &report); err != nil {
		t.Fatalf("rekey -o json: %v\n%s", err, r.stdout)
	}
	resealed := map[keyward.SealedKind]int64{}
	for _, c := range report.Resealed {
		resealed[c.Kind] = c.Count
	}
	if report.Version != 2 || resealed[keyward.SealedKeySecretMeta] != 1 || resealed[keyward.SealedAccountSecretMeta] != 1 ||
		resealed[keyward.SealedAuditKey] < 5 || len(report.Left) != 0 {
		t.Errorf("rekey report = %+v", report)
	}
	// Run again: nothing left to do.
	r = runCLI(t, cli, "rekey", "--data", data)
	if r.code != 0 || !strings.Contains(r.stdout, "version 2") || strings.Contains(r.stdout, "left under") {
		t.Fatalf("second rekey: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n")[1:5] {
		if !strings.HasSuffix(strings.TrimSpace(line), " 0") {
			t.Errorf("second rekey re-encrypted something: %q", line)
		}
	}

	// Master key 1 is retired: everything still reads.
	writeKeys(key2)
	s2 := startServer(t, env)
	wantSecrets(s2, verifier.Secret, keyDSN, accountDSN)
	wantSecrets(s2, root, keyDSN, accountDSN)
	if out := s2.ok(t, root, "audit", "list", "--target", alice.ID, "-o", "json"); !strings.Contains(out, `"secret_meta": "set"`) || strings.Contains(out, "key-pw") {
		t.Errorf("audit list after rekey, without master key 1:\n%s", out)
	}
	// The audit chain is keyed by master key 1 up to the rotation: it
	// cannot be checked without it, and says so; with it back (it then
	// only checks entries) the chain verifies.
	if msg := s2.fails(t, ExitError, root, "audit", "verify"); !strings.Contains(msg, "master key version 1 is not configured") {
		t.Errorf("audit verify after retiring master key 1: %q, want it to name the missing version", msg)
	}
	// Removing it is audited without the value, and verify returns nothing.
	s2.ok(t, root, "accounts", "update", acme.ID, "--clear-secret-meta")
	wantSecrets(s2, verifier.Secret, keyDSN, "")
	s2.stop(t)
	writeKeys(key1, key2)
	s3 := startServer(t, env)
	if out := s3.ok(t, root, "audit", "verify"); !strings.Contains(out, "yes") {
		t.Errorf("audit verify with master key 1 kept for the chain:\n%s", out)
	}
}
