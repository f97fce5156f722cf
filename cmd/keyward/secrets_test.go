package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keywardtest"
)

// secretForms returns the ways a secret could show up in text: as is and,
// for keys, the body without the prefix; for bytes (a pepper) also hex and
// base64 in every alphabet.
func keyForms(raw string) []string {
	forms := []string{raw}
	if i := strings.LastIndexByte(raw, '_'); i > 0 && len(raw)-i > apikey.StartLen+8 {
		// The start (prefix + 4 characters) may be shown; the rest never.
		forms = append(forms, raw[i+1+apikey.StartLen:])
	}
	return forms
}

func pepperForms(b []byte) []string {
	return []string{
		string(b),
		hex.EncodeToString(b),
		strings.ToUpper(hex.EncodeToString(b)),
		base64.StdEncoding.EncodeToString(b),
		base64.RawStdEncoding.EncodeToString(b),
		base64.URLEncoding.EncodeToString(b),
		base64.RawURLEncoding.EncodeToString(b),
	}
}

// assertNoSecrets fails for every line of text holding one of forms.
func assertNoSecrets(t *testing.T, what, text string, forms map[string]string) {
	t.Helper()
	for i, line := range strings.Split(text, "\n") {
		for form, name := range forms {
			if strings.Contains(line, form) {
				t.Errorf("%s line %d holds %s: %s", what, i+1, name, line)
			}
		}
	}
}

// TestSecretsNeverLogged runs a whole lifecycle with debug logging and
// checks that no raw key created during the run, and not the pepper,
// appears in any log line or error output.
func TestSecretsNeverLogged(t *testing.T) {
	pepper := make([]byte, 32)
	rand.Read(pepper)
	env := map[string]string{
		"KEYWARD_PEPPER":    "hex:" + hex.EncodeToString(pepper),
		"KEYWARD_LOG_LEVEL": "debug",
	}
	s := startServer(t, env)
	env["KEYWARD_DATA"] = s.data

	var secrets []string // every raw key seen or sent during the run
	var errOut strings.Builder
	cli := func(key string, args ...string) result {
		t.Helper()
		r := s.cli(t, key, args...)
		errOut.WriteString(r.stderr)
		return r
	}
	created := func(key string, args ...string) keyward.CreatedKey {
		t.Helper()
		r := cli(key, append(args, "-o", "json")...)
		var k keyward.CreatedKey
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &k) != nil || k.Secret == "" {
			t.Fatalf("keyward %s: exit %d %s", strings.Join(args, " "), r.code, r.stderr)
		}
		secrets = append(secrets, k.Secret)
		return k
	}
	id := func(key string, args ...string) string {
		t.Helper()
		r := cli(key, append(args, "-o", "json")...)
		var v struct{ ID string }
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &v) != nil {
			t.Fatalf("keyward %s: exit %d %s", strings.Join(args, " "), r.code, r.stderr)
		}
		return v.ID
	}

	root := s.rootKey
	secrets = append(secrets, root)
	acc := id(root, "accounts", "create", "--name", "acme")
	usr := id(root, "users", "create", "--account", acc, "--name", "alice")
	root2 := created(root, "keys", "create", "--role", "root", "--name", "ops")
	admin := created(root, "keys", "create", "--account", acc, "--role", "account_admin", "--permission", "keys:verify", "--permission", "memories:read")
	user := created(admin.Secret, "keys", "create", "--account", acc, "--user", usr, "--permission", "memories:read")
	cli(root2.Secret, "keys", "list")
	cli(root2.Secret, "keys", "list", "-o", "json")
	cli(admin.Secret, "keys", "get", user.ID)
	cli(user.Secret, "whoami")

	// Verify: valid, missing permission, malformed, unknown.
	unknown, _ := apikey.Generate("kw_user")
	malformed := keywardtest.BreakChecksum(user.Secret)
	secrets = append(secrets, unknown.Reveal(), malformed)
	for _, k := range []string{user.Secret, malformed, unknown.Reveal()} {
		cli(admin.Secret, "verify", k, "--permission", "memories:read")
	}
	cli(admin.Secret, "verify", user.Secret, "--permission", "memories:write")

	// Rotate, revoke, verify the revoked key, delete.
	rotated := created(admin.Secret, "keys", "rotate", user.ID, "--grace", "1h")
	cli(admin.Secret, "verify", rotated.Secret)
	cli(admin.Secret, "keys", "revoke", user.ID)
	cli(admin.Secret, "verify", user.Secret)
	cli(admin.Secret, "keys", "delete", rotated.ID)
	cli(admin.Secret, "verify", rotated.Secret)

	// Failed authentication: revoked, deleted, unknown and malformed keys.
	for _, k := range []string{user.Secret, rotated.Secret, unknown.Reveal(), malformed} {
		if r := cli(k, "whoami"); r.code != ExitUnauthorized {
			t.Errorf("whoami with a bad key: exit %d", r.code)
		}
	}
	// Raw requests a careless client might send: two different keys, a
	// key in the query string, a key in a JSON body field that is refused.
	for _, req := range []func() *http.Request{
		func() *http.Request {
			r, _ := http.NewRequest("GET", s.url+"/v1/whoami", nil)
			r.Header.Set("Authorization", "Bearer "+root2.Secret)
			r.Header.Set("X-API-Key", unknown.Reveal())
			return r
		},
		func() *http.Request {
			r, _ := http.NewRequest("GET", s.url+"/v1/whoami?api_key="+unknown.Reveal(), nil)
			return r
		},
		func() *http.Request {
			r, _ := http.NewRequest("POST", s.url+"/v1/keys/verify", bytes.NewBufferString(`{"key":"`+unknown.Reveal()+`","bogus":"`+malformed+`"}`))
			r.Header.Set("Authorization", "Bearer "+root2.Secret)
			return r
		},
	} {
		resp, err := http.DefaultClient.Do(req())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	// Offline bootstrap refusing, and config check, on the same settings.
	r := runCLI(t, env, "bootstrap")
	errOut.WriteString(r.stderr)
	if r.code != ExitConflict {
		t.Errorf("bootstrap on a bootstrapped store: exit %d", r.code)
	}
	check := runCLI(t, env, "config", "check")
	errOut.WriteString(check.stderr)

	s.stop(t) // flushes usage and logs shutdown
	logs := s.stderr.String()
	if !strings.Contains(logs, "level=DEBUG") {
		t.Fatalf("no debug lines captured; the test would prove nothing:\n%s", logs)
	}

	forms := map[string]string{}
	for i, k := range secrets {
		for _, f := range keyForms(k) {
			forms[f] = "raw key #" + strconv.Itoa(i)
		}
	}
	for _, f := range pepperForms(pepper) {
		forms[f] = "the pepper"
	}
	assertNoSecrets(t, "server log", logs, forms)
	assertNoSecrets(t, "CLI error output", errOut.String(), forms)
	assertNoSecrets(t, "config check output", check.stdout, forms)
}
