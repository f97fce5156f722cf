package verify

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/permission"
)

// entry is a cached key: what a verification and its result read of a
// keyward.Key, and nothing else. A key's name, start, prefix, creator,
// rotation, and times of creation, update and last use stay in the store.
// What few keys have (meta, limits, credits, a role other than the three)
// is behind extra, so the others pay one pointer for it, and the key's
// three ids are bytes of the entry, so a cached key is one allocation
// (bench/cachemem measures what it costs).
//
// The layout is the hot path's: an entry is 192 bytes, a size class whose
// objects start at a multiple of 192 in their span, so its first 64 bytes
// are one CPU cache line. A cache hit reads that line and nothing else of
// the entry: the tag it is found by, expiry, last use, status, the use
// count, the permission set and extra (TestEntryLayout). The rest holds
// the key's ids and its name: 100 bytes, the usual three 26-byte ids and
// a name of up to 22 (TestEntryIDsInline).
//
// Fields other than the atomics and inMain never change: a change of the
// key replaces the entry. Its slices and pointers are shared with every
// Result that found it, and perms with other entries: read-only.
type entry struct {
	// expires is when the entry must be reloaded, Unix nanoseconds by
	// Config.Now. It moves only to keep serving a key during an outage,
	// and never past loaded + Config.MaxStale.
	expires atomic.Int64
	// lastUsed is the latest authenticated use of the key through this
	// entry, Unix nanoseconds, and queuedBit: the entry waits in the usage
	// batch. See usage.go.
	lastUsed atomic.Int64
	// until is the earlier of revokedAt and expiresAt in Unix nanoseconds
	// (math.MaxInt64 for neither): before it, status needs neither.
	until int64
	// freq counts the entry's hits, up to maxFreq; see evict.go.
	freq atomic.Uint32
	// off is disabled || accountDisabled.
	off bool
	// role is the key's role as a roleKind: roleOther when it is none of
	// the three, and extra holds it.
	role roleKind
	// inMain says the entry is in its shard's main queue rather than small,
	// under the shard's lock: see evict.go.
	inMain bool
	// flags holds flagDisabled and flagAccountDisabled.
	flags uint8

	// perms is the key's effective permissions (its own and its named
	// roles': keyward.Key.EffectivePermissions, computed once as the key
	// is loaded) prepared for matching, shared by every entry with the
	// same list (interner); its List is that list, its capacity clipped
	// so that an append never writes into it.
	perms *permission.Set
	extra *extra // nil when the key has none of its fields
	// tag is the part of the hash the entry is cached under that its
	// shard's map does not key it by (see slotOf).
	tag tag

	// expiresAt is the key's; its revocation time, rarer, is in extra.
	expiresAt *time.Time
	// loaded is when the entry's state was read from the store (or
	// written to it by this instance), Unix nanoseconds by Config.Now:
	// Config.MaxStale counts from it.
	loaded int64
	// uses counts the VALID uses since the last usage flush, and network
	// is the network of the latest (networkOf); both are kept only with
	// a signal sink. See signals.go.
	uses    atomic.Int64
	network atomic.Uint64
	// idBuf holds the key's id, its account's, its user's and the key's
	// name (for answers that show it, such as Unkey's verifyKey), one
	// after the other, of the lengths idLen; strings too long for it are
	// in extra.longIDs, and idLen[0] is longIDs.
	idLen [4]uint8
	idBuf [100]byte
}

// longIDs in entry.idLen[0] says the ids are in extra.longIDs.
const longIDs = 255

// The bits of entry.flags.
const (
	flagDisabled uint8 = 1 << iota
	flagAccountDisabled
)

// keyID is the key's id.
func (en *entry) keyID() string { return en.ids(0) }

// accountID is the id of the key's account.
func (en *entry) accountID() string { return en.ids(1) }

// userID is the id of the key's user.
func (en *entry) userID() string { return en.ids(2) }

// name is the key's name.
func (en *entry) name() string { return en.ids(3) }

// ids returns the key's id (i = 0), its account's (1), its user's (2) or
// the key's name (3).
// An id in idBuf is returned without a copy: the bytes never change once
// the entry is made, and the string keeps the entry alive.
func (en *entry) ids(i int) string {
	if en.idLen[0] == longIDs {
		return en.extra.longIDs[i]
	}
	n := int(en.idLen[i])
	if n == 0 {
		return ""
	}
	off := 0
	for _, l := range en.idLen[:i] {
		off += int(l)
	}
	return unsafe.String(&en.idBuf[off], n)
}

// signalIDs returns copies of the key's id and its account's, for a
// signal: abuse detection keeps them in its tables, where a view into
// idBuf would keep the whole entry alive after the cache dropped it.
func (en *entry) signalIDs() (keyID, accountID string) {
	return strings.Clone(en.keyID()), strings.Clone(en.accountID())
}

