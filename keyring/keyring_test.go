package keyring

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/keyward/keyward"
)

var (
	key1 = keyward.Secret("hex:" + strings.Repeat("11", KeyLen))
	key2 = keyward.Secret("base64:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, KeyLen)))
)

func mustNew(t *testing.T, keys map[int]keyward.Secret) *Keyring {
	t.Helper()
	k, err := New(keys)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return k
}

func wantCode(t *testing.T, err error, code string, contains ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", code)
	}
	if got := keyward.ErrorCode(err); got != code {
		t.Errorf("code = %q, want %q (error: %v)", got, code, err)
	}
	for _, c := range contains {
		if !strings.Contains(err.Error(), c) {
			t.Errorf("error %q does not mention %q", err, c)
		}
	}
}

func TestSealOpen(t *testing.T) {
	k := mustNew(t, map[int]keyward.Secret{1: key1})
	ad := []byte("audit_log/42")
	for _, plain := range [][]byte{nil, {}, []byte("x"), []byte(`{"dsn":"postgres://u:p@db/tenant"}`), bytes.Repeat([]byte("a"), 1<<16)} {
		v, sealed, err := k.Seal(plain, ad)
		if err != nil {
			t.Fatalf("Seal: %v", err)
		}
		if v != 1 {
			t.Errorf("Seal version = %d, want 1", v)
		}
		// Short plaintexts turn up in random bytes by chance: check longer ones.
		if len(plain) >= 8 && bytes.Contains(sealed, plain) {
			t.Errorf("sealed value contains the plaintext")
		}
		got, err := k.Open(v, sealed, ad)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if !bytes.Equal(got, plain) || got == nil {
			t.Errorf("Open = %q, want %q (non-nil)", got, plain)
		}
	}
}

func TestSealUsesFreshNonces(t *testing.T) {
	k := mustNew(t, map[int]keyward.Secret{1: key1})
	_, a, _ := k.Seal([]byte("same"), nil)
	_, b, _ := k.Seal([]byte("same"), nil)
	if bytes.Equal(a[:NonceLen], b[:NonceLen]) || bytes.Equal(a, b) {
		t.Errorf("two seals of the same plaintext share a nonce")
	}
}

func TestOpenRejects(t *testing.T) {
	k := mustNew(t, map[int]keyward.Secret{1: key1})
	v, sealed, err := k.Seal([]byte("secret meta"), []byte("keys/1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("wrong additional data", func(t *testing.T) {
		_, err := k.Open(v, sealed, []byte("keys/2"))
		wantCode(t, err, keyward.EINTERNAL, "authentication failed")
	})
	t.Run("missing additional data", func(t *testing.T) {
		_, err := k.Open(v, sealed, nil)
		wantCode(t, err, keyward.EINTERNAL, "authentication failed")
	})
	t.Run("each byte tampered", func(t *testing.T) {
		for i := range sealed {
			bad := bytes.Clone(sealed)
			bad[i] ^= 0x01
			if _, err := k.Open(v, bad, []byte("keys/1")); err == nil {
				t.Fatalf("byte %d flipped: Open succeeded", i)
			}
		}
	})
	t.Run("truncated", func(t *testing.T) {
		for _, n := range []int{0, 1, NonceLen, len(sealed) - 1} {
			_, err := k.Open(v, sealed[:n], []byte("keys/1"))
			wantCode(t, err, keyward.EINTERNAL)
		}
	})
	t.Run("unknown version", func(t *testing.T) {
		_, err := k.Open(7, sealed, []byte("keys/1"))
		wantCode(t, err, keyward.EINTERNAL, "master key version 7 is not configured: add it to master_keys")
	})
	t.Run("other key under the same version", func(t *testing.T) {
		other := mustNew(t, map[int]keyward.Secret{1: key2})
		_, err := other.Open(v, sealed, []byte("keys/1"))
		wantCode(t, err, keyward.EINTERNAL, "authentication failed")
	})
}

