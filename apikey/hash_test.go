package apikey

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
	"testing"

	"github.com/keyward/keyward"
)

var (
	pepper1 = keyward.Secret(strings.Repeat("1", MinPepperLen))
	pepper2 = keyward.Secret(strings.Repeat("2", MinPepperLen))
)

func TestHasherMatchesHMAC(t *testing.T) {
	h, err := NewHasher(map[int]keyward.Secret{1: pepper1, 2: pepper2})
	if err != nil {
		t.Fatal(err)
	}
	if h.Current() != 2 {
		t.Fatalf("Current = %d, want 2", h.Current())
	}
	raw := "kw_user_abc"
	for v, p := range map[int]keyward.Secret{1: pepper1, 2: pepper2} {
		mac := hmac.New(sha256.New, []byte(p.Reveal()))
		mac.Write([]byte(raw))
		var want keyward.KeyHash
		copy(want[:], mac.Sum(nil))
		if got := h.HashVersion(raw, v); got != want {
			t.Errorf("HashVersion(v%d) = %x, want %x", v, got, want)
		}
	}
	if h.Hash(raw) != h.HashVersion(raw, 2) {
		t.Error("Hash does not use the current version")
	}
	if h.HashVersion(raw, 1) == h.HashVersion(raw, 2) {
		t.Error("different peppers gave the same hash")
	}
}

func TestHasherConcurrent(t *testing.T) {
	h, err := NewHasher(map[int]keyward.Secret{1: pepper1})
	if err != nil {
		t.Fatal(err)
	}
	want := h.Hash("kw_user_x")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				if h.Hash("kw_user_x") != want {
					t.Error("hash changed under concurrency")
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestNewHasherRejects(t *testing.T) {
	for name, peppers := range map[string]map[int]keyward.Secret{
		"none":         {},
		"short":        {1: "short"},
		"zero version": {0: pepper1},
	} {
		if _, err := NewHasher(peppers); keyward.ErrorCode(err) != keyward.EINVALID {
			t.Errorf("%s: err = %v, want invalid", name, err)
		} else if strings.Contains(err.Error(), "short") && name == "short" {
			t.Errorf("error leaks the pepper: %v", err)
		}
	}
}

func TestHashDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector (sync.Pool drops items)")
	}
	h, _ := NewHasher(map[int]keyward.Secret{1: pepper1})
	s, _ := Generate(PrefixUser)
	raw := s.Reveal()
	h.Hash(raw)
	if n := testing.AllocsPerRun(100, func() { h.Hash(raw) }); n != 0 {
		t.Errorf("Hash allocates %v times per call", n)
	}
}

// TestFingerprint: the fingerprint tells peppers of a version apart, is the
// same for the same pepper, and reveals neither the pepper nor a key hash.
func TestFingerprint(t *testing.T) {
	h, err := NewHasher(map[int]keyward.Secret{1: pepper1, 2: pepper2})
	if err != nil {
		t.Fatal(err)
	}
	same, err := NewHasher(map[int]keyward.Secret{2: pepper2})
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewHasher(map[int]keyward.Secret{2: pepper1})
	if err != nil {
		t.Fatal(err)
	}
	fp := h.Fingerprint(2)
	if len(fp) != 32 || fp != same.Fingerprint(2) {
		t.Errorf("Fingerprint(2) = %q, the same pepper gives %q", fp, same.Fingerprint(2))
	}
	if fp == other.Fingerprint(2) || fp == h.Fingerprint(1) {
		t.Error("different peppers give the same fingerprint")
	}
	if strings.Contains(fp, hex.EncodeToString([]byte(pepper2.Reveal()))[:16]) {
		t.Error("the fingerprint shows the pepper")
	}
}
