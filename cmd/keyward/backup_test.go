package main

import (
	"database/sql"
	"encoding/json"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/keywardtest"
)

const (
	backupPepper1 = "1:hex:" + "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
	backupPepper2 = "2:hex:" + "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2"
	// otherPepper2 is a pepper version 2 that is not backupPepper2.
	otherPepper2 = "2:hex:" + "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3"
	otherMaster  = "7:hex:" + "d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4"
)

// writeSecretFile writes lines to a new file of dir with mode 0600 and
// returns its path.
func writeSecretFile(t *testing.T, dir, name string, lines ...string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// copyTree copies the regular files of dir src into a new directory dst
// (mode 0700), keeping their modes.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBackupRestore backs up a store under load of changes while serve
// runs, restores the copy into a fresh data directory with the secrets and
// checks that every key answers as before and the audit log verifies; then
// shows backup verify refusing a backup the configured secrets cannot
// restore, or whose database was edited, damaged or is not the manifest's.
func TestBackupRestore(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	secrets := filepath.Join(dir, "secret-store")
	if err := os.Mkdir(secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	pepperFile := writeSecretFile(t, secrets, "pepper", backupPepper1)
	env := map[string]string{"KEYWARD_DATA": data, "KEYWARD_PEPPER_FILE": pepperFile}

	// Keys under pepper 1, then pepper 2 added (the current one).
	s := startServer(t, env)
	root := s.rootKey
	var acme keyward.Account
	s.okJSON(t, root, &acme, "accounts", "create", "--name", "acme")
	var alice keyward.User
	s.okJSON(t, root, &alice, "users", "create", "--account", acme.ID, "--name", "alice")
	create := func(s *testServer, args ...string) keyward.CreatedKey {
		t.Helper()
		var k keyward.CreatedKey
		s.okJSON(t, root, &k, append([]string{"keys", "create", "--account", acme.ID}, args...)...)
		return k
	}
	old := create(s, "--user", alice.ID, "--name", "under pepper 1")
	s.stop(t)
	writeSecretFile(t, secrets, "pepper", backupPepper1, backupPepper2)
	s = startServer(t, env)
	admin := create(s, "--role", "account_admin", "--name", "admin")
	user := create(s, "--user", alice.ID, "--name", "user")
	revoked := create(s, "--user", alice.ID, "--name", "revoked")
	s.ok(t, root, "keys", "revoke", revoked.ID)
	disabled := create(s, "--user", alice.ID, "--name", "disabled")
	s.ok(t, root, "keys", "disable", disabled.ID)
	rotating := create(s, "--user", alice.ID, "--name", "rotating")
	var rotated keyward.CreatedKey
	s.okJSON(t, root, &rotated, "keys", "rotate", rotating.ID, "--grace", "7d")

	// The backup, taken while serve runs.
	backup := filepath.Join(dir, "backup")
	r := runCLI(t, env, "backup", backup)
	if r.code != 0 || !strings.Contains(r.stdout, "not included: back up the peppers and master keys separately") {
		t.Fatalf("backup: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for name, want := range map[string]fs.FileMode{".": 0o700, "keyward.db": 0o600, "manifest.json": 0o600} {
		fi, err := os.Stat(filepath.Join(backup, name))
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("backup %s: %v, mode %v, want %v", name, err, fi.Mode().Perm(), want)
		}
	}
	for _, secret := range []string{"pepper", "master-keys"} {
		if _, err := os.Stat(filepath.Join(backup, secret)); err == nil {
			t.Errorf("backup without --include-secrets holds %s", secret)
		}
	}
	mb, err := os.ReadFile(filepath.Join(backup, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m backupManifest
	if err := json.Unmarshal(mb, &m); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mb), "a1a1a1a1") || strings.Contains(string(mb), "b2b2b2b2") {
		t.Errorf("the manifest holds a pepper:\n%s", mb)
	}
	// root, old, admin, user, rotated: active; revoked, and rotating (its
	// revocation set for the end of its grace window): revoked.
	wantKeys := map[string]int64{"active": 5, "revoked": 2, "disabled": 1}
	if m.Store != "sqlite" || m.Accounts != 1 || m.Users != 1 || !equalCounts(m.Keys, wantKeys) || len(m.Peppers) != 2 ||
		m.Peppers[0].Keys != 2 || m.Peppers[1].Keys != 6 || m.AuditHead == nil || m.AuditEntries != m.AuditHead.Seq ||
		len(m.MasterKeyVersions) != 1 || m.SchemaVersion == 0 {
		t.Errorf("manifest:\n%s", mb)
	}

	// Changes after the backup are not in it.
	late := create(s, "--user", alice.ID, "--name", "after the backup")

	verifyBackup := func(env map[string]string, dir string) result {
		t.Helper()
		return runCLI(t, env, "backup", "verify", dir)
	}
	if r := verifyBackup(env, backup); r.code != 0 || !strings.Contains(r.stdout, "ok:") || r.stderr != "" {
		t.Fatalf("backup verify of a good backup: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// A non-empty directory is refused, and the backup in it left alone.
	checkFails(t, runCLI(t, env, "backup", backup), ExitUsage, []string{"backup", backup})
	if r := verifyBackup(env, backup); r.code != 0 {
		t.Errorf("backup verify after a refused backup into its directory: exit %d %s", r.code, r.stderr)
	}
	s.stop(t)

	// Restore into a fresh data directory: the copy, the pepper and the
	// master keys (from the secret store: here the old data directory).
	restored := filepath.Join(dir, "restored")
	if err := os.Mkdir(restored, 0o700); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(backup, "keyward.db"), filepath.Join(restored, "keyward.db"))
	copyFile(t, filepath.Join(data, "master-keys"), filepath.Join(restored, "master-keys"))
	restoredEnv := map[string]string{"KEYWARD_DATA": restored, "KEYWARD_PEPPER_FILE": pepperFile}
	rs := startServer(t, restoredEnv)
	if rs.rootKey != "" {
		t.Errorf("the restored store printed a new root key: the root key was not restored")
	}
	for key, want := range map[string]keyward.Decision{
		root: keyward.DecisionValid, old.Secret: keyward.DecisionValid, admin.Secret: keyward.DecisionValid,
		user.Secret: keyward.DecisionValid, rotating.Secret: keyward.DecisionValid, rotated.Secret: keyward.DecisionValid,
		revoked.Secret: keyward.DecisionRevoked, disabled.Secret: keyward.DecisionDisabled,
		late.Secret: keyward.DecisionNotFound,
	} {
		r := rs.cli(t, root, "verify", key, "-o", "json")
		var res keyward.VerifyResult
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
			t.Fatalf("verify -o json: %v\n%s%s", err, r.stdout, r.stderr)
		}
		if res.Code != want {
			t.Errorf("restored: verify %.12s... = %s, want %s", key, res.Code, want)
		}
	}
	if out := rs.ok(t, root, "audit", "verify", "--expect", m.AuditHead.String()); !strings.Contains(out, "yes") {
		t.Errorf("audit verify of the restored store:\n%s", out)
	}
	rs.stop(t)

	// What the configured secrets cannot restore is refused (exit 3).
	for _, c := range []struct {
		name    string
		peppers []string
		master  []string
		want    string
	}{
		{"another pepper 2", []string{backupPepper1, otherPepper2}, nil, "pepper version 2 is not the pepper the backup's keys were hashed with"},
		{"pepper 1 missing", []string{backupPepper2}, nil, "pepper version 1 hashes 2 keys of the backup but is not configured"},
		{"master key missing", []string{backupPepper1, backupPepper2}, []string{otherMaster}, "is not configured"},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := map[string]string{"KEYWARD_DATA": data, "KEYWARD_PEPPER_FILE": writeSecretFile(t, t.TempDir(), "pepper", c.peppers...)}
			if c.master != nil {
				env["KEYWARD_MASTER_KEY_FILE"] = writeSecretFile(t, t.TempDir(), "master-keys", c.master...)
			}
			msg := checkFails(t, verifyBackup(env, backup), ExitConfig, []string{"backup", "verify"})
			if !strings.Contains(msg, c.want) {
				t.Errorf("backup verify: %q, want %q", msg, c.want)
			}
			if c.name == "pepper 1 missing" {
				// backup itself refuses to take what would not restore,
				// and leaves nothing behind. (Another pepper of a version
				// it cannot tell: no raw key is stored to try it on.)
				into := filepath.Join(t.TempDir(), "b")
				checkFails(t, runCLI(t, env, "backup", into), ExitConfig, []string{"backup"})
				if entries, _ := os.ReadDir(into); len(entries) != 0 {
					t.Errorf("a refused backup left %d files", len(entries))
				}
			}
		})
	}

	// A backup whose database or manifest was changed is refused (exit 1).
	for _, c := range []struct {
		name   string
		tamper func(t *testing.T, dir string)
		want   string
	}{
		{"audit row edited", func(t *testing.T, dir string) {
			execSQL(t, dir, "UPDATE audit_log SET action = 'key.update' WHERE seq = 3")
		}, "the audit log's chain is broken at entry 3"},
		{"key row deleted", func(t *testing.T, dir string) {
			execSQL(t, dir, "DELETE FROM keys WHERE id = '"+admin.ID+"'")
		}, "active keys: 4, the manifest says 5"},
		{"newest audit entries deleted", func(t *testing.T, dir string) {
			execSQL(t, dir, "DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)")
		}, "its newest entries were deleted"},
		{"manifest counts edited", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m *backupManifest) { m.Keys["revoked"] = 0; m.Keys["active"] = 7 })
		}, "revoked keys: 2, the manifest says 0"},
		{"manifest head replaced", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m *backupManifest) { m.AuditHead.Seq-- })
		}, "does not carry a valid signature"},
		{"file corrupted", func(t *testing.T, dir string) {
			corrupt(t, filepath.Join(dir, "keyward.db"))
		}, "is damaged"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bad := filepath.Join(t.TempDir(), "backup")
			copyTree(t, backup, bad)
			c.tamper(t, bad)
			msg := checkFails(t, verifyBackup(env, bad), ExitError, []string{"backup", "verify"})
			if !strings.Contains(msg, c.want) {
				t.Errorf("backup verify: %q, want %q", msg, c.want)
			}
		})
	}

	// --include-secrets: the backup alone restores.
	t.Run("include secrets", func(t *testing.T) {
		full := filepath.Join(t.TempDir(), "full")
		r := runCLI(t, env, "backup", full, "--include-secrets")
		if r.code != 0 || !strings.Contains(r.stdout, "INCLUDED") {
			t.Fatalf("backup --include-secrets: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		for _, f := range []string{"pepper", "master-keys"} {
			if fi, err := os.Stat(filepath.Join(full, f)); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: %v %v", f, err, fi)
			}
		}
		own := map[string]string{"KEYWARD_DATA": filepath.Join(t.TempDir(), "none"),
			"KEYWARD_PEPPER_FILE": filepath.Join(full, "pepper"), "KEYWARD_MASTER_KEY_FILE": filepath.Join(full, "master-keys")}
		if r := verifyBackup(own, full); r.code != 0 {
			t.Errorf("backup verify with the included secrets: exit %d %s", r.code, r.stderr)
		}
		// Secrets from the environment are no files to copy.
		envPeppers := map[string]string{"KEYWARD_DATA": data, "KEYWARD_PEPPERS": backupPepper1 + "," + backupPepper2}
		msg := checkFails(t, runCLI(t, envPeppers, "backup", filepath.Join(t.TempDir(), "x"), "--include-secrets"), ExitUsage, nil)
		if !strings.Contains(msg, "back them up from your secret store") {
			t.Errorf("backup --include-secrets with KEYWARD_PEPPERS: %q", msg)
		}
	})
}

