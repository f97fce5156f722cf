package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/client"
)

// TestProvidersVocabulary: provider connections are created and deleted
// like everything else (providers create, providers delete); add and
// remove, their former names, still run the same commands.
func TestProvidersVocabulary(t *testing.T) {
	env := map[string]string{"KEYWARD_URL": "http://127.0.0.1:1", "KEYWARD_API_KEY": "kw_root_unused"}
	run := func(args ...string) result {
		var stdout, stderr bytes.Buffer
		m := &Main{Getenv: mapEnv(env), Stdin: strings.NewReader(""), Version: "test"}
		return result{code: m.Run(context.Background(), args, &stdout, &stderr), stdout: stdout.String(), stderr: stderr.String()}
	}
	help := run("providers", "--help")
	for _, want := range []string{"\n  create ", "\n  delete "} {
		if help.code != 0 || !strings.Contains(help.stdout, want) {
			t.Errorf("providers --help (exit %d) does not list %q:\n%s", help.code, strings.TrimSpace(want), help.stdout)
		}
	}
	for _, old := range []string{"\n  add ", "\n  remove "} {
		if strings.Contains(help.stdout, old) {
			t.Errorf("providers --help still lists %q as a command:\n%s", strings.TrimSpace(old), help.stdout)
		}
	}
	for _, verb := range []string{"create", "add"} {
		args := []string{"providers", verb, "--kind", "gitea", "--name", "g", "--url", "https://git.example.com", "--username", "admin", "--account", "acc_x"}
		if msg := checkFails(t, run(args...), ExitUsage, args); !strings.Contains(msg, "--password-file FILE or --password-stdin") {
			t.Errorf("providers %s without a password: %q", verb, msg)
		}
	}
	for _, verb := range []string{"delete", "remove"} {
		if msg := checkFails(t, run("providers", verb), ExitUsage, []string{"providers", verb}); !strings.Contains(msg, "missing PROVIDER") {
			t.Errorf("providers %s without a provider: %q", verb, msg)
		}
	}
}

