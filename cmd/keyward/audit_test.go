package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

// TestAuditCLI changes things through the CLI, reads, exports and verifies
// the audit log, then edits the database behind keyward's back and sees the
// edit detected at its entry.
func TestAuditCLI(t *testing.T) {
	s := startServer(t, nil)
	root := s.rootKey
	var acme keyward.Account
	s.okJSON(t, root, &acme, "accounts", "create", "--name", "acme")
	var k keyward.CreatedKey
	s.okJSON(t, root, &k, "keys", "create", "--account", acme.ID, "--role", "account_admin", "--name", "deploy-bot-secretive-name")
	s.ok(t, root, "keys", "revoke", k.ID)

	if out := s.ok(t, root, "audit", "list", "--action", "key.revoke"); !strings.Contains(out, k.ID) || !strings.Contains(out, "success") {
		t.Errorf("audit list --action key.revoke:\n%s", out)
	}
	export := filepath.Join(t.TempDir(), "audit.jsonl")
	s.ok(t, root, "audit", "export", "--file", export)
	b, err := os.ReadFile(export)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 4 { // bootstrap, account, key, revoke
		t.Fatalf("export has %d lines, want 4:\n%s", len(lines), b)
	}
	var created keyward.AuditEntry
	if err := json.Unmarshal([]byte(lines[2]), &created); err != nil || created.Action != "key.create" || !bytes.Contains(created.Details, []byte("deploy-bot-secretive-name")) {
		t.Fatalf("export line 3 = %s (%v), want key.create with its details", lines[2], err)
	}
	if out := s.ok(t, root, "audit", "verify"); !strings.Contains(out, "yes") {
		t.Fatalf("audit verify of an intact log:\n%s", out)
	}
	s.fails(t, ExitUsage, root, "audit", "list", "--since", "last week")

	// The details are encrypted at rest: the database file holds no clear
	// text of them.
	db, err := sql.Open("sqlite", filepath.Join(s.data, "keyward.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var sealed []byte
	if err := db.QueryRowContext(t.Context(), "SELECT sealed FROM audit_log WHERE seq = 3").Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if len(sealed) == 0 || bytes.Contains(sealed, []byte("deploy-bot")) {
		t.Errorf("stored details of key.create are not sealed: %q", sealed)
	}

	// Someone rewrites history: the revocation becomes an update.
	if _, err := db.ExecContext(t.Context(), "UPDATE audit_log SET action = 'key.update' WHERE seq = 4"); err != nil {
		t.Fatal(err)
	}
	msg := s.fails(t, ExitError, root, "audit", "verify")
	if !strings.Contains(msg, "broken at entry 4") {
		t.Errorf("audit verify after an edit: %q, want it to name entry 4", msg)
	}
}
