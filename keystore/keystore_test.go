package keystore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/keystore"
)

// Tokens of the test keystore. Static tokens need not look like kw_ keys.
var (
	tokCI      = "ci-static-token-0123456789abcdef"
	tokAdmin   = "acme-admin-token-ABCDEFGHIJKLMNOP"
	tokRoot    = "root-token-zyxwvutsrqponmlkjihg"
	tokSpecial = "!#$%&'*+-.^_|~`\"(),/:;<=>?@[\\]{}"
	tokLong    = strings.Repeat("0123456789abcdef", 256) // 4096 characters
	tokUnicode = "clé-secrète-ünïcödé-令牌"
)

// testFile is a keystore with one entry of each kind. The root entry's
// digest is written in uppercase: digests are normalised.
func testFile() string {
	return fmt.Sprintf(`# keystore used by the tests
keys:
  %s:
    id: ci
    role: user
    account: acme
    permissions: [memories:write, memories:read, memories:read]
    meta: {plan: pro, seats: 3}
  %s:
    id: acme-admin
    role: account_admin
    account: acme
  %s:
    id: ops
    role: root
  %s: {id: special, role: user}
  %s: {id: long, role: user}
  %s: {id: unicode, role: user}
`, keystore.Digest(tokCI), keystore.Digest(tokAdmin), strings.ToUpper(keystore.Digest(tokRoot)),
		keystore.Digest(tokSpecial), keystore.Digest(tokLong), keystore.Digest(tokUnicode))
}

func mustParse(t testing.TB, src string) *keystore.Keystore {
	t.Helper()
	ks, err := keystore.Parse(strings.NewReader(src), "test.yaml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return ks
}

// logBuffer returns a logger writing text to the returned buffer.
func logBuffer() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), &buf
}

func mustLegacy(t testing.TB, key string) (*keystore.LegacyKey, string) {
	t.Helper()
	log, buf := logBuffer()
	l, err := keystore.Legacy(keyward.Secret(key), log)
	if err != nil {
		t.Fatalf("Legacy: %v", err)
	}
	return l, buf.String()
}

type verifyCase struct {
	name  string
	key   string
	perms []string
	code  keyward.Decision
	id    string // key id when found
	role  keyward.Role
}

// checkVerify runs cases against v.
func checkVerify(t *testing.T, v keyward.KeyVerifier, cases []verifyCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			res, err := v.VerifyKey(context.Background(), keyward.VerifyRequest{Key: tt.key, Permissions: tt.perms, Agent: "claude"})
			if err != nil {
				t.Fatalf("VerifyKey: %v", err)
			}
			if res.Code != tt.code || res.Valid != (tt.code == keyward.DecisionValid) {
				t.Fatalf("VerifyKey = %s (valid %v), want %s", res.Code, res.Valid, tt.code)
			}
			if res.KeyID != tt.id {
				t.Errorf("KeyID = %q, want %q", res.KeyID, tt.id)
			}
			switch {
			case tt.code != keyward.DecisionValid && (res.Identity != nil || res.Permissions != nil || res.Meta != nil):
				t.Errorf("refused key carries identity %+v, permissions %v, meta %s", res.Identity, res.Permissions, res.Meta)
			case tt.code == keyward.DecisionValid:
				id := res.Identity
				if id == nil || id.KeyID != tt.id || id.Role != tt.role || id.Agent != "claude" {
					t.Errorf("Identity = %+v, want key %s role %s agent claude", id, tt.id, tt.role)
				}
			}
		})
	}
}