// setIDs stores ids in en, in idBuf if they fit, else in x.longIDs.
func (en *entry) setIDs(x *extra, ids [4]string) {
	n := 0
	for i, id := range ids {
		if n+len(id) > len(en.idBuf) {
			en.idLen[0] = longIDs
			x.longIDs = &ids
			return
		}
		en.idLen[i] = uint8(len(id))
		n += copy(en.idBuf[n:], id)
	}
}

// revokedAt is keyward.Key.RevokedAt.
func (en *entry) revokedAt() *time.Time {
	if en.extra != nil {
		return en.extra.revokedAt
	}
	return nil
}

// disabled is keyward.Key.Disabled.
func (en *entry) disabled() bool { return en.flags&flagDisabled != 0 }

// accountDisabled is keyward.Key.AccountDisabled.
func (en *entry) accountDisabled() bool { return en.flags&flagAccountDisabled != 0 }

// roleKind is a key's role in a byte.
type roleKind uint8

const (
	roleOther roleKind = iota
	roleUser
	roleAccountAdmin
	roleRoot
)

// roleKinds are the roles of the kinds after roleOther.
var roleKinds = [...]keyward.Role{roleUser: keyward.RoleUser, roleAccountAdmin: keyward.RoleAccountAdmin, roleRoot: keyward.RoleRoot}

// kindOf returns r's kind.
func kindOf(r keyward.Role) roleKind {
	for k := roleUser; k <= roleRoot; k++ {
		if roleKinds[k] == r {
			return k
		}
	}
	return roleOther
}

// roleOf returns en's role.
func (en *entry) roleOf() keyward.Role {
	if en.role == roleOther {
		return en.extra.role
	}
	return roleKinds[en.role]
}

// Bounds of the times Time.UnixNano represents.
var (
	minNanoTime = time.Unix(0, math.MinInt64)
	maxNanoTime = time.Unix(0, math.MaxInt64)
)

// nanosOf returns t in Unix nanoseconds, clamped to what an int64 holds;
// math.MaxInt64 for nil.
func nanosOf(t *time.Time) int64 {
	switch {
	case t == nil || t.After(maxNanoTime):
		return math.MaxInt64
	case t.Before(minNanoTime):
		return math.MinInt64
	}
	return t.UnixNano()
}

// extra is the part of a cached key that most keys leave empty.
type extra struct {
	meta              json.RawMessage
	secretMeta        *keyward.Sealed
	accountSecretMeta *keyward.Sealed
	// user is what the key has of its user; nil when the user has
	// neither external id nor meta nor secret metadata (or there is no
	// user), so other keys pay one pointer for it.
	user              *userExtra
	ipAllow           []netip.Prefix
	rateLimits        []keyward.RateLimit
	accountRateLimits []keyward.RateLimit
	meterID           string
	// bucket is a copy of the key's id for a key with rate limits and no
	// meter: the key of its buckets, which the limiter keeps (a view into
	// idBuf would keep the whole entry alive as long as its buckets).
	bucket  string
	credits *keyward.Credits
	// userMeter and accountMeter are the shared limits and credits of the
	// key's user and account; nil when they have none.
	userMeter, accountMeter *keyward.Meter
	// hash is the key's stored hash, and under the hash the entry is
	// cached under when that is another (an older pepper's; see
	// cache.legacy), else nil: such an entry always has an extra.
	hash  keyward.KeyHash
	under *keyward.KeyHash
	// longIDs holds the key's id, its account's, its user's and its name
	// when they do not fit in entry.idBuf; nil when they do.
	longIDs *[4]string
	// role is the key's role when it is none of the three (roleOther).
	role keyward.Role
	// environment is the key's environment when it is not
	// keyward.DefaultEnvironment; "" when it is.
	environment string
	// roles names the key's named roles (keyward.Key.Roles), whose
	// permissions perms holds.
	roles []string
	// revokedAt is keyward.Key.RevokedAt: set for a key revoked or
	// rotated with a grace period, which few cached keys are.
	revokedAt *time.Time
}

// userExtra is what a cached key holds of its user: keyward.Key's
// UserExternalID, UserMeta and UserSecretMeta, and verifiedMeta, the meta
// verify answers with (the key's laid over the user's, keyward.MergeMeta),
// merged once here rather than on every verification.
type userExtra struct {
	externalID   string
	meta         json.RawMessage
	secretMeta   *keyward.Sealed
	verifiedMeta json.RawMessage
}

// userExtraOf returns the userExtra of k, nil when its user gives it none.
func userExtraOf(k *keyward.Key) *userExtra {
	if k.UserExternalID == "" && k.UserMeta == nil && k.UserSecretMeta == nil {
		return nil
	}
	return &userExtra{externalID: k.UserExternalID, meta: k.UserMeta, secretMeta: k.UserSecretMeta,
		verifiedMeta: keyward.MergeMeta(k.UserMeta, k.Meta)}
}

