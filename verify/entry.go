package verify

import (
	"encoding/binary"
	"encoding/json"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward"
)

// entry is a cached key: what a verification and its result read of a
// keyward.Key, and nothing else. A key's name, start, prefix, creator,
// rotation, and times of creation, update and last use stay in the store,
// so a cached key costs under the 512 bytes of docs/benchmarks.md, targets
// (bench/cachemem measures it). What few keys have (meta, limits,
// credits...) is behind extra, so the others pay one pointer for it.
//
// Fields other than the atomics never change: a change of the key replaces
// the entry. Its slices and pointers are shared with every Result that
// found it, and permissions with other entries: read-only.
type entry struct {
	id        string
	accountID string
	userID    string
	role      keyward.Role // interned (internRole)
	// permissions is shared by every entry with the same list (interner),
	// its capacity clipped so that an append never writes into it.
	permissions []string
	expiresAt   *time.Time
	revokedAt   *time.Time
	extra       *extra // nil when the key has none of its fields

	disabled        bool
	accountDisabled bool

	// queued says the entry waits in the usage batch; see usage.go.
	queued atomic.Bool
	// freq counts the entry's hits, up to maxFreq, and inMain says it is
	// in its shard's main queue rather than small (under the shard's
	// lock): see evict.go.
	freq   atomic.Uint32
	inMain bool
	// loaded is when the entry's state was read from the store (or
	// written to it by this instance), Unix nanoseconds by Config.Now:
	// Config.MaxStale counts from it.
	loaded int64
	// expires is when the entry must be reloaded, Unix nanoseconds by
	// Config.Now. It moves only to keep serving a key during an outage,
	// and never past loaded + Config.MaxStale.
	expires atomic.Int64
	// lastUsed is the latest authenticated use of the key through this
	// entry, Unix nanoseconds. See usage.go.
	lastUsed atomic.Int64
	// uses counts the VALID uses since the last usage flush, and network
	// is the network of the latest (networkOf); both are kept only with
	// a signal sink. See signals.go.
	uses    atomic.Int64
	network atomic.Uint64
}

// extra is the part of a cached key that most keys leave empty.
type extra struct {
	meta              json.RawMessage
	secretMeta        *keyward.Sealed
	accountSecretMeta *keyward.Sealed
	ipAllow           []netip.Prefix
	rateLimits        []keyward.RateLimit
	accountRateLimits []keyward.RateLimit
	meterID           string
	credits           *keyward.Credits
	// hash is the key's stored hash. The entry has an extra whenever it
	// is cached under another hash (an older pepper's; see cache.legacy).
	hash keyward.KeyHash
}

// newEntry returns the entry of k, cached under hash h, to be reloaded a
// TTL after now. It shares k's strings, slices and pointers, which nobody
// may modify afterwards.
func (e *Engine) newEntry(k *keyward.Key, h keyward.KeyHash, now int64) *entry {
	en := &entry{
		id:              k.ID,
		accountID:       k.AccountID,
		userID:          k.UserID,
		role:            internRole(k.Role),
		permissions:     e.interner.permissions(k.Permissions),
		expiresAt:       k.ExpiresAt,
		revokedAt:       k.RevokedAt,
		disabled:        k.Disabled,
		accountDisabled: k.AccountDisabled,
	}
	x := extra{
		meta:              k.Meta,
		secretMeta:        k.SecretMeta,
		accountSecretMeta: k.AccountSecretMeta,
		ipAllow:           k.IPAllow,
		rateLimits:        k.RateLimits,
		accountRateLimits: k.AccountRateLimits,
		meterID:           k.MeterID,
		credits:           k.Credits,
		hash:              k.Hash,
	}
	if k.Hash != h || x.meta != nil || x.secretMeta != nil || x.accountSecretMeta != nil || x.ipAllow != nil ||
		x.rateLimits != nil || x.accountRateLimits != nil || x.meterID != "" || x.credits != nil {
		en.extra = &x
	}
	en.loaded = now
	en.expires.Store(now + e.ttl.Load())
	return en
}

// storedHash returns the key's stored hash; h is the hash en is cached
// under.
func (en *entry) storedHash(h keyward.KeyHash) keyward.KeyHash {
	if en.extra != nil {
		return en.extra.hash
	}
	return h
}

