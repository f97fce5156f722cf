package apikey

import (
	"bytes"
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

func TestGenerateParse(t *testing.T) {
	for _, prefix := range []string{PrefixRoot, PrefixAccountAdmin, PrefixUser, "acme_live", "ab", "a_b_c_d_e_f_g_h_i_j0"} {
		secret, err := Generate(prefix)
		if err != nil {
			t.Fatalf("Generate(%q): %v", prefix, err)
		}
		raw := secret.Reveal()
		if want := len(prefix) + 1 + BodyLen; len(raw) != want {
			t.Errorf("len(%q) = %d, want %d", raw, len(raw), want)
		}
		got, ok := Parse(raw)
		if !ok || got != prefix {
			t.Errorf("Parse(%q) = %q, %v; want %q, true", raw, got, ok, prefix)
		}
		if start := Start(raw); start != raw[:len(prefix)+1+StartLen] {
			t.Errorf("Start(%q) = %q", raw, start)
		}
	}
}

func TestGenerateIsRandom(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		s, err := Generate(PrefixUser)
		if err != nil {
			t.Fatal(err)
		}
		if seen[s.Reveal()] {
			t.Fatalf("duplicate key %s after %d keys", s.Reveal(), len(seen))
		}
		seen[s.Reveal()] = true
	}
}

func TestGenerateRejectsBadPrefix(t *testing.T) {
	for _, p := range []string{"", "a", "Kw_user", "kw-user", "kw_", "_kw", "1kw", "abcdefghijklmnopqrstu"} {
		if _, err := Generate(p); keyward.ErrorCode(err) != keyward.EINVALID {
			t.Errorf("Generate(%q) error = %v, want invalid", p, err)
		}
	}
}

func TestGenerateUsesOnlyUnbiasedBytes(t *testing.T) {
	// 248..255 must be skipped; 0 and 247 map to '0' and alphabet[247%62].
	src := bytes.Repeat([]byte{255, 248, 0, 247}, 64)
	s, err := generate(bytes.NewReader(src), "kw_user")
	if err != nil {
		t.Fatal(err)
	}
	body := strings.TrimPrefix(s.Reveal(), "kw_user_")[:RandomLen]
	want := strings.Repeat("0"+string(alphabet[247%62]), RandomLen)[:RandomLen]
	if body != want {
		t.Errorf("body = %q, want %q", body, want)
	}
}