func TestKeystoreVerifyKey(t *testing.T) {
	ks := mustParse(t, testFile())
	checkVerify(t, ks, []verifyCase{
		{name: "valid", key: tokCI, code: keyward.DecisionValid, id: "ci", role: keyward.RoleUser},
		{name: "valid with permissions held", key: tokCI, perms: []string{"memories:read", "memories:write"}, code: keyward.DecisionValid, id: "ci", role: keyward.RoleUser},
		{name: "missing permission", key: tokCI, perms: []string{"memories:read", "memories:delete"}, code: keyward.DecisionInsufficientPermissions, id: "ci"},
		{name: "account admin lacks unlisted permission", key: tokAdmin, perms: []string{"keys:verify"}, code: keyward.DecisionInsufficientPermissions, id: "acme-admin"},
		{name: "root holds every permission", key: tokRoot, perms: []string{"anything:at-all"}, code: keyward.DecisionValid, id: "ops", role: keyward.RoleRoot},
		{name: "uppercase digest in file normalised", key: tokRoot, code: keyward.DecisionValid, id: "ops", role: keyward.RoleRoot},
		{name: "special ASCII characters", key: tokSpecial, code: keyward.DecisionValid, id: "special", role: keyward.RoleUser},
		{name: "4096-character key", key: tokLong, code: keyward.DecisionValid, id: "long", role: keyward.RoleUser},
		{name: "non-ASCII key", key: tokUnicode, code: keyward.DecisionValid, id: "unicode", role: keyward.RoleUser},

		{name: "empty key", key: "", code: keyward.DecisionMalformed},
		{name: "wrong key", key: "not-a-key-in-this-keystore", code: keyward.DecisionNotFound},
		{name: "kw_ key not in file", key: "kw_user_3vQb7Hq0N8y4J2kLm9XcA1sT5uVwYz0bC6dE8fG2hJ4kL0mN1pQ", code: keyward.DecisionNotFound},
		{name: "last character changed", key: tokCI[:len(tokCI)-1] + "g", code: keyward.DecisionNotFound},
		{name: "first character changed", key: "d" + tokCI[1:], code: keyward.DecisionNotFound},
		{name: "one character short", key: tokCI[:len(tokCI)-1], code: keyward.DecisionNotFound},
		{name: "one character extra", key: tokCI + "0", code: keyward.DecisionNotFound},
		{name: "prefix only", key: tokCI[:8], code: keyward.DecisionNotFound},
		{name: "upper case", key: strings.ToUpper(tokCI), code: keyward.DecisionNotFound},
		{name: "case of one character", key: "C" + tokCI[1:], code: keyward.DecisionNotFound},
		{name: "leading space never trimmed", key: " " + tokCI, code: keyward.DecisionNotFound},
		{name: "trailing space never trimmed", key: tokCI + " ", code: keyward.DecisionNotFound},
		{name: "trailing newline never trimmed", key: tokCI + "\n", code: keyward.DecisionNotFound},
		{name: "tab around", key: "\t" + tokCI + "\t", code: keyward.DecisionNotFound},
		{name: "non-breaking space around", key: tokCI + "\u00a0", code: keyward.DecisionNotFound},
		{name: "control character inside", key: tokCI[:4] + "\x00" + tokCI[4:], code: keyward.DecisionNotFound},
		{name: "invalid UTF-8", key: tokCI + "\xff", code: keyward.DecisionNotFound},
		{name: "the digest itself", key: keystore.Digest(tokCI), code: keyward.DecisionNotFound},
		{name: "longer than the limit", key: strings.Repeat("a", keystore.MaxTokenLength+1), code: keyward.DecisionNotFound},
		{name: "4097 characters", key: tokLong + "0", code: keyward.DecisionNotFound},
	})
}

