package main

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keywardtest"
)

// TestLeaksCLI reports leaked keys through the CLI, from arguments and from
// stdin, and checks that no token reaches the server's log or the CLI's
// output beyond its start.
func TestLeaksCLI(t *testing.T) {
	s := startServer(t, map[string]string{"KEYWARD_LOG_LEVEL": "debug"})
	root := s.rootKey
	var acme keyward.Account
	s.okJSON(t, root, &acme, "accounts", "create", "--name", "acme")
	var leaked, piped, scanner keyward.CreatedKey
	s.okJSON(t, root, &leaked, "keys", "create", "--account", acme.ID, "--role", "account_admin")
	s.okJSON(t, root, &piped, "keys", "create", "--account", acme.ID, "--role", "account_admin")
	s.okJSON(t, root, &scanner, "keys", "create", "--account", acme.ID, "--role", "account_admin", "--permission", keyward.PermissionReportLeak)
	unknown, _ := apikey.Generate("kw_user")
	malformed := keywardtest.BreakChecksum(leaked.Secret)
	secrets := []string{root, leaked.Secret, piped.Secret, scanner.Secret, unknown.Reveal(), malformed}

	var out strings.Builder // everything the CLI printed
	// Root, tokens as arguments: a table with the key id.
	stdout := s.ok(t, root, "leaks", "report", leaked.Secret, unknown.Reveal(), malformed, "--source", "github", "--url", "https://github.com/acme/app/commit/1")
	out.WriteString(stdout)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], "STATUS") ||
		!strings.Contains(lines[1], leaked.Start) || !strings.Contains(lines[1], "revoked") || !strings.Contains(lines[1], leaked.ID) ||
		!strings.Contains(lines[2], "not_found") || !strings.Contains(lines[3], "not_found") {
		t.Fatalf("report as root printed:\n%s", stdout)
	}
	if r := s.cli(t, leaked.Secret, "whoami"); r.code != ExitUnauthorized {
		t.Errorf("whoami with the reported key: exit %d, want %d", r.code, ExitUnauthorized)
	}

	// A scanner's key, tokens on stdin: statuses without key ids.
	var buf, errBuf bytes.Buffer
	m := &Main{Getenv: mapEnv(map[string]string{"KEYWARD_URL": s.url, "KEYWARD_API_KEY": scanner.Secret}), Stdin: strings.NewReader(piped.Secret + "\n\n" + unknown.Reveal() + "\n"), Version: "test"}
	if code := m.Run(context.Background(), []string{"leaks", "report", "-", "--source", "pastebin", "-o", "json"}, &buf, &errBuf); code != 0 {
		t.Fatalf("report from stdin: exit %d: %s", code, errBuf.String())
	}
	out.WriteString(buf.String() + errBuf.String())
	if got := strings.Join(strings.Fields(buf.String()), ""); got != `{"results":[{"status":"revoked"},{"status":"not_found"}]}` {
		t.Errorf("scanner's report printed %s", buf.String())
	}
	if r := s.cli(t, piped.Secret, "whoami"); r.code != ExitUnauthorized {
		t.Errorf("whoami with the piped key: exit %d", r.code)
	}

	// Refused and malformed uses.
	out.WriteString(s.fails(t, ExitUnauthorized, leaked.Secret, "leaks", "report", unknown.Reveal()))
	out.WriteString(s.fails(t, ExitUsage, root, "leaks", "report"))
	out.WriteString(s.fails(t, ExitUsage, root, "leaks", "report", strings.Repeat("k", keyward.MaxLeakTokenLen+1)))

	s.stop(t)
	forms := map[string]string{}
	for i, k := range secrets {
		for _, f := range keyForms(k) {
			forms[f] = "raw key #" + strconv.Itoa(i)
		}
	}
	// The CLI's own output may show a key's start, never the rest.
	assertNoSecrets(t, "server log", s.stderr.String(), forms)
	assertNoSecrets(t, "CLI output", out.String(), forms)
	if !strings.Contains(s.stderr.String(), "reported leaked") {
		t.Errorf("the server did not log the revocations:\n%s", s.stderr)
	}
}
