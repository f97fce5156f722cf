package keyring

import (
	"bytes"
	"testing"

	"github.com/keyward/keyward"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	k := mustNew(t, map[int]keyward.Secret{1: key1})
	ad := []byte("key.create\x00key\x00key_1")
	for _, plain := range [][]byte{nil, []byte("x"), []byte(`{"name":"deploy-bot-secretive-name"}`), bytes.Repeat([]byte("a"), 1<<16)} {
		v, wrapped, sealed, err := k.SealEnvelope(plain, ad)
		if err != nil {
			t.Fatalf("SealEnvelope: %v", err)
		}
		if v != 1 || len(wrapped) != NonceLen+KeyLen+16 {
			t.Errorf("SealEnvelope version %d, wrapped key %d bytes; want 1, %d", v, len(wrapped), NonceLen+KeyLen+16)
		}
		if len(plain) >= 8 && bytes.Contains(sealed, plain) {
			t.Errorf("sealed value contains the plaintext")
		}
		got, err := k.OpenEnvelope(v, wrapped, sealed, ad)
		if err != nil || !bytes.Equal(got, plain) || got == nil {
			t.Fatalf("OpenEnvelope = %q, %v; want %q", got, err, plain)
		}
	}
}

func TestEnvelopeRejects(t *testing.T) {
	k := mustNew(t, map[int]keyward.Secret{1: key1})
	ad := []byte("entry 1")
	v, wrapped, sealed, err := k.SealEnvelope([]byte("details of entry 1"), ad)
	if err != nil {
		t.Fatal(err)
	}
	_, wrapped2, sealed2, err := k.SealEnvelope([]byte("details of entry 2"), ad)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name            string
		wrapped, sealed []byte
		ad              []byte
	}{
		{"other additional data", wrapped, sealed, []byte("entry 2")},
		{"another entry's data key", wrapped2, sealed, ad},
		{"another entry's details", wrapped, sealed2, ad},
		{"truncated details", wrapped, sealed[:NonceLen], ad},
		{"truncated data key", wrapped[:len(wrapped)-1], sealed, ad},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := k.OpenEnvelope(v, tc.wrapped, tc.sealed, tc.ad)
			wantCode(t, err, keyward.EINTERNAL)
		})
	}
	t.Run("each byte of the details tampered", func(t *testing.T) {
		for i := range sealed {
			bad := bytes.Clone(sealed)
			bad[i] ^= 1
			if _, err := k.OpenEnvelope(v, wrapped, bad, ad); err == nil {
				t.Fatalf("byte %d flipped: OpenEnvelope succeeded", i)
			}
		}
	})
}

// TestRewrap moves an envelope to a new master key without touching the
// sealed value: after the rewrap the old master key is no longer needed.
func TestRewrap(t *testing.T) {
	old := mustNew(t, map[int]keyward.Secret{1: key1})
	ad := []byte("entry 7")
	v1, wrapped1, sealed, err := old.SealEnvelope([]byte("kept as it is"), ad)
	if err != nil {
		t.Fatal(err)
	}
	both := mustNew(t, map[int]keyward.Secret{1: key1, 2: key2})
	v2, wrapped2, err := both.Rewrap(v1, wrapped1, ad)
	if err != nil || v2 != 2 {
		t.Fatalf("Rewrap = %d, %v; want version 2", v2, err)
	}
	if bytes.Equal(wrapped1, wrapped2) {
		t.Errorf("Rewrap returned the same wrapped key")
	}
	onlyNew := mustNew(t, map[int]keyward.Secret{2: key2})
	got, err := onlyNew.OpenEnvelope(v2, wrapped2, sealed, ad)
	if err != nil || string(got) != "kept as it is" {
		t.Fatalf("OpenEnvelope after Rewrap with only key 2 = %q, %v", got, err)
	}
	_, err = onlyNew.OpenEnvelope(v1, wrapped1, sealed, ad)
	wantCode(t, err, keyward.EINTERNAL, "master key version 1 is not configured")
	_, _, err = both.Rewrap(v1, wrapped1, []byte("entry 8"))
	wantCode(t, err, keyward.EINTERNAL, "authentication failed")

	// Rewrap re-seals plain sealed values too (secret metadata).
	_, s1, err := old.Seal([]byte(`{"dsn":"postgres://tenant"}`), []byte("key_secret_meta\x00key_1"))
	if err != nil {
		t.Fatal(err)
	}
	v, s2, err := both.Rewrap(1, s1, []byte("key_secret_meta\x00key_1"))
	if err != nil || v != 2 {
		t.Fatalf("Rewrap of a sealed value = %d, %v", v, err)
	}
	if got, err := onlyNew.Open(v, s2, []byte("key_secret_meta\x00key_1")); err != nil || string(got) != `{"dsn":"postgres://tenant"}` {
		t.Errorf("Open after Rewrap = %q, %v", got, err)
	}
}
