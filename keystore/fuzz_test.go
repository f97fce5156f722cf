package keystore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/keystore"
)

// FuzzParse checks that Parse never panics, that what it accepts is a
// keystore that verifies, and that accepted files round-trip through
// Marshal to the same keys.
func FuzzParse(f *testing.F) {
	d := keystore.Digest("token")
	for _, seed := range []string{
		testFile(),
		"",
		"keys: {}\n",
		"keys:\n  " + d + ": {id: ci, role: user}\n",
		"keys:\n  " + strings.ToUpper(d) + ": {id: ci, role: root, meta: {a: [1, 2.5, true, null, {b: c}]}}\n",
		`{"keys": {"` + d + `": {"id": "ci", "role": "account_admin", "account": "acme", "permissions": ["x", "y"]}}}`,
		"keys:\n  " + d + ": {id: \"null\", role: user, account: \"yes\", permissions: [\"1\", \"0x1\"]}\n",
		"keys:\n  " + d + ": &a {id: x, role: user}\n  " + keystore.Digest("t2") + ": *a\n",
		"keys:\n  " + d + ":\n    <<: {id: x}\n    role: user\n",
		"keys: !!map {}\n",
		"a: &a [*a]\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, src string) {
		ks, err := keystore.Parse(strings.NewReader(src), "fuzz.yaml")
		if err != nil {
			if ks != nil {
				t.Fatal("Parse returned a keystore with an error")
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			return
		}
		if ks.Len() == 0 {
			t.Fatal("Parse accepted a keystore without keys")
		}
		ids := ks.IDs()
		for i, id := range ids {
			if strings.TrimSpace(id) == "" || i > 0 && ids[i-1] == id {
				t.Fatalf("accepted ids %q", ids)
			}
		}
		out, err := ks.Marshal()
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		again, err := keystore.Parse(strings.NewReader(string(out)), "marshalled.yaml")
		if err != nil {
			t.Fatalf("Parse(Marshal()) = %v\ninput:\n%s\nmarshalled:\n%s", err, src, out)
		}
		out2, err := again.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != string(out2) {
			t.Fatalf("round trip changed the keystore:\n%s\n---\n%s", out, out2)
		}
		// No static keystore accepts the empty key.
		if res, _ := ks.VerifyKey(context.Background(), keyward.VerifyRequest{Key: ""}); res.Code != keyward.DecisionMalformed {
			t.Fatalf("empty key = %s", res.Code)
		}
	})
}
