package keyring

import (
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

func FuzzParseKeyList(f *testing.F) {
	f.Add("1:" + key1.Reveal())
	f.Add("1:" + key1.Reveal() + ",2:" + key2.Reveal())
	f.Add("# c\n3:base64:" + strings.Repeat("A", 43) + "\n")
	f.Add("0:hex:00")
	f.Add("-1:hex:")
	f.Add("1:hex:" + strings.Repeat("g", 64))
	f.Add(":::,,,\n#")
	f.Add("99999999999999999999:hex:" + strings.Repeat("0", 64))
	f.Fuzz(func(t *testing.T, s string) {
		keys, err := ParseKeyList(strings.Split(s, "\n"), "fuzz")
		if err != nil {
			if keyward.ErrorCode(err) != keyward.EINVALID {
				t.Fatalf("error code %q, want invalid: %v", keyward.ErrorCode(err), err)
			}
			return
		}
		if len(keys) == 0 {
			t.Fatal("no error and no keys")
		}
		for v, k := range keys {
			if v <= 0 {
				t.Fatalf("accepted version %d", v)
			}
			b, err := decodeKey(k)
			if err != nil || len(b) != KeyLen {
				t.Fatalf("accepted version %d decodes to %d bytes, %v", v, len(b), err)
			}
		}
		if _, err := New(keys); err != nil {
			t.Fatalf("New rejects what ParseKeyList accepted: %v", err)
		}
	})
}
