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

// TestUsersUpdateAndLookup: users update sets what the user's keys inherit
// (verify answers with it), users lookup finds a user by its external id,
// and bad input is one line with the usage, not found or conflict code.
func TestUsersUpdateAndLookup(t *testing.T) {
	s := startServer(t, nil)
	root := s.rootKey
	var acc keyward.Account
	s.okJSON(t, root, &acc, "accounts", "create", "--name", "acme")
	var u keyward.User
	s.okJSON(t, root, &u, "users", "create", "--account", acc.ID, "--name", "alice", "--external-id", "idp|alice", "--meta", `{"plan":"pro"}`)
	s.ok(t, root, "users", "create", "--account", acc.ID, "--name", "bob", "--external-id", "idp|bob")

	dsn := filepath.Join(t.TempDir(), "alice.json")
	if err := os.WriteFile(dsn, []byte(`{"dsn":"postgres://alice:cli-pw-55aa@db/alice"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out := s.ok(t, root, "users", "update", "--account", acc.ID, u.ID, "--secret-meta-file", dsn, "--external-id", "idp|alice2")
	if strings.Contains(out, "cli-pw") || !strings.Contains(out, "set (returned only to trusted verifiers)") || !strings.Contains(out, "idp|alice2") {
		t.Fatalf("users update printed:\n%s", out)
	}
	var found keyward.User
	s.okJSON(t, root, &found, "users", "lookup", "--account", acc.ID, "--external-id", "idp|alice2")
	if found.ID != u.ID || !found.HasSecretMeta {
		t.Fatalf("users lookup = %+v, want %s", found, u.ID)
	}

	var k keyward.CreatedKey
	s.okJSON(t, root, &k, "keys", "create", "--account", acc.ID, "--user", u.ID)
	var res keyward.VerifyResult
	s.okJSON(t, root, &res, "verify", k.Secret)
	compact := func(m json.RawMessage) string {
		var b bytes.Buffer
		json.Compact(&b, m)
		return b.String()
	}
	if res.Identity == nil || res.Identity.ExternalID != "idp|alice2" || compact(res.SecretMeta) != `{"dsn":"postgres://alice:cli-pw-55aa@db/alice"}` ||
		compact(res.Meta) != `{"plan":"pro"}` {
		t.Fatalf("verify = %+v", res)
	}

	s.fails(t, ExitUsage, root, "users", "update", "--account", acc.ID, u.ID)
	s.fails(t, ExitUsage, root, "users", "update", "--account", acc.ID, u.ID, "--meta", "[1]")
	s.fails(t, ExitUsage, root, "users", "update", "--account", acc.ID, u.ID, "--secret-meta-file", dsn, "--clear-secret-meta")
	s.fails(t, ExitUsage, root, "users", "lookup", "--account", acc.ID)
	s.fails(t, ExitConflict, root, "users", "update", "--account", acc.ID, u.ID, "--external-id", "idp|bob")
	s.fails(t, ExitNotFound, root, "users", "lookup", "--account", acc.ID, "--external-id", "idp|alice")
	s.fails(t, ExitForbidden, k.Secret, "users", "update", "--account", acc.ID, u.ID, "--name", "me")

	// Clearing.
	var cleared keyward.User
	s.okJSON(t, root, &cleared, "users", "update", "--account", acc.ID, u.ID, "--clear-secret-meta", "--meta", "{}")
	if cleared.HasSecretMeta || cleared.Meta != nil {
		t.Fatalf("after clearing: %+v", cleared)
	}
	if strings.Contains(s.stderr.String(), "cli-pw") {
		t.Error("the server logged the user's secret metadata")
	}
}
