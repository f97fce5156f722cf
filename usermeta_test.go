package keyward_test

import (
	"encoding/json"
	"testing"

	"github.com/keyward/keyward"
)

func TestMergeMeta(t *testing.T) {
	for _, c := range []struct{ inherited, own, want string }{
		{"", "", ""},
		{`{"a":1}`, "", `{"a":1}`},
		{"", `{"a":1}`, `{"a":1}`},
		{"null", `{"a":1}`, `{"a":1}`},
		// the key's field wins; the user's others are kept
		{`{"dsn":"user","region":"eu"}`, `{"dsn":"key"}`, `{"dsn":"key","region":"eu"}`},
		// top level only: a nested object is replaced whole
		{`{"db":{"host":"h","port":1}}`, `{"db":{"host":"k"}}`, `{"db":{"host":"k"}}`},
		// a key's explicit null still wins over the user's value
		{`{"a":1}`, `{"a":null}`, `{"a":null}`},
		// not objects: own wins whole
		{`[1]`, `{"a":1}`, `{"a":1}`},
		{`{"a":1}`, `"x"`, `"x"`},
	} {
		got := keyward.MergeMeta(json.RawMessage(c.inherited), json.RawMessage(c.own))
		if string(got) != c.want {
			t.Errorf("MergeMeta(%s, %s) = %s, want %s", c.inherited, c.own, got, c.want)
		}
	}
}