// verifiedMeta is the meta verify answers with: the key's laid over its
// user's.
func (x *extra) verifiedMeta() json.RawMessage {
	if x.user != nil {
		return x.user.verifiedMeta
	}
	return x.meta
}

// newEntry returns the entry of k, cached under hash h, to be reloaded a
// TTL after now. It shares k's slices and pointers, which nobody may modify
// afterwards.
func (e *Engine) newEntry(k *keyward.Key, h keyward.KeyHash, now int64) *entry {
	en := &entry{
		until:     min(nanosOf(k.RevokedAt), nanosOf(k.ExpiresAt)),
		off:       k.Disabled || k.AccountDisabled,
		role:      kindOf(k.Role),
		tag:       tagOf(h),
		perms:     e.interner.set(k.EffectivePermissions()),
		expiresAt: k.ExpiresAt,
	}
	if k.Disabled {
		en.flags |= flagDisabled
	}
	if k.AccountDisabled {
		en.flags |= flagAccountDisabled
	}
	x := extra{
		meta:              k.Meta,
		secretMeta:        k.SecretMeta,
		accountSecretMeta: k.AccountSecretMeta,
		user:              userExtraOf(k),
		ipAllow:           k.IPAllow,
		rateLimits:        k.RateLimits,
		accountRateLimits: k.AccountRateLimits,
		meterID:           k.MeterID,
		credits:           k.Credits,
		userMeter:         k.UserMeter,
		accountMeter:      k.AccountMeter,
		hash:              k.Hash,
		roles:             k.Roles,
		revokedAt:         k.RevokedAt,
	}
	if en.role == roleOther {
		x.role = k.Role
	}
	if k.Hash != h {
		x.under = &h
	}
	en.setIDs(&x, [4]string{k.ID, k.AccountID, k.UserID, k.Name})
	if x.meterID == "" && (x.rateLimits != nil || x.accountRateLimits != nil) {
		x.bucket = strings.Clone(k.ID)
	}
	if env := keyward.EnvironmentOf(k.Environment); env != keyward.DefaultEnvironment {
		x.environment = env
	}
	if en.role == roleOther || x.environment != "" || x.under != nil || x.longIDs != nil || x.meta != nil || x.secretMeta != nil || x.accountSecretMeta != nil || x.ipAllow != nil ||
		x.user != nil || x.rateLimits != nil || x.accountRateLimits != nil || x.meterID != "" || x.credits != nil || x.roles != nil ||
		x.userMeter != nil || x.accountMeter != nil || x.revokedAt != nil {
		en.extra = &x
	}
	en.loaded = now
	en.expires.Store(now + e.ttl.Load())
	return en
}

// legacy returns the stored hash of a key cached under another hash (an
// older pepper's) and that hash, and false for any other entry.
func (en *entry) legacy() (stored, under keyward.KeyHash, ok bool) {
	if x := en.extra; x != nil && x.under != nil {
		return x.hash, *x.under, true
	}
	return keyward.KeyHash{}, keyward.KeyHash{}, false
}

// key returns the key en holds as a new keyward.Key sharing en's slices
// and pointers: every field a verification reads (the environment and its
// user's fields too), and HasSecretMeta. Its Permissions are the effective
// ones (perms) and RolePermissions nil, so its EffectivePermissions are
// en's. Start, Prefix, CreatedBy, RotatedFrom, GraceUntil, CreatedAt, UpdatedAt,
// LastUsedAt, Hash and PepperVersion are zero.
func (en *entry) key() *keyward.Key {
	k := &keyward.Key{
		ID:              en.keyID(),
		Name:            en.name(),
		Role:            en.roleOf(),
		AccountID:       en.accountID(),
		UserID:          en.userID(),
		Permissions:     en.perms.List(),
		ExpiresAt:       en.expiresAt,
		RevokedAt:       en.revokedAt(),
		Disabled:        en.disabled(),
		AccountDisabled: en.accountDisabled(),
		Environment:     en.environment(),
	}
	if x := en.extra; x != nil {
		k.Meta = x.meta
		k.SecretMeta = x.secretMeta
		k.HasSecretMeta = x.secretMeta != nil
		k.AccountSecretMeta = x.accountSecretMeta
		if u := x.user; u != nil {
			k.UserExternalID, k.UserMeta, k.UserSecretMeta = u.externalID, u.meta, u.secretMeta
		}
		k.IPAllow = x.ipAllow
		k.RateLimits = x.rateLimits
		k.AccountRateLimits = x.accountRateLimits
		k.MeterID = x.meterID
		k.Credits = x.credits
		k.Roles = x.roles
		k.UserMeter, k.AccountMeter = x.userMeter, x.accountMeter
	}
	return k
}