// TestKeystoreWildcards checks that a keystore file's permissions are read
// in the permission language of the database's keys: a wildcard segment
// covers what it stands for and nothing beside it, and root may hold "*".
func TestKeystoreWildcards(t *testing.T) {
	ks := mustParse(t, "keys:\n"+
		"  "+keystore.Digest(tokCI)+": {id: ci, role: user, permissions: ['memories:*', 'search.*.run']}\n"+
		"  "+keystore.Digest(tokRoot)+": {id: ops, role: root, permissions: ['*']}\n")
	checkVerify(t, ks, []verifyCase{
		{name: "final wildcard covers a permission under it", key: tokCI, perms: []string{"memories:read", "memories:notes.write"}, code: keyward.DecisionValid, id: "ci", role: keyward.RoleUser},
		{name: "inner wildcard covers one segment", key: tokCI, perms: []string{"search.docs.run"}, code: keyward.DecisionValid, id: "ci", role: keyward.RoleUser},
		{name: "final wildcard does not cover its stem", key: tokCI, perms: []string{"memories"}, code: keyward.DecisionInsufficientPermissions, id: "ci"},
		{name: "inner wildcard does not cover two segments", key: tokCI, perms: []string{"search.docs.all.run"}, code: keyward.DecisionInsufficientPermissions, id: "ci"},
		{name: "other service refused", key: tokCI, perms: []string{"billing:read"}, code: keyward.DecisionInsufficientPermissions, id: "ci"},
		{name: "root with every permission", key: tokRoot, perms: []string{"billing:read"}, code: keyward.DecisionValid, id: "ops", role: keyward.RoleRoot},
	})
}