func TestRotation(t *testing.T) {
	old := mustNew(t, map[int]keyward.Secret{1: key1})
	v1, sealed1, err := old.Seal([]byte("before rotation"), []byte("ad"))
	if err != nil || v1 != 1 {
		t.Fatalf("Seal = %d, %v; want version 1", v1, err)
	}

	k := mustNew(t, map[int]keyward.Secret{1: key1, 2: key2})
	if k.Current() != 2 {
		t.Errorf("Current = %d, want 2", k.Current())
	}
	if got := k.Versions(); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Errorf("Versions = %v, want [1 2]", got)
	}
	v2, sealed2, err := k.Seal([]byte("after rotation"), []byte("ad"))
	if err != nil || v2 != 2 {
		t.Fatalf("Seal = %d, %v; want version 2", v2, err)
	}
	if got, err := k.Open(v1, sealed1, []byte("ad")); err != nil || string(got) != "before rotation" {
		t.Errorf("Open(v1) = %q, %v", got, err)
	}
	if got, err := k.Open(v2, sealed2, []byte("ad")); err != nil || string(got) != "after rotation" {
		t.Errorf("Open(v2) = %q, %v", got, err)
	}
	// Data sealed under v2 names v2; opening it as v1 fails.
	if _, err := k.Open(1, sealed2, []byte("ad")); err == nil {
		t.Errorf("Open(1, data sealed under 2) succeeded")
	}
	// The old keyring does not know v2 and says so.
	_, err = old.Open(v2, sealed2, []byte("ad"))
	wantCode(t, err, keyward.EINTERNAL, "master key version 2 is not configured")
}

func TestConcurrentUse(t *testing.T) {
	k := mustNew(t, map[int]keyward.Secret{1: key1, 3: key2})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				v, s, err := k.Seal([]byte("p"), nil)
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := k.Open(v, s, nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// badKeys are malformed master keys; the secret part of each (everything
// after the encoding) must never appear in an error.
var badKeys = []struct {
	name, key, want string
}{
	{"short hex", "hex:" + strings.Repeat("ab", 16), "is 16 bytes"},
	{"long hex", "hex:" + strings.Repeat("ab", 33), "is 33 bytes"},
	{"bad hex", "hex:" + strings.Repeat("zq", 32), "not valid hex"},
	{"odd hex", "hex:" + strings.Repeat("a", 63), "not valid hex"},
	{"bad base64", "base64:" + strings.Repeat("!", 44), "not valid base64"},
	{"short base64", "base64:" + base64.StdEncoding.EncodeToString(make([]byte, 16)), "is 16 bytes"},
	{"no encoding", strings.Repeat("cd", 32), "hex:VALUE or base64:VALUE"},
	{"unknown encoding", "b32:" + strings.Repeat("EF", 32), "unknown encoding"},
	{"encoding is the key", strings.Repeat("9f", 32) + ":" + strings.Repeat("9f", 32), "unknown encoding"},
	{"empty", "", "hex:VALUE or base64:VALUE"},
}

func TestNewRejectsBadKeys(t *testing.T) {
	for _, tt := range badKeys {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(map[int]keyward.Secret{3: keyward.Secret(tt.key)})
			wantCode(t, err, keyward.EINVALID, "master key version 3", tt.want, "openssl rand")
			assertNoSecret(t, err, tt.key)
		})
	}
	t.Run("none", func(t *testing.T) {
		_, err := New(nil)
		wantCode(t, err, keyward.EINVALID, "no master key configured")
	})
	for _, v := range []int{0, -1} {
		_, err := New(map[int]keyward.Secret{v: key1})
		wantCode(t, err, keyward.EINVALID, "is not positive")
		assertNoSecret(t, err, key1.Reveal())
	}
}

func TestAcceptedEncodings(t *testing.T) {
	raw := bytes.Repeat([]byte{0xfb, 0xff, 0x3e}, 11)[:KeyLen]
	for _, s := range []string{
		"hex:" + hex.EncodeToString(raw),
		"hex:" + strings.ToUpper(hex.EncodeToString(raw)),
		"  hex:" + hex.EncodeToString(raw) + "\t",
		"base64:" + base64.StdEncoding.EncodeToString(raw),
		"base64:" + base64.RawStdEncoding.EncodeToString(raw),
		"base64:" + base64.URLEncoding.EncodeToString(raw),
		"base64:" + base64.RawURLEncoding.EncodeToString(raw),
	} {
		b, err := decodeKey(keyward.Secret(s))
		if err != nil || !bytes.Equal(b, raw) {
			t.Errorf("decodeKey(%q) = %x, %v; want %x", s, b, err, raw)
		}
	}
}