// TestCredentialsUsage: mistakes on the command line of providers and
// credentials are usage errors found before any request (the URL points
// nowhere: a request would exit 8), and a password is never a flag.
func TestCredentialsUsage(t *testing.T) {
	env := map[string]string{"KEYWARD_URL": "http://127.0.0.1:1", "KEYWARD_API_KEY": "kw_root_unused"}
	add := []string{"providers", "add", "--kind", "gitea", "--name", "g", "--url", "https://git.example.com", "--username", "admin", "--account", "acc_x"}
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"no password", "", add, "--password-file FILE or --password-stdin"},
		{"a password flag", "", append(add, "--password", "hunter2"), "unknown flag: --password"},
		{"both password sources", "", append(add, "--password-file", pwFile, "--password-stdin"), "not both"},
		{"empty stdin", "", append(add, "--password-stdin"), "no password"},
		{"missing password file", "", append(add, "--password-file", pwFile+".missing"), "--password-file"},
		{"unknown kind", "", []string{"providers", "add", "--kind", "gitlab", "--name", "g", "--url", "u", "--username", "a", "--account", "acc_x", "--password-stdin"}, "gitea or n8n"},
		{"no url", "", []string{"providers", "add", "--kind", "gitea", "--name", "g", "--username", "a", "--account", "acc_x"}, `"url"`},
		{"no account", "", []string{"providers", "add", "--kind", "gitea", "--name", "g", "--url", "u", "--username", "a", "--password-stdin"}, `"account"`},
		{"bad timeout", "pw\n", append(add, "--password-stdin", "--timeout", "soon"), "--timeout"},
		{"provider get without id", "", []string{"providers", "get"}, "missing PROVIDER"},
		{"create without provider", "", []string{"credentials", "create", "--user", "alice"}, `"provider"`},
		{"bad expiry", "", []string{"credentials", "create", "--provider", "gitea", "--expires", "soon"}, "--expires"},
		{"unknown status", "", []string{"credentials", "list", "--status", "lost"}, "--status"},
		{"bad grace", "", []string{"credentials", "rotate", "crd_x", "--grace", "a while"}, "--grace"},
		{"verify without token", "", []string{"credentials", "verify", "--provider", "gitea"}, "missing TOKEN"},
		{"verify without provider", "", []string{"credentials", "verify", "tok"}, `"provider"`},
		{"verify empty stdin", "", []string{"credentials", "verify", "-", "--provider", "gitea"}, "stdin"},
		{"reconcile without provider", "", []string{"credentials", "reconcile"}, `"provider"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			m := &Main{Getenv: mapEnv(env), Stdin: strings.NewReader(tt.stdin), Version: "test"}
			r := result{code: m.Run(context.Background(), tt.args, &stdout, &stderr), stdout: stdout.String(), stderr: stderr.String()}
			if msg := checkFails(t, r, ExitUsage, tt.args); !strings.Contains(msg, tt.want) {
				t.Errorf("message %q does not contain %q", msg, tt.want)
			}
		})
	}
}

// TestReadPassword: the first line, without its line end but with any
// other white space.
func TestReadPassword(t *testing.T) {
	for in, want := range map[string]string{"pw": "pw", "pw\n": "pw", " pw \r\nsecond line\n": " pw "} {
		if got, err := firstLine(strings.NewReader(in)); err != nil || got != want {
			t.Errorf("firstLine(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "\n", "\r\n"} {
		if _, err := firstLine(strings.NewReader(in)); err == nil {
			t.Errorf("firstLine(%q): no error", in)
		}
	}
}

// TestProvidersAndCredentialsList lists against a real server that has no
// connections yet (creating one needs a real provider: see the end-to-end
// tests).
func TestProvidersAndCredentialsList(t *testing.T) {
	s := startServer(t, nil)
	if out := s.ok(t, s.rootKey, "providers", "list"); !strings.HasPrefix(out, "ID") || !strings.Contains(out, "USERNAME") {
		t.Errorf("providers list:\n%s", out)
	}
	var conns keyward.ProviderConnectionList
	s.okJSON(t, s.rootKey, &conns, "providers", "list")
	if conns.Items == nil || len(conns.Items) != 0 {
		t.Errorf("providers list -o json: %+v, want an empty list", conns)
	}
	if out := s.ok(t, s.rootKey, "credentials", "list", "--status", "active"); !strings.HasPrefix(out, "ID") || !strings.Contains(out, "STATUS") {
		t.Errorf("credentials list:\n%s", out)
	}
	var creds keyward.CredentialList
	s.okJSON(t, s.rootKey, &creds, "credentials", "list")
	if creds.Items == nil || len(creds.Items) != 0 {
		t.Errorf("credentials list -o json: %+v, want an empty list", creds)
	}
	for _, args := range [][]string{
		{"providers", "get", "gitea"},
		{"providers", "test", "prv_doesnotexist"},
		{"credentials", "create", "--provider", "gitea", "--user", "alice", "--scopes", "read:repository", "--expires", "30d"},
		{"credentials", "get", "crd_doesnotexist"},
	} {
		if msg := s.fails(t, ExitNotFound, s.rootKey, args...); !strings.Contains(msg, "not found") && !strings.Contains(msg, "no provider connection") {
			t.Errorf("keyward %s: %q", strings.Join(args, " "), msg)
		}
	}
}

// TestResolveProvider: --provider takes an id, a name, or a kind, as long
// as it names one connection.
func TestResolveProvider(t *testing.T) {
	conns := []*keyward.ProviderConnection{
		{ID: "prv_1", AccountID: "acc_a", Kind: "gitea", Name: "git-a"},
		{ID: "prv_2", AccountID: "acc_b", Kind: "gitea", Name: "git-b"},
		{ID: "prv_3", AccountID: "acc_a", Kind: "n8n", Name: "gitea"},
		{ID: "prv_4", AccountID: "acc_a", Kind: "n8n", Name: "flows"},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v1/providers":
			json.NewEncoder(w).Encode(keyward.ProviderConnectionList{Items: conns})
		case "/v1/providers/prv_4":
			json.NewEncoder(w).Encode(conns[3])
		default:
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(keyward.Problem{Code: keyward.ENOTFOUND, Status: 404, Detail: "not found"})
		}
	}))
	t.Cleanup(srv.Close)
	c := client.New(srv.URL, "kw_root_test")
	for _, tt := range []struct {
		ref, want, code string
		usage           bool
	}{
		{ref: "prv_4", want: "prv_4"},
		{ref: "git-b", want: "prv_2"},
		{ref: "gitea", want: "prv_3"}, // a name before a kind
		{ref: "flows", want: "prv_4"},
		{ref: "n8n", usage: true}, // two n8n connections
		{ref: "gitlab", code: keyward.ENOTFOUND},
		{ref: "prv_9", code: keyward.ENOTFOUND},
	} {
		got, err := resolveProvider(t.Context(), c, tt.ref)
		var ue *usageError
		switch {
		case tt.usage:
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), "prv_3") || !strings.Contains(err.Error(), "prv_4") {
				t.Errorf("resolve %q: %v, want a usage error naming both", tt.ref, err)
			}
		case tt.code != "":
			if keyward.ErrorCode(err) != tt.code {
				t.Errorf("resolve %q: %v, want %s", tt.ref, err, tt.code)
			}
		case err != nil || got.ID != tt.want:
			t.Errorf("resolve %q: %v %v, want %s", tt.ref, got, err, tt.want)
		}
	}
}
