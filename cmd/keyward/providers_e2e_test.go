package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/provider"
	"github.com/keyward/keyward/provider/gitea"
	"github.com/keyward/keyward/provider/n8n"
	"github.com/keyward/keyward/provider/providertest"
)

// TestProvidersEndToEnd runs the CLI binary against a real Gitea and a real
// n8n, as a user would: a connection for each, tokens created and verified
// at the provider, rotated, revoked, and reconciled after a token is
// created behind keyward's back and another deleted behind it. (Expiry by
// the job is TestCredentialExpiryJob, with an injected clock.)
func TestProvidersEndToEnd(t *testing.T) {
	requireBinary(t)
	g := providertest.StartGitea(t)
	n := providertest.StartN8n(t)
	p := startBinary(t, filepath.Join(t.TempDir(), "data"))
	root := strings.TrimPrefix(p.stdout.WaitLine(t, "the root key line", nil, func(l string) bool { return strings.HasPrefix(l, "root key: ") }), "root key: ")
	var acc keyward.Account
	binaryJSON(t, p.url, root, &acc, "accounts", "create", "--name", "acme")
	secrets := []string{g.Admin.Password, n.Password}

	addProvider := func(kind, name, url, user, password string) *keyward.ProviderConnection {
		t.Helper()
		file := filepath.Join(t.TempDir(), "password")
		if err := os.WriteFile(file, []byte(password+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		var c keyward.ProviderConnection
		binaryJSON(t, p.url, root, &c, "providers", "add", "--kind", kind, "--name", name, "--url", url,
			"--username", user, "--password-file", file, "--account", acc.ID)
		runBinaryOK(t, p.url, root, "providers", "test", c.ID)
		return &c
	}
	verify := func(conn, token string) keyward.CredentialVerification {
		t.Helper()
		r := runBinary(t, p.url, root, "credentials", "verify", token, "--provider", conn, "-o", "json")
		var v keyward.CredentialVerification
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || (r.code == 0) != v.Valid || (r.code != 0 && r.code != ExitKeyInvalid) {
			t.Fatalf("credentials verify: exit %d, %s %s (%v)", r.code, r.stdout, r.stderr, err)
		}
		return v
	}
	reconcile := func(conn string, args ...string) keyward.ReconcileReport {
		t.Helper()
		var r keyward.ReconcileReport
		binaryJSON(t, p.url, root, &r, append([]string{"credentials", "reconcile", "--provider", conn}, args...)...)
		return r
	}

	// A wrong password is refused when the connection is added, naming
	// the provider; nothing is stored.
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("not-the-password\n"), 0o600)
	r := runBinary(t, p.url, root, "providers", "add", "--kind", "gitea", "--name", "git", "--url", g.URL,
		"--username", g.Admin.Name, "--password-file", bad, "--account", acc.ID)
	if r.code != ExitUsage || !strings.Contains(r.stderr, "gitea") {
		t.Fatalf("add with a wrong password: exit %d, %s", r.code, r.stderr)
	}

	t.Run("gitea", func(t *testing.T) {
		conn := addProvider("gitea", "git", g.URL, g.Admin.Name, g.Admin.Password)
		var created keyward.CreatedCredential
		binaryJSON(t, p.url, root, &created, "credentials", "create", "--provider", "gitea", "--user", g.User.Name,
			"--name", "ci", "--scopes", "read:repository,read:user", "--expires", "30d")
		secrets = append(secrets, created.Secret)
		c := created.Credential
		if c.ExternalUser != g.User.Name || c.Status != keyward.CredentialActive || c.ExpiresAt == nil || c.Hint == "" {
			t.Fatalf("created credential %+v", c)
		}
		if v := verify(conn.ID, created.Secret); !v.Valid || v.User != g.User.Name {
			t.Fatalf("verify of the new token: %+v", v)
		}

		var rotated keyward.CreatedCredential
		binaryJSON(t, p.url, root, &rotated, "credentials", "rotate", c.ID)
		secrets = append(secrets, rotated.Secret)
		if v := verify(conn.ID, created.Secret); v.Valid {
			t.Fatal("the old token still works after a rotation without grace")
		}
		if v := verify(conn.ID, rotated.Secret); !v.Valid || v.User != g.User.Name {
			t.Fatalf("verify of the replacement: %+v", v)
		}

		// Behind keyward's back: a token created at Gitea directly, and
		// the replacement deleted there.
		direct, err := gitea.New(g.Connection(g.Admin, 0))
		if err != nil {
			t.Fatal(err)
		}
		stray, err := direct.Create(t.Context(), provider.NewToken{User: g.User.Name, Name: "made-by-hand", Scopes: []string{"read:user"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := direct.Revoke(t.Context(), g.User.Name, rotated.Credential.ExternalID); err != nil {
			t.Fatal(err)
		}
		report := reconcile(conn.ID)
		if len(report.Unmanaged) != 1 || report.Unmanaged[0].ExternalID != stray.ExternalID ||
			len(report.Vanished) != 1 || report.Vanished[0].ID != rotated.Credential.ID {
			t.Fatalf("reconcile: %+v, want the hand-made token unmanaged and the replacement vanished", report)
		}
		if v := verify(conn.ID, stray.Secret.Reveal()); !v.Valid {
			t.Fatal("reconcile without --revoke-unmanaged touched the hand-made token")
		}
		report = reconcile(conn.ID, "--revoke-unmanaged", "--mark-vanished")
		if !slices.Equal(report.Revoked, []string{stray.ExternalID}) || !slices.Equal(report.Marked, []string{rotated.Credential.ID}) {
			t.Fatalf("reconcile --revoke-unmanaged --mark-vanished: %+v", report)
		}
		if v := verify(conn.ID, stray.Secret.Reveal()); v.Valid {
			t.Fatal("the hand-made token survived --revoke-unmanaged")
		}
		if report = reconcile(conn.ID); len(report.Unmanaged)+len(report.Vanished) != 0 {
			t.Fatalf("reconcile after acting: %+v, want no drift", report)
		}

		// Revoke: refused at Gitea from then on.
		var again keyward.CreatedCredential
		binaryJSON(t, p.url, root, &again, "credentials", "create", "--provider", conn.ID, "--user", g.User.Name,
			"--name", "deploy", "--scopes", "read:user")
		secrets = append(secrets, again.Secret)
		runBinaryOK(t, p.url, root, "credentials", "revoke", again.Credential.ID)
		if v := verify(conn.ID, again.Secret); v.Valid {
			t.Fatal("a revoked token still works at Gitea")
		}
		var revoked keyward.ManagedCredential
		binaryJSON(t, p.url, root, &revoked, "credentials", "get", again.Credential.ID)
		if revoked.Status != keyward.CredentialRevoked {
			t.Fatalf("revoked credential: %+v", revoked)
		}
	})

	t.Run("n8n", func(t *testing.T) {
		conn := addProvider("n8n", "automation", n.URL, n.Email, n.Password)
		var created keyward.CreatedCredential
		binaryJSON(t, p.url, root, &created, "credentials", "create", "--provider", "n8n", "--name", "ci",
			"--scopes", "workflow:list", "--expires", "7d")
		secrets = append(secrets, created.Secret)
		if v := verify(conn.ID, created.Secret); !v.Valid {
			t.Fatalf("verify of the new key: %+v", v)
		}
		// A duplicate name is a conflict, not n8n's 500.
		if r := runBinary(t, p.url, root, "credentials", "create", "--provider", conn.ID, "--name", "ci", "--scopes", "workflow:list"); r.code != ExitConflict {
			t.Fatalf("duplicate label: exit %d, %s", r.code, r.stderr)
		}
		direct, err := n8n.New(n.Connection(0))
		if err != nil {
			t.Fatal(err)
		}
		expires := time.Now().Add(time.Hour)
		stray, err := direct.Create(t.Context(), provider.NewToken{Name: "made-by-hand", Scopes: []string{"workflow:list"}, ExpiresAt: &expires})
		if err != nil {
			t.Fatal(err)
		}
		report := reconcile(conn.ID)
		if len(report.Unmanaged) != 1 || report.Unmanaged[0].ExternalID != stray.ExternalID || len(report.Vanished) != 0 {
			t.Fatalf("reconcile: %+v, want only the hand-made key unmanaged", report)
		}
		if r := runBinary(t, p.url, root, "providers", "remove", conn.ID); r.code != ExitConflict {
			t.Fatalf("removing a connection with a live credential: exit %d, %s", r.code, r.stderr)
		}
		runBinaryOK(t, p.url, root, "credentials", "revoke", created.Credential.ID)
		if v := verify(conn.ID, created.Secret); v.Valid {
			t.Fatal("a revoked key still works at n8n")
		}
		reconcile(conn.ID, "--revoke-unmanaged")
		if v := verify(conn.ID, stray.Secret.Reveal()); v.Valid {
			t.Fatal("the hand-made key survived --revoke-unmanaged")
		}
		// A connection with live credentials cannot be removed; one without
		// can.
		runBinaryOK(t, p.url, root, "providers", "remove", conn.ID)
	})

	p.stop(t)
	for _, s := range secrets {
		if strings.Contains(p.stderr.String(), s) || strings.Contains(p.stdout.String(), s) {
			t.Errorf("a password or token (%.6s...) appears in the server's output", s)
		}
	}
}
