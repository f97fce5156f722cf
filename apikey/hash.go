package apikey

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"slices"
	"sync"

	"github.com/keyward/keyward"
)

// MinPepperLen is the shortest pepper accepted: 32 bytes, the HMAC-SHA256
// block of security.
const MinPepperLen = 32

// Hasher computes key hashes, HMAC-SHA256(pepper[v], key), with versioned
// peppers. New keys use the current (highest) version; older versions stay
// to verify keys created under them. It is safe for concurrent use and does
// not allocate per call.
type Hasher struct {
	current  int
	versions []int // descending, current first
	pools    map[int]*sync.Pool
}

// NewHasher returns a Hasher for the given peppers by version. Versions are
// positive; the highest is current. Each pepper must be at least
// MinPepperLen bytes.
func NewHasher(peppers map[int]keyward.Secret) (*Hasher, error) {
	if len(peppers) == 0 {
		return nil, keyward.Errorf(keyward.EINVALID, "at least one pepper is required")
	}
	h := &Hasher{pools: make(map[int]*sync.Pool, len(peppers))}
	for v, p := range peppers {
		if v <= 0 {
			return nil, keyward.Errorf(keyward.EINVALID, "pepper version %d must be positive", v)
		}
		if len(p.Reveal()) < MinPepperLen {
			return nil, keyward.Errorf(keyward.EINVALID, "pepper version %d is %d bytes; use at least %d random bytes", v, len(p.Reveal()), MinPepperLen)
		}
		secret := []byte(p.Reveal())
		h.pools[v] = &sync.Pool{New: func() any {
			return &hmacState{mac: hmac.New(sha256.New, secret)}
		}}
		h.versions = append(h.versions, v)
	}
	slices.Sort(h.versions)
	slices.Reverse(h.versions)
	h.current = h.versions[0]
	return h, nil
}

type hmacState struct {
	mac hash.Hash
	buf [MaxLen]byte
	sum [sha256.Size]byte
}

// Current returns the pepper version used for new keys.
func (h *Hasher) Current() int { return h.current }

// Versions returns every pepper version, current first.
func (h *Hasher) Versions() []int { return h.versions }

// Hash returns the hash of raw under the current pepper.
func (h *Hasher) Hash(raw string) keyward.KeyHash {
	return h.HashVersion(raw, h.current)
}

// HashVersion returns the hash of raw under pepper version v, which must be
// one of Versions. A raw key of at most MaxLen bytes (every key of keyward's
// format) costs no allocation; a longer one (an imported key of another
// format) is hashed whole, with one.
func (h *Hasher) HashVersion(raw string, v int) keyward.KeyHash {
	pool := h.pools[v]
	s := pool.Get().(*hmacState)
	s.mac.Reset()
	if len(raw) <= MaxLen {
		n := copy(s.buf[:], raw)
		s.mac.Write(s.buf[:n])
	} else {
		s.mac.Write([]byte(raw))
	}
	var out keyward.KeyHash
	copy(out[:], s.mac.Sum(s.sum[:0]))
	pool.Put(s)
	return out
}

// fingerprintMessage is what Fingerprint MACs: the NUL keeps it from being
// any key's raw value.
const fingerprintMessage = "keyward pepper fingerprint\x00"

// Fingerprint returns a check value of pepper version v (one of Versions),
// hex: HMAC-SHA256(pepper, a fixed message), truncated to 16 bytes. It
// tells whether two peppers of a version are the same without revealing
// either; a backup manifest records it (keyward backup).
func (h *Hasher) Fingerprint(v int) string {
	sum := h.HashVersion(fingerprintMessage, v)
	return hex.EncodeToString(sum[:16])
}