func TestParseRejects(t *testing.T) {
	good, err := Generate(PrefixUser)
	if err != nil {
		t.Fatal(err)
	}
	raw := good.Reveal()
	flip := func(i int) string {
		b := []byte(raw)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	cases := map[string]string{
		"empty":              "",
		"wrong checksum":     flip(len(raw) - 1),
		"changed body":       flip(len(raw) - 10),
		"changed prefix":     "kw_usex" + raw[7:],
		"too short":          raw[:len(raw)-1],
		"too long":           raw + "0",
		"bad character":      raw[:12] + "-" + raw[13:],
		"no underscore":      strings.ReplaceAll(raw, "_", "a"),
		"uppercase prefix":   "KW_USER" + raw[7:],
		"over max length":    strings.Repeat("a", MaxLen+1),
		"space":              raw + " ",
		"non-ascii":          raw[:20] + "é" + raw[22:],
		"prefix ends with _": "kw__" + raw[3:],
	}
	for name, s := range cases {
		if _, ok := Parse(s); ok {
			t.Errorf("%s: Parse(%q) accepted", name, s)
		}
		if Start(s) != "" {
			t.Errorf("%s: Start(%q) != \"\"", name, s)
		}
	}
}

func TestParseDoesNotAllocate(t *testing.T) {
	s, _ := Generate(PrefixUser)
	raw := s.Reveal()
	if n := testing.AllocsPerRun(100, func() { Parse(raw) }); n != 0 {
		t.Errorf("Parse allocates %v times per call", n)
	}
}

func TestChecksumMatchesCRC32(t *testing.T) {
	// A key generated with a known body must carry the documented checksum.
	s, err := generate(bytes.NewReader(bytes.Repeat([]byte{1}, 64)), "kw_user")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Reveal(), "kw_user_"+strings.Repeat("1", RandomLen); got[:len(want)] != want {
		t.Fatalf("key = %q", got)
	}
	if _, ok := Parse(s.Reveal()); !ok {
		t.Fatal("Parse rejected a generated key")
	}
}

func TestValidPrefix(t *testing.T) {
	for p, want := range map[string]bool{
		"kw_user": true, "ab": true, "a1": true, "acme_live": true,
		"a": false, "kw_": false, "Ab": false, "a-b": false, "9a": false,
		"abcdefghijklmnopqrst": true, "abcdefghijklmnopqrstu": false,
	} {
		if got := ValidPrefix(p); got != want {
			t.Errorf("ValidPrefix(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestDefaultPrefix(t *testing.T) {
	for _, c := range []struct {
		role          keyward.Role
		account, want string
	}{
		{keyward.RoleRoot, "acme", PrefixRoot},
		{keyward.RoleAccountAdmin, "acme", PrefixAccountAdmin},
		{keyward.RoleUser, "", PrefixUser},
		{keyward.RoleUser, "acme_live", "acme_live"},
	} {
		if got := DefaultPrefix(c.role, c.account); got != c.want {
			t.Errorf("DefaultPrefix(%s, %q) = %q, want %q", c.role, c.account, got, c.want)
		}
	}
}

func TestNewIDIsOrdered(t *testing.T) {
	a := NewID("key")
	if !strings.HasPrefix(a, "key_") || len(a) != len("key_")+22 {
		t.Fatalf("NewID = %q", a)
	}
	seen := map[string]bool{a: true}
	for range 100 {
		b := NewID("key")
		if seen[b] {
			t.Fatalf("duplicate id %s", b)
		}
		seen[b] = true
		if b[:14] < a[:14] {
			t.Fatalf("id time part went backwards: %s after %s", b, a)
		}
		a = b
	}
}

// TestBase62Table: the table Parse reads agrees with the alphabet for
// every byte, and a byte outside it anywhere in the body (the checksum
// included) is refused, whatever the checksum of the rest.
func TestBase62Table(t *testing.T) {
	for c := range 256 {
		if got, want := base62Value(byte(c)), strings.IndexByte(alphabet, byte(c)); got != want {
			t.Errorf("base62Value(%#x) = %d, want %d", c, got, want)
		}
	}
	good, err := Generate(PrefixUser)
	if err != nil {
		t.Fatal(err)
	}
	raw := good.Reveal()
	for i := len(raw) - BodyLen; i < len(raw); i++ {
		for _, c := range []byte{'_', '-', '/', '+', '=', ' ', 0, 0x7f, 0x80, 0xff, '0' - 1, '9' + 1, 'A' - 1, 'Z' + 1, 'a' - 1, 'z' + 1} {
			b := []byte(raw)
			b[i] = c
			if _, ok := Parse(string(b)); ok {
				t.Fatalf("Parse accepted byte %#x at %d", c, i)
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, p := range []string{PrefixRoot, PrefixUser, "acme_live"} {
		s, _ := Generate(p)
		f.Add(s.Reveal())
	}
	f.Add("")
	f.Add("kw_user_")
	f.Add(strings.Repeat("_", 60))
	f.Fuzz(func(t *testing.T, raw string) {
		prefix, ok := Parse(raw)
		if !ok {
			if prefix != "" || Start(raw) != "" {
				t.Fatalf("rejected %q but returned prefix %q", raw, prefix)
			}
			return
		}
		// Everything accepted has the documented shape.
		if len(raw) > MaxLen || !ValidPrefix(prefix) || len(raw) != len(prefix)+1+BodyLen || raw[len(prefix)] != '_' {
			t.Fatalf("accepted %q with prefix %q", raw, prefix)
		}
		for i := len(prefix) + 1; i < len(raw); i++ {
			if strings.IndexByte(alphabet, raw[i]) < 0 {
				t.Fatalf("accepted non-base62 body %q", raw)
			}
		}
		if checksum(raw[:len(raw)-ChecksumLen]) != checksumOf(raw) {
			t.Fatalf("accepted %q with a wrong checksum", raw)
		}
	})
}

func checksumOf(raw string) uint32 {
	var sum uint32
	for _, c := range []byte(raw[len(raw)-ChecksumLen:]) {
		sum = sum*62 + uint32(base62Value(c))
	}
	return sum
}

func TestRedact(t *testing.T) {
	key, err := Generate("kw_user")
	if err != nil {
		t.Fatal(err)
	}
	raw := key.Reveal()
	// A wrong checksum still looks like a key. The character changed is
	// never the one there (it was "x" in one generated key in 62).
	c := "x"
	if raw[20] == 'x' {
		c = "y"
	}
	typo := raw[:20] + c + raw[21:]
	if _, ok := Parse(typo); ok || !LooksLikeKey(typo) || !LooksLikeKey(raw) {
		t.Fatalf("LooksLikeKey(key) = %v, LooksLikeKey(key with a typo) = %v; want both", LooksLikeKey(raw), LooksLikeKey(typo))
	}
	for in, want := range map[string]string{
		"key " + raw + " not found":              "key [redacted key] not found",
		"/v1/keys/" + raw + "/revoke":            "/v1/keys/[redacted key]/revoke",
		`after "` + typo + `": give a cursor`:    `after "[redacted key]": give a cursor`,
		raw + "," + raw:                          "[redacted key],[redacted key]",
		"key key_000VboA9b9FDaabsc2cM6y missing": "key key_000VboA9b9FDaabsc2cM6y missing",
		"account acc_1 not found":                "account acc_1 not found",
		"":                                       "",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
	if LooksLikeKey(NewID("key")) || LooksLikeKey("_"+raw[len(raw)-BodyLen:]) {
		t.Error("an id, or a body without a prefix, looks like a key")
	}
	if n := testing.AllocsPerRun(10, func() { Redact("key key_000VboA9b9FDaabsc2cM6y not found") }); n != 0 {
		t.Errorf("Redact of text without a key allocates %v times", n)
	}
}