// The methods below are those of keyward.Key that a verification calls,
// on the entry's fields; TestEntryMatchesKey checks that each answers as
// keyward.Key's does.

// status is keyward.Key.Status.
func (en *entry) status(now time.Time) keyward.Decision {
	switch {
	case en.off:
		return keyward.DecisionDisabled
	case now.UnixNano() < en.until:
		return keyward.DecisionValid
	case en.revokedAt() != nil && !now.Before(*en.revokedAt()):
		return keyward.DecisionRevoked
	case en.expiresAt != nil && !now.Before(*en.expiresAt):
		return keyward.DecisionExpired
	}
	return keyward.DecisionValid
}

// hasPermissions is keyward.Key.HasPermissions.
func (en *entry) hasPermissions(want []string) bool {
	return en.role == roleRoot || en.perms.HoldsAll(want)
}

// allows is keyward.Key.Allows without the missing permissions: whether
// the key holds want, satisfies q (nil: none) and has role (empty: any).
// It allocates nothing.
func (en *entry) allows(want []string, q *permission.Query, role keyward.Role) bool {
	if role != "" && !en.hasRole(role) {
		return false
	}
	return en.role == roleRoot || en.perms.HoldsAll(want) && (q == nil || q.Eval(en.perms))
}

// hasRole is keyward.Key.HasRole: the key's tier covers r, or it holds
// the named role r.
func (en *entry) hasRole(r keyward.Role) bool {
	return en.roleOf().Covers(r) || en.extra != nil && slices.Contains(en.extra.roles, string(r))
}

// roles is keyward.Key.Roles.
func (en *entry) roles() []string {
	if en.extra != nil {
		return en.extra.roles
	}
	return nil
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

// environment is keyward.EnvironmentOf(Key.Environment).
func (en *entry) environment() string {
	if en.extra != nil && en.extra.environment != "" {
		return en.extra.environment
	}
	return keyward.DefaultEnvironment
}

// meter is keyward.Key.Meter: the key of the key's rate-limit buckets.
func (en *entry) meter() string {
	if x := en.extra; x != nil {
		if x.meterID != "" {
			return x.meterID
		}
		if x.bucket != "" {
			return x.bucket
		}
	}
	return en.keyID()
}

// identity is keyward.IdentityOf.
func (en *entry) identity(agent string) *keyward.Identity {
	id := &keyward.Identity{
		KeyID:       en.keyID(),
		AccountID:   en.accountID(),
		UserID:      en.userID(),
		Role:        en.roleOf(),
		Agent:       agent,
		Permissions: en.perms.List(),
		Roles:       en.roles(),
		ExpiresAt:   en.expiresAt,
		Retiring:    en.revokedAt() != nil,
		Environment: en.environment(),
	}
	if r := en.revokedAt(); r != nil && (en.expiresAt == nil || r.Before(*en.expiresAt)) {
		id.ExpiresAt = r
	}
	if en.extra != nil && en.extra.user != nil {
		id.ExternalID = en.extra.user.externalID
	}
	return id
}

// An interner holds sets worth at most maxInterned bytes: the bytes of
// their strings plus internOverhead for each set and twice for each of its
// strings (a set holds its list and a sorted copy).
const (
	maxInterned    = 256 << 10
	internOverhead = 32
)

// The sets of the empty lists: nil and empty lists differ in JSON.
var (
	nilSet   = permission.NewSet(nil)
	emptySet = permission.NewSet([]string{})
)

// interner shares the permission sets of equal lists among cache entries:
// most keys hold one of a few lists, which then cost their bytes, and the
// set's preparation, once rather than once per cached key. When it would
// hold more than maxInterned it starts over, so keys with lists of their
// own cost it a bounded amount (and each keeps its own set, as without
// interning).
type interner struct {
	mu   sync.Mutex
	sets map[string]*permission.Set // by encodeList
	size int                        // of sets, as maxInterned counts it
}

// set returns the set of the list equal to p that the interner holds,
// adding one of p (which nobody may modify afterwards) if it holds none;
// the capacity of its list is clipped to its length.
func (in *interner) set(p []string) *permission.Set {
	switch {
	case p == nil:
		return nilSet
	case len(p) == 0:
		return emptySet
	}
	p = slices.Clip(p)
	key := encodeList(nil, p)
	size := len(key) + internOverhead*(1+2*len(p))
	if size > maxInterned {
		return permission.NewSet(p)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if shared, ok := in.sets[string(key)]; ok {
		return shared
	}
	if in.sets == nil || in.size+size > maxInterned {
		in.sets, in.size = make(map[string]*permission.Set), 0
	}
	set := permission.NewSet(p)
	in.sets[string(key)] = set
	in.size += size
	return set
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