func TestGenerate(t *testing.T) {
	a, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate()
	if a == b {
		t.Errorf("two generated keys are equal")
	}
	if !strings.HasPrefix(a.Reveal(), "hex:") || len(a.Reveal()) != len("hex:")+2*KeyLen {
		t.Errorf("Generate() has the wrong form (length %d)", len(a.Reveal()))
	}
	mustNew(t, map[int]keyward.Secret{1: a})
	if got := a.String(); got != "REDACTED" {
		t.Errorf("generated key prints as %q", got)
	}
}

func TestParseKeyList(t *testing.T) {
	hex1, hex2 := key1.Reveal(), key2.Reveal()
	ok := []struct {
		name  string
		lines []string
		want  map[int]string
	}{
		{"env, comma separated", []string{"1:" + hex1 + ", 2:" + hex2}, map[int]string{1: hex1, 2: hex2}},
		{"file lines", []string{"# comment", "", "  1:" + hex1, "5:" + hex2, ""}, map[int]string{1: hex1, 5: hex2}},
		{"comment with commas", []string{"# a, b, c", "2:" + hex1}, map[int]string{2: hex1}},
		{"trailing comma", []string{"1:" + hex1 + ","}, map[int]string{1: hex1}},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKeyList(tt.lines, "KEYWARD_MASTER_KEYS")
			if err != nil {
				t.Fatalf("ParseKeyList: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d keys, want %d", len(got), len(tt.want))
			}
			for v, s := range tt.want {
				if got[v].Reveal() != s {
					t.Errorf("version %d is wrong", v)
				}
			}
			mustNew(t, got)
		})
	}

	bad := []struct {
		name, line, want string
	}{
		{"empty", "", "holds no master key"},
		{"only comments", "# nothing here", "holds no master key"},
		{"no version", hex1, "entry 1 has no version"},
		{"version not a number", strings.Repeat("ab", 32) + ":" + hex1, "entry 1 has no version"},
		{"second has no version", "1:" + hex1 + "," + hex2, "entry 2 has no version"},
		{"version 0", "0:" + hex1, "entry 1 has version 0"},
		{"negative version", "-2:" + hex1, "entry 1 has version -2"},
		{"duplicate", "1:" + hex1 + ",1:" + hex2, "version 1 appears twice"},
		{"short key", "1:hex:" + strings.Repeat("ab", 31), "master key version 1 is 31 bytes"},
		{"bad hex", "4:hex:" + strings.Repeat("xy", 32), "master key version 4 is not valid hex"},
		{"bad base64", "4:base64:" + strings.Repeat("*", 44), "master key version 4 is not valid base64"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseKeyList([]string{tt.line}, "KEYWARD_MASTER_KEYS")
			wantCode(t, err, keyward.EINVALID, "KEYWARD_MASTER_KEYS", tt.want)
			for _, part := range strings.Split(tt.line, ",") {
				if _, val, ok := strings.Cut(part, ":"); ok {
					assertNoSecret(t, err, val)
				}
				assertNoSecret(t, err, part)
			}
		})
	}
}

func TestLoadOrCreateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "master.key")

	keys, created, err := LoadOrCreateFile(path)
	if err != nil || !created {
		t.Fatalf("LoadOrCreateFile(missing) = created %v, %v; want created", created, err)
	}
	if len(keys) != 1 || keys[1] == "" {
		t.Fatalf("created keys = %d entries, want version 1 only", len(keys))
	}
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("created file has mode %04o, want 0600", perm)
		}
		di, _ := os.Stat(filepath.Dir(path))
		if perm := di.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("created directory has mode %04o, want no group/other access", perm)
		}
	}
	k := mustNew(t, keys)
	v, sealed, _ := k.Seal([]byte("kept"), nil)

	again, created, err := LoadOrCreateFile(path)
	if err != nil || created {
		t.Fatalf("LoadOrCreateFile(existing) = created %v, %v; want reuse", created, err)
	}
	if again[1].Reveal() != keys[1].Reveal() {
		t.Fatalf("reloaded key differs from the created one")
	}
	if got, err := mustNew(t, again).Open(v, sealed, nil); err != nil || string(got) != "kept" {
		t.Errorf("Open with reloaded key = %q, %v", got, err)
	}

	// An operator adds version 2 by hand.
	content, _ := os.ReadFile(path)
	if err := os.WriteFile(path, append(content, []byte("2:"+key2.Reveal()+"\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	rotated, _, err := LoadOrCreateFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if k := mustNew(t, rotated); k.Current() != 2 {
		t.Errorf("Current after adding version 2 = %d", k.Current())
	}
}

func TestLoadOrCreateFileRefuses(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes are not checked on Windows")
	}
	dir := t.TempDir()
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		path := filepath.Join(dir, "open.key")
		if err := os.WriteFile(path, []byte("1:"+key1.Reveal()+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, _, err := LoadOrCreateFile(path)
		wantCode(t, err, keyward.EINVALID, path, "chmod 600 "+path)
		assertNoSecret(t, err, key1.Reveal())
	}

	t.Run("malformed", func(t *testing.T) {
		path := filepath.Join(dir, "bad.key")
		secret := "hex:" + strings.Repeat("ab", 20)
		if err := os.WriteFile(path, []byte("# keys\n1:"+secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := LoadOrCreateFile(path)
		wantCode(t, err, keyward.EINVALID, "master key file "+path, "is 20 bytes")
		assertNoSecret(t, err, secret)
	})
	t.Run("empty", func(t *testing.T) {
		path := filepath.Join(dir, "empty.key")
		if err := os.WriteFile(path, []byte("# nothing\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := LoadOrCreateFile(path)
		wantCode(t, err, keyward.EINVALID, "holds no master key")
		if _, statErr := os.Stat(path); statErr != nil {
			t.Errorf("the empty file was removed: %v", statErr)
		}
	})
	t.Run("directory", func(t *testing.T) {
		_, _, err := LoadOrCreateFile(dir)
		wantCode(t, err, keyward.EINVALID, "not a regular file")
	})
}

func TestCreateFileDoesNotOverwrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	if _, err := createFile(path); err != nil {
		t.Fatal(err)
	}
	if _, err := createFile(path); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second createFile = %v, want fs.ErrExist", err)
	}
}

// assertNoSecret fails if err (in any of its renderings) contains secret or
// a 16-character run of it.
func assertNoSecret(t *testing.T, err error, secret string) {
	t.Helper()
	if err == nil || len(secret) < 8 {
		return
	}
	msg := err.Error() + " " + keyward.ErrorMessage(err)
	if strings.Contains(msg, secret) {
		t.Errorf("error quotes the secret: %v", err)
		return
	}
	for i := 0; i+16 <= len(secret); i++ {
		if strings.Contains(msg, secret[i:i+16]) {
			t.Errorf("error quotes part of the secret: %v", err)
			return
		}
	}
}

// TestAuditChainKey: the chain key of a version is derived from that
// master key alone (the same in every keyring that holds it, never the
// master key itself), differs between versions, and the current one is
// the highest version's; an unknown version names itself.
func TestAuditChainKey(t *testing.T) {
	one := mustNew(t, map[int]keyward.Secret{1: key1})
	both := mustNew(t, map[int]keyward.Secret{1: key1, 2: key2})
	k1, err := one.AuditChainKey(1)
	if err != nil {
		t.Fatal(err)
	}
	b1, _ := both.AuditChainKey(1)
	b2, _ := both.AuditChainKey(2)
	raw1, _ := hex.DecodeString(strings.Repeat("11", KeyLen))
	if len(k1) != KeyLen || !bytes.Equal(k1, b1) || bytes.Equal(k1, b2) || bytes.Equal(k1, raw1) {
		t.Fatalf("chain keys: v1 %x, v1 of both %x, v2 %x", k1, b1, b2)
	}
	if cur := both.CurrentAuditChainKey(); cur.Version != 2 || !bytes.Equal(cur.Key, b2) {
		t.Errorf("current chain key = version %d, want 2", cur.Version)
	}
	_, err = one.AuditChainKey(2)
	wantCode(t, err, keyward.EINTERNAL, "master key version 2 is not configured")
}