func TestKeystoreResult(t *testing.T) {
	ks := mustParse(t, testFile())
	res, err := ks.VerifyKey(context.Background(), keyward.VerifyRequest{Key: tokCI})
	if err != nil {
		t.Fatal(err)
	}
	want := &keyward.VerifyResult{
		Valid: true, Code: keyward.DecisionValid, KeyID: "ci",
		Identity: &keyward.Identity{KeyID: "ci", AccountID: "acme", Role: keyward.RoleUser,
			Permissions: []string{"memories:read", "memories:write"}},
		Permissions: []string{"memories:read", "memories:write"},
		Meta:        json.RawMessage(`{"plan":"pro","seats":3}`),
	}
	if got, w := mustJSON(t, res), mustJSON(t, want); got != w {
		t.Errorf("result\n got %s\nwant %s", got, w)
	}
	// The result is the caller's: changing it changes nothing in the
	// keystore.
	res.Permissions[0] = "everything"
	res.Meta[2] = 'X'
	again, _ := ks.VerifyKey(context.Background(), keyward.VerifyRequest{Key: tokCI})
	if again.Permissions[0] != "memories:read" || string(again.Meta) != `{"plan":"pro","seats":3}` {
		t.Errorf("a caller's change reached the keystore: %v %s", again.Permissions, again.Meta)
	}
	if ks.Len() != 6 || !slices.Equal(ks.IDs(), []string{"acme-admin", "ci", "long", "ops", "special", "unicode"}) {
		t.Errorf("Len = %d, IDs = %v", ks.Len(), ks.IDs())
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseAccepts(t *testing.T) {
	d := keystore.Digest(tokCI)
	for _, tt := range []struct {
		name, src string
	}{
		{"yaml", "keys:\n  " + d + ":\n    id: ci\n    role: user\n"},
		{"uppercase digest", "keys:\n  " + strings.ToUpper(d) + ": {id: ci, role: user}\n"},
		{"mixed-case digest", "keys:\n  " + strings.ToUpper(d[:32]) + d[32:] + ": {id: ci, role: user}\n"},
		{"quoted digest", "keys:\n  \"" + d + "\": {id: ci, role: user}\n"},
		{"json", `{"keys": {"` + d + `": {"id": "ci", "role": "user", "permissions": ["a"], "meta": {"x": [1, "y"]}}}}`},
		{"numeric-looking id kept as written", "keys:\n  " + d + ": {id: 0x10, role: user}\n"},
		{"empty permissions", "keys:\n  " + d + ": {id: ci, role: user, permissions: []}\n"},
		{"explicit document", "---\nkeys:\n  " + d + ": {id: ci, role: user}\n...\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ks := mustParse(t, tt.src)
			res, _ := ks.VerifyKey(context.Background(), keyward.VerifyRequest{Key: tokCI})
			if !res.Valid {
				t.Errorf("VerifyKey = %s", res.Code)
			}
		})
	}
	ks := mustParse(t, "keys:\n  "+d+": {id: 0x10, role: user}\n")
	if ids := ks.IDs(); !slices.Equal(ids, []string{"0x10"}) {
		t.Errorf("IDs = %v, want the id as written", ids)
	}
}

func TestParseRefuses(t *testing.T) {
	d1, d2 := keystore.Digest("token-one"), keystore.Digest("token-two")
	for _, tt := range []struct {
		name string
		src  string
		want []string // substrings of the error, each a problem
	}{
		{"empty file", "", []string{"is empty", "omit the keystore setting to turn the keystore off"}},
		{"comments only", "# nothing\n", []string{"is empty", "omit the keystore setting"}},
		{"null document", "~\n", []string{"is empty"}},
		{"no keys field", "other: 1\n", []string{`line 1: unknown field "other"`}},
		{"keys missing", "{}\n", []string{"has no keys", "omit the keystore setting"}},
		{"empty map", "keys: {}\n", []string{"line 1: keys is empty", "would refuse every request", "omit the keystore setting to turn the keystore off"}},
		{"keys null", "keys:\n", []string{"keys is empty"}},
		{"keys a list", "keys: [a, b]\n", []string{"keys must be a mapping"}},
		{"not a mapping", "- a\n- b\n", []string{"must be a mapping"}},
		{"two documents", "keys: {" + d1 + ": {id: a, role: user}}\n---\nkeys: {}\n", []string{"more than one YAML document"}},
		{"syntax error", "keys: {\n", []string{"is not valid YAML or JSON"}},
		{"keys twice", "keys: {" + d1 + ": {id: a, role: user}}\nkeys: {" + d2 + ": {id: b, role: user}}\n", []string{"line 2: keys appears twice"}},
		{"digest outside keys", d1 + ": {id: a, role: user}\n", []string{"line 1: unknown field: a keystore file holds only keys:, and digests go under it"}},

		{"short digest", "keys:\n  " + d1[:63] + ": {id: ci, role: user}\n", []string{`key "ci" (line 2): the key of an entry must be the SHA-256 hex digest`}},
		{"long digest", "keys:\n  " + d1 + "0: {id: ci, role: user}\n", []string{`key "ci" (line 2): the key of an entry must be the SHA-256 hex digest`}},
		{"non-hex digest", "keys:\n  " + d1[:63] + "g: {id: ci, role: user}\n", []string{"SHA-256 hex digest"}},
		{"token instead of digest", "keys:\n  my-secret-token: {id: ci, role: user}\n", []string{`key "ci" (line 2)`, "never the token itself", "keyward keystore hash"}},
		{"sha256: prefix", "keys:\n  sha256:" + d1 + ": {id: ci, role: user}\n", []string{"SHA-256 hex digest"}},
		{"duplicate digest", "keys:\n  " + d1 + ": {id: a, role: user}\n  " + d1 + ": {id: b, role: user}\n", []string{`key "b" (line 3): has the same digest as the key on line 2`}},
		{"duplicate digest after normalising", "keys:\n  " + d1 + ": {id: a, role: user}\n  " + strings.ToUpper(d1) + ": {id: b, role: user}\n", []string{`key "b" (line 3): has the same digest as the key on line 2`}},
		{"duplicate id", "keys:\n  " + d1 + ": {id: ci, role: user}\n  " + d2 + ": {id: ci, role: root}\n", []string{`key "ci" (line 3): id "ci" is already used by the key on line 2`}},

		{"blank id", "keys:\n  " + d1 + ": {id: '  ', role: user}\n", []string{"key on line 2: id is blank"}},
		{"empty id", "keys:\n  " + d1 + ": {id: '', role: user}\n", []string{"key on line 2: id is blank"}},
		{"null id", "keys:\n  " + d1 + ": {id: ~, role: user}\n", []string{"key on line 2: id is blank"}},
		{"missing id", "keys:\n  " + d1 + ": {role: user}\n", []string{"key on line 2: id is blank"}},
		{"id with surrounding space", "keys:\n  " + d1 + ": {id: ' ci', role: user}\n", []string{"id begins or ends with white space"}},
		{"id with newline", "keys:\n  " + d1 + ": {id: \"c\\ni\", role: user}\n", []string{"id must be printable text"}},
		{"id too long", "keys:\n  " + d1 + ": {id: " + strings.Repeat("x", 201) + ", role: user}\n", []string{"id is longer than 200 characters"}},
		{"id a list", "keys:\n  " + d1 + ": {id: [a], role: user}\n", []string{"id must be text"}},
		{"no fields", "keys:\n  " + d1 + ":\n", []string{"key on line 2: has no fields"}},
		{"entry a string", "keys:\n  " + d1 + ": ci\n", []string{"must be a mapping with id, role"}},

		{"missing role", "keys:\n  " + d1 + ": {id: ci}\n", []string{`key "ci" (line 2): role is missing`}},
		{"unknown role", "keys:\n  " + d1 + ": {id: ci, role: admin}\n", []string{`key "ci" (line 2): role "admin" is not one of root, account_admin, user`}},
		{"role in other case", "keys:\n  " + d1 + ": {id: ci, role: Root}\n", []string{`role "Root" is not one of`}},
		{"root with account", "keys:\n  " + d1 + ": {id: ci, role: root, account: acme}\n", []string{"a root key belongs to no account"}},
		{"account_admin without account", "keys:\n  " + d1 + ": {id: ci, role: account_admin}\n", []string{"an account_admin key needs an account"}},

		{"unknown field", "keys:\n  " + d1 + ":\n    id: ci\n    role: user\n    permission: [a]\n", []string{`key "ci" (line 2): unknown field "permission" on line 5: use id, subject, role, account, permissions, meta`}},
		{"unknown field not quoted back", "keys:\n  " + d1 + ": {id: ci, role: user, Secret-Token-123: x}\n", []string{"unknown field: use id"}},
		{"unknown top-level field", "keys: {" + d1 + ": {id: ci, role: user}}\nlisten: x\n", []string{`line 2: unknown field "listen"`}},
		{"field twice", "keys:\n  " + d1 + ":\n    id: ci\n    role: user\n    role: root\n", []string{`key "ci" (line 2): role appears twice on line 5`}},
		{"permissions a string", "keys:\n  " + d1 + ": {id: ci, role: user, permissions: a b}\n", []string{"permissions must be a list"}},
		{"blank permission", "keys:\n  " + d1 + ": {id: ci, role: user, permissions: [a, '']}\n", []string{`key "ci" (line 2): permission 2 must be`}},
		{"permission with space", "keys:\n  " + d1 + ": {id: ci, role: user, permissions: ['a b']}\n", []string{"permission 1 must be"}},
		{"permission with comma", "keys:\n  " + d1 + ": {id: ci, role: user, permissions: ['a,b']}\n", []string{"without white space, commas"}},
		{"wildcard within a segment", "keys:\n  " + d1 + ": {id: ci, role: user, permissions: ['mem*:read']}\n", []string{`key "ci" (line 2): permission 1 must be`, "'*' only as a whole segment"}},
		{"every permission on a user key", "keys:\n  " + d1 + ": {id: ci, role: user, permissions: ['*']}\n", []string{`key "ci" (line 2): permission "*" (every permission) is for root keys only`}},
		{"every permission on an account admin key", "keys:\n  " + d1 + ": {id: ci, role: account_admin, account: acme, permissions: [a, '*']}\n", []string{"is for root keys only"}},
		{"permission not text", "keys:\n  " + d1 + ": {id: ci, role: user, permissions: [[a]]}\n", []string{"permission 1 must be text"}},
		{"meta a list", "keys:\n  " + d1 + ": {id: ci, role: user, meta: [a]}\n", []string{"meta must be a mapping"}},
		{"meta not JSON", "keys:\n  " + d1 + ": {id: ci, role: user, meta: {x: .inf}}\n", []string{"cannot be written as JSON"}},
		{"meta too large", "keys:\n  " + d1 + ": {id: ci, role: user, meta: {x: " + strings.Repeat("y", 17<<10) + "}}\n", []string{"meta is larger than"}},
		{"alias as entry", "keys:\n  " + d1 + ": &e {id: a, role: user}\n  " + d2 + ": *e\n", []string{"key on line 3: must be a mapping"}},

		{"every problem reported", "keys:\n  " + d1 + ": {id: '', role: user}\n  " + d2 + ": {id: b, role: admin, extra: 1}\n  bad: {id: c, role: user}\n",
			[]string{"key on line 2: id is blank", `key "b" (line 3): unknown field "extra": use`, `key "b" (line 3): role "admin"`, `key "c" (line 4): the key of an entry`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ks, err := keystore.Parse(strings.NewReader(tt.src), "keys.yaml")
			if err == nil {
				t.Fatalf("Parse accepted %q (%d keys)", tt.src, ks.Len())
			}
			if ks != nil {
				t.Errorf("Parse returned a keystore with its error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "keystore keys.yaml: ") || strings.Contains(msg, "\n") {
				t.Errorf("error %q is not one line naming the file", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q\ndoes not contain %q", msg, w)
				}
			}
			if fe, ok := err.(*keystore.FileError); !ok || len(fe.Problems) < len(tt.want) && tt.name == "every problem reported" {
				t.Errorf("error is %T %v, want a *FileError with a problem each", err, err)
			}
			for _, secret := range []string{"my-secret-token", "Secret-Token-123"} {
				if strings.Contains(msg, secret) {
					t.Errorf("error quotes what may be a token: %q", msg)
				}
			}
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	src := "keys: {}\n# " + strings.Repeat("x", keystore.MaxFileSize)
	if _, err := keystore.Parse(strings.NewReader(src), "big.yaml"); err == nil || !strings.Contains(err.Error(), "is larger than 4 MiB") {
		t.Errorf("Parse = %v", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.yaml")
	if err := os.WriteFile(path, []byte(testFile()), 0o600); err != nil {
		t.Fatal(err)
	}
	ks, err := keystore.Load(path)
	if err != nil || ks.Len() != 6 {
		t.Fatalf("Load = %v, %v", ks, err)
	}
	if _, err := keystore.Load(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("Load of a missing file = %v", err)
	}
	empty := filepath.Join(dir, "empty.yaml")
	if err := os.WriteFile(empty, []byte("keys: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := keystore.Load(empty); err == nil || !strings.Contains(err.Error(), "keystore "+empty+": line 1: keys is empty") {
		t.Errorf("Load of an empty keystore = %v", err)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	ks := mustParse(t, testFile())
	out, err := ks.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte(strings.ToUpper(keystore.Digest(tokRoot)))) {
		t.Errorf("Marshal kept an uppercase digest:\n%s", out)
	}
	again := mustParse(t, string(out))
	assertSameKeys(t, ks, again)
}

// assertSameKeys checks that a and b answer alike for every token of the
// test file, and hold the same ids.
func assertSameKeys(t *testing.T, a, b *keystore.Keystore) {
	t.Helper()
	if !slices.Equal(a.IDs(), b.IDs()) {
		t.Fatalf("ids %v != %v", a.IDs(), b.IDs())
	}
	for _, tok := range []string{tokCI, tokAdmin, tokRoot, tokSpecial, tokLong, tokUnicode} {
		ra, _ := a.VerifyKey(context.Background(), keyward.VerifyRequest{Key: tok})
		rb, _ := b.VerifyKey(context.Background(), keyward.VerifyRequest{Key: tok})
		if mustJSON(t, ra) != mustJSON(t, rb) {
			t.Errorf("token %s: %s != %s", ra.KeyID, mustJSON(t, ra), mustJSON(t, rb))
		}
	}
}

func TestCheckToken(t *testing.T) {
	for _, tok := range []string{tokCI, tokSpecial, tokLong, tokUnicode, "a", "with inner space"} {
		if err := keystore.CheckToken(tok); err != nil {
			t.Errorf("CheckToken(%q) = %v", tok, err)
		}
	}
	for _, tok := range []string{"", " a", "a ", "a\n", "a\r\n", "\ta", "a\x00b", "a\x7fb", "a\u0085", "\xff", strings.Repeat("a", keystore.MaxTokenLength+1)} {
		err := keystore.CheckToken(tok)
		if err == nil {
			t.Errorf("CheckToken(%q) = nil", tok)
			continue
		}
		if tok != "" && strings.Contains(err.Error(), tok) {
			t.Errorf("CheckToken error quotes the token: %v", err)
		}
	}
	if d := keystore.Digest("abc"); d != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("Digest(abc) = %s", d)
	}
}

// TestDocsExample keeps the example in docs/simple-modes.md working.
func TestDocsExample(t *testing.T) {
	b, err := os.ReadFile("../docs/simple-modes.md")
	if err != nil {
		t.Skip(err)
	}
	_, rest, ok := strings.Cut(string(b), "```yaml\n")
	src, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("no yaml block in docs/simple-modes.md")
	}
	ks := mustParse(t, src)
	checkVerify(t, ks, []verifyCase{
		{name: "foo", key: "foo", perms: []string{"memories:write"}, code: keyward.DecisionValid, id: "ci", role: keyward.RoleUser},
		{name: "bar", key: "bar", perms: []string{"anything"}, code: keyward.DecisionValid, id: "ops", role: keyward.RoleRoot},
		{name: "baz", key: "baz", code: keyward.DecisionNotFound},
	})
}

// TestSubject: tokens of one subject keep their own ids and share the
// identity's user; the subject survives Marshal, and is checked like an id.
func TestSubject(t *testing.T) {
	old, fresh, other := "alice-old-token", "alice-new-token", "ci-token"
	src := "keys:\n" +
		"  " + keystore.Digest(old) + ": {id: alice-1, subject: alice, role: user, account: acme}\n" +
		"  " + keystore.Digest(fresh) + ": {id: alice-2, subject: alice, role: user, account: acme}\n" +
		"  " + keystore.Digest(other) + ": {id: ci, role: root}\n"
	ks := mustParse(t, src)
	for tok, id := range map[string]string{old: "alice-1", fresh: "alice-2"} {
		res, _ := ks.VerifyKey(context.Background(), keyward.VerifyRequest{Key: tok, Agent: "a"})
		if !res.Valid || res.KeyID != id || res.Identity.KeyID != id || res.Identity.UserID != "alice" || res.Identity.AccountID != "acme" || res.Identity.Agent != "a" {
			t.Errorf("%s: %+v %+v", id, res, res.Identity)
		}
	}
	if res, _ := ks.VerifyKey(context.Background(), keyward.VerifyRequest{Key: other}); res.Identity.UserID != "" {
		t.Errorf("an entry without a subject has user %q", res.Identity.UserID)
	}
	out, err := ks.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	again := mustParse(t, string(out))
	if res, _ := again.VerifyKey(context.Background(), keyward.VerifyRequest{Key: fresh}); res.Identity.UserID != "alice" {
		t.Errorf("after Marshal: %+v\n%s", res.Identity, out)
	}

	d := keystore.Digest(old)
	for _, tc := range []struct{ src, want string }{
		{"keys:\n  " + d + ": {id: a, subject: [x], role: user}\n", `key "a" (line 2): subject must be text`},
		{"keys:\n  " + d + ": {id: a, subject: ' x', role: user}\n", `key "a" (line 2): subject begins or ends with white space`},
		{"keys:\n  " + d + ": {id: a, subject: x, subject: y, role: user}\n", "subject appears twice"},
		// A shared subject never makes ids shareable.
		{"keys:\n  " + d + ": {id: a, subject: x, role: user}\n  " + keystore.Digest(fresh) + ": {id: a, subject: x, role: user}\n", `id "a" is already used`},
	} {
		_, err := keystore.Parse(strings.NewReader(tc.src), "k.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want %q", tc.src, err, tc.want)
		}
	}

	// Imported, the subject of a user entry is its user.
	entries, err := keystore.ParseImport(strings.NewReader(src), "k.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 || entries[0].User != "alice" || entries[1].User != "alice" || entries[2].User != "" {
		t.Errorf("import entries = %+v", entries)
	}
}