// key returns the key en holds as a new keyward.Key sharing en's slices
// and pointers: every field a verification reads, and HasSecretMeta. Name,
// Start, Prefix, CreatedBy, RotatedFrom, GraceUntil, CreatedAt, UpdatedAt,
// LastUsedAt, Hash and PepperVersion are zero.
func (en *entry) key() *keyward.Key {
	k := &keyward.Key{
		ID:              en.id,
		Role:            en.role,
		AccountID:       en.accountID,
		UserID:          en.userID,
		Permissions:     en.permissions,
		ExpiresAt:       en.expiresAt,
		RevokedAt:       en.revokedAt,
		Disabled:        en.disabled,
		AccountDisabled: en.accountDisabled,
	}
	if x := en.extra; x != nil {
		k.Meta = x.meta
		k.SecretMeta = x.secretMeta
		k.HasSecretMeta = x.secretMeta != nil
		k.AccountSecretMeta = x.accountSecretMeta
		k.IPAllow = x.ipAllow
		k.RateLimits = x.rateLimits
		k.AccountRateLimits = x.accountRateLimits
		k.MeterID = x.meterID
		k.Credits = x.credits
	}
	return k
}

// The methods below are those of keyward.Key that a verification calls,
// on the entry's fields; TestEntryMatchesKey checks that each answers as
// keyward.Key's does.

// status is keyward.Key.Status.
func (en *entry) status(now time.Time) keyward.Decision {
	switch {
	case en.disabled || en.accountDisabled:
		return keyward.DecisionDisabled
	case en.revokedAt != nil && !now.Before(*en.revokedAt):
		return keyward.DecisionRevoked
	case en.expiresAt != nil && !now.Before(*en.expiresAt):
		return keyward.DecisionExpired
	}
	return keyward.DecisionValid
}

// hasPermissions is keyward.Key.HasPermissions.
func (en *entry) hasPermissions(want []string) bool {
	if en.role == keyward.RoleRoot {
		return true
	}
	for _, p := range want {
		if !slices.Contains(en.permissions, p) {
			return false
		}
	}
	return true
}

// effectiveRateLimits is keyward.Key.EffectiveRateLimits.
func (en *entry) effectiveRateLimits() []keyward.RateLimit {
	x := en.extra
	switch {
	case x == nil:
		return nil
	case len(x.rateLimits) > 0:
		return x.rateLimits
	}
	return x.accountRateLimits
}

// meter is keyward.Key.Meter.
func (en *entry) meter() string {
	if en.extra != nil && en.extra.meterID != "" {
		return en.extra.meterID
	}
	return en.id
}

// identity is keyward.IdentityOf.
func (en *entry) identity(agent string) *keyward.Identity {
	id := &keyward.Identity{
		KeyID:       en.id,
		AccountID:   en.accountID,
		UserID:      en.userID,
		Role:        en.role,
		Agent:       agent,
		Permissions: en.permissions,
		ExpiresAt:   en.expiresAt,
		Retiring:    en.revokedAt != nil,
	}
	if en.revokedAt != nil && (en.expiresAt == nil || en.revokedAt.Before(*en.expiresAt)) {
		id.ExpiresAt = en.revokedAt
	}
	return id
}

// internRole returns r as one of the role constants when it is one, so
// cached keys do not each hold a copy of its name.
func internRole(r keyward.Role) keyward.Role {
	for _, c := range [...]keyward.Role{keyward.RoleUser, keyward.RoleAccountAdmin, keyward.RoleRoot} {
		if r == c {
			return c
		}
	}
	return r
}

// An interner holds lists worth at most maxInterned bytes: the bytes of
// their strings plus internOverhead for each list and each of its strings.
const (
	maxInterned    = 256 << 10
	internOverhead = 32
)

// interner shares equal permission lists among cache entries: most keys
// hold one of a few lists, which then cost their bytes once rather than
// once per cached key. When it would hold more than maxInterned it starts
// over, so keys with lists of their own cost it a bounded amount (and each
// keeps its own list, as without interning).
type interner struct {
	mu    sync.Mutex
	lists map[string][]string // by encodeList
	size  int                 // of lists, as maxInterned counts it
}

// permissions returns the list equal to p that the interner holds, adding
// p (which nobody may modify afterwards) if it holds none; its capacity is
// clipped to its length. An empty p is returned as it is: nil and empty
// lists differ in JSON.
func (in *interner) permissions(p []string) []string {
	if len(p) == 0 {
		return p
	}
	p = slices.Clip(p)
	key := encodeList(nil, p)
	size := len(key) + internOverhead*(1+len(p))
	if size > maxInterned {
		return p
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if shared, ok := in.lists[string(key)]; ok {
		return shared
	}
	if in.lists == nil || in.size+size > maxInterned {
		in.lists, in.size = make(map[string][]string), 0
	}
	in.lists[string(key)] = p
	in.size += size
	return p
}

// encodeList appends p to b, each string preceded by its length, so that
// two lists have the same encoding only if they are equal.
func encodeList(b []byte, p []string) []byte {
	for _, s := range p {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}