func equalCounts(a, b map[string]int64) bool {
	for k := range mergeKeys(a, b) {
		if a[k] != b[k] {
			return false
		}
	}
	return true
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// execSQL runs query on the database of the backup in dir.
func execSQL(t *testing.T, dir, query string) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, "keyward.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(t.Context(), query); err != nil {
		t.Fatal(err)
	}
}

func editManifest(t *testing.T, dir string, edit func(*backupManifest)) {
	t.Helper()
	path := filepath.Join(dir, "manifest.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m backupManifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(&m)
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// corrupt overwrites the second half of the database file with a pattern,
// keeping its header.
func corrupt(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(b) / 2; i < len(b); i++ {
		b[i] = byte(i * 7)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestBackupPostgres backs up a PostgreSQL store: keyward copies nothing
// (pg_dump does), says so, checks the secrets and writes the manifest that
// backup verify then checks the restored database against.
func TestBackupPostgres(t *testing.T) {
	pg := keywardtest.PostgresURL(t)
	store := withParam(t, pg, "search_path", keywardtest.NewPostgresSchema(t, pg))
	env := map[string]string{"KEYWARD_STORE": store, "KEYWARD_PEPPERS": backupPepper1 + "," + backupPepper2,
		"KEYWARD_MASTER_KEYS": otherMaster}
	s := startServer(t, env)
	root := s.rootKey
	var acme keyward.Account
	s.okJSON(t, root, &acme, "accounts", "create", "--name", "acme")
	var k keyward.CreatedKey
	s.okJSON(t, root, &k, "keys", "create", "--account", acme.ID, "--role", "account_admin", "--name", "admin")
	s.ok(t, root, "keys", "revoke", k.ID)

	backup := filepath.Join(t.TempDir(), "backup")
	r := runCLI(t, env, "backup", backup)
	if r.code != 0 || !strings.Contains(r.stdout, "pg_dump") {
		t.Fatalf("backup of a PostgreSQL store: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(backup, "keyward.db")); err == nil {
		t.Error("a PostgreSQL backup holds keyward.db")
	}
	var m backupManifest
	if b, err := os.ReadFile(filepath.Join(backup, "manifest.json")); err != nil || json.Unmarshal(b, &m) != nil {
		t.Fatalf("manifest: %v\n%s", err, b)
	}
	if m.Store != "postgres" || m.Accounts != 1 || !equalCounts(m.Keys, map[string]int64{"active": 1, "revoked": 1}) ||
		len(m.Peppers) != 1 || m.Peppers[0].Version != 2 || !slices.Equal(m.MasterKeyVersions, []int{7}) || m.AuditHead == nil {
		t.Errorf("manifest: %+v", m)
	}
	// The database restored from the dump (here: the same one) verifies.
	if r := runCLI(t, env, "backup", "verify", backup); r.code != 0 || !strings.Contains(r.stdout, "ok:") {
		t.Fatalf("backup verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// Without the store to check against, verify says which to give.
	msg := checkFails(t, runCLI(t, map[string]string{"KEYWARD_DATA": t.TempDir(), "KEYWARD_PEPPERS": env["KEYWARD_PEPPERS"]}, "backup", "verify", backup), ExitUsage, nil)
	if !strings.Contains(msg, "KEYWARD_STORE") {
		t.Errorf("backup verify of a PostgreSQL backup without a store: %q", msg)
	}
	// Another pepper 2 is refused, by verify and by backup alike.
	wrong := maps.Clone(env)
	wrong["KEYWARD_PEPPERS"] = backupPepper1 + "," + otherPepper2
	checkFails(t, runCLI(t, wrong, "backup", "verify", backup), ExitConfig, nil)
	// Without master keys a PostgreSQL backup is refused before anything.
	noKeys := maps.Clone(env)
	delete(noKeys, "KEYWARD_MASTER_KEYS")
	checkFails(t, runCLI(t, noKeys, "backup", filepath.Join(t.TempDir(), "b")), ExitConfig, nil)

	// A restore that lost a key since the manifest is refused.
	s.ok(t, root, "keys", "delete", k.ID)
	msg = checkFails(t, runCLI(t, env, "backup", "verify", backup), ExitError, nil)
	if !strings.Contains(msg, "revoked keys: 0, the manifest says 1") {
		t.Errorf("backup verify after a key was deleted: %q", msg)
	}
}
