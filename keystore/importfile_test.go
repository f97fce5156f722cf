package keystore_test

import (
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/keystore"
)

func TestParseImportJSONLines(t *testing.T) {
	d1, d2 := keystore.Digest("legacy-one"), keystore.Digest("legacy-two")
	src := "# exported from the old service\n\n" +
		`{"sha256": "` + d1 + `", "name": "ci", "role": "user", "account": "acme", "user": "alice", "permissions": ["memories:read"], "meta": {"plan": "pro"}, "expires_at": "2030-01-01T00:00:00Z", "environment": "test"}` + "\n" +
		`{"sha256": "` + strings.ToUpper(d2) + `", "role": "root"}` + "\n"
	got, err := keystore.ParseImport(strings.NewReader(src), "keys.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d entries, want 2", len(got))
	}
	e := got[0]
	if e.Line != 3 || e.SHA256 != d1 || e.Name != "ci" || e.Role != keyward.RoleUser || e.Account != "acme" || e.User != "alice" ||
		len(e.Permissions) != 1 || string(e.Meta) != `{"plan": "pro"}` || e.ExpiresAt == nil || e.ExpiresAt.Year() != 2030 || e.Environment != "test" {
		t.Fatalf("entry 1 = %+v", e)
	}
	if got[1].Line != 4 || got[1].Role != keyward.RoleRoot || got[1].Environment != "" {
		t.Fatalf("entry 2 = %+v", got[1])
	}
}

func TestParseImportKeystoreFile(t *testing.T) {
	d1, d2 := keystore.Digest("legacy-one"), keystore.Digest("legacy-two")
	src := "keys:\n" +
		"  " + d1 + ":\n    id: ops\n    role: root\n" +
		"  " + d2 + ": {id: acme-admin, role: account_admin, account: acme, permissions: [a, b], meta: {plan: pro}}\n"
	got, err := keystore.ParseImport(strings.NewReader(src), "keys.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "ops" || got[0].Line != 2 || got[0].SHA256 != d1 ||
		got[1].Name != "acme-admin" || got[1].Account != "acme" || got[1].Role != keyward.RoleAccountAdmin || string(got[1].Meta) != `{"plan":"pro"}` {
		t.Fatalf("entries = %+v", got)
	}
}

func TestParseImportErrors(t *testing.T) {
	d := keystore.Digest("legacy")
	line := func(fields string) string { return `{"sha256": "` + d + `", ` + fields + "}\n" }
	for _, tc := range []struct {
		name, src, want string
	}{
		{"empty", "", "holds no keys"},
		{"only comments", "# nothing\n\n", "holds no keys"},
		{"bad hex", `{"sha256": "` + strings.Repeat("zz", 32) + `", "role": "root"}` + "\n", "line 1: sha256 is not hex"},
		{"short digest", `{"sha256": "abc", "role": "root"}` + "\n", "line 1: sha256 must be the 64 hex characters"},
		{"duplicate", line(`"role": "root"`) + "\n" + line(`"role": "root"`), "line 3: the same sha256 as line 1"},
		{"duplicate in another case", line(`"role": "root"`) + strings.Replace(line(`"role": "root"`), d, strings.ToUpper(d), 1), "line 2: the same sha256 as line 1"},
		{"unknown field", line(`"role": "root", "secret": "x"`), `line 1: unknown field "secret"`},
		{"unknown field that could be a token", line(`"role": "root", "Tok3n-Value": "x"`), "line 1: unknown field: use sha256"},
		{"no role", line(`"name": "x"`), "line 1: role is required"},
		{"bad role", line(`"role": "owner"`), `line 1: role "owner" is not one of`},
		{"wrong type", line(`"role": "root", "permissions": "a,b"`), "line 1: permissions has the wrong type"},
		{"meta not an object", line(`"role": "root", "meta": [1]`), "line 1: meta must be a JSON object"},
		{"broken second line", line(`"role": "root"`) + "{\"sha256\": \n", "line 2: is not a JSON object"},
		{"no sha256", line(`"role": "root"`) + `{"role": "root"}` + "\n", "line 2: sha256 is missing"},
		{"keystore user key", "keys:\n  " + d + ": {id: ci, role: user, account: acme}\n", `line 2: key "ci" has role user`},
		{"keystore user key, its subject blank", "keys:\n  " + d + ": {id: ci, role: user, account: acme, subject: ''}\n", "give the entry subject: USER"},
		{"neither", "hello: world\n", "is neither JSON lines"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := keystore.ParseImport(strings.NewReader(tc.src), "f")
			if err == nil {
				t.Fatalf("ParseImport accepted the file, want an error containing %q", tc.want)
			}
			if keyward.ErrorCode(err) != keyward.EINVALID || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v (%s), want EINVALID containing %q", err, keyward.ErrorCode(err), tc.want)
			}
			if strings.Contains(err.Error(), "\n") || strings.Contains(strings.ToLower(err.Error()), d) {
				t.Fatalf("error %q is not one line, or quotes the digest", err)
			}
		})
	}
}

// FuzzParseImport checks that ParseImport never panics, that its errors are
// one line, and that what it accepts are entries with a valid digest each
// once, a line, and a valid role (or a user).
func FuzzParseImport(f *testing.F) {
	d := keystore.Digest("token")
	for _, seed := range []string{
		"",
		`{"sha256": "` + d + `", "role": "user", "account": "acme", "user": "alice", "permissions": ["x"], "meta": {"a": 1}, "expires_at": "2030-01-01T00:00:00Z"}` + "\n",
		"# c\n" + `{"sha256": "` + d + `", "user": "u"}` + "\n\n" + `{"sha256": "` + keystore.Digest("t2") + `", "role": "root", "name": null}`,
		`{"sha256": "` + d + `"}` + "\n" + `{"sha256": 1}`,
		"keys:\n  " + d + ": {id: ci, role: root}\n",
		`{"keys": {"` + d + `": {"id": "ci", "role": "account_admin", "account": "acme"}}}`,
		"{\"sha256\": \"" + d + "\", \"meta\": {}}\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, src string) {
		entries, err := keystore.ParseImport(strings.NewReader(src), "fuzz")
		if err != nil {
			if entries != nil {
				t.Fatal("ParseImport returned entries with an error")
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			if keyward.ErrorCode(err) != keyward.EINVALID {
				t.Fatalf("error %v is not EINVALID", err)
			}
			return
		}
		if len(entries) == 0 {
			t.Fatal("ParseImport accepted a file without entries")
		}
		seen := map[keyward.KeyDigest]bool{}
		for _, e := range entries {
			dg, err := keyward.ParseDigest(e.SHA256)
			if err != nil {
				t.Fatalf("accepted entry on line %d has a bad digest: %v", e.Line, err)
			}
			if seen[dg] {
				t.Fatalf("accepted a digest twice (line %d)", e.Line)
			}
			seen[dg] = true
			if e.Line <= 0 {
				t.Fatalf("entry without a line: %+v", e)
			}
			if !e.Role.Valid() && (e.Role != "" || e.User == "") {
				t.Fatalf("accepted entry on line %d with role %q and user %q", e.Line, e.Role, e.User)
			}
		}
	})
}
