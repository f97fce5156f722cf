package verify

import (
	"context"
	"testing"
	"time"
	"unsafe"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// noKeys is a store that holds no key.
type noKeys struct{}

func (noKeys) KeyByHash(context.Context, keyward.KeyHash) (*keyward.Key, error) {
	return nil, keyward.Errorf(keyward.ENOTFOUND, "no such key")
}

func (noKeys) TouchKeys(context.Context, []keyward.KeyUse) error { return nil }

// TestSlotSharedByTwoHashes: two hashes that share a shard and a slot (bytes
// 8 to 16) but not a tag never answer with each other's entry, and a change
// of one never drops the other's unless it takes its slot.
func TestSlotSharedByTwoHashes(t *testing.T) {
	hasher, err := apikey.NewHasher(map[int]keyward.Secret{1: "a-pepper-for-tests-only-0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{Store: noKeys{}, Hasher: hasher})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	var a, b keyward.KeyHash
	for i := range a {
		a[i], b[i] = byte(i), byte(i)
	}
	b[23] ^= 1
	if slotOf(a) != slotOf(b) || e.cache.shard(a) != e.cache.shard(b) || tagOf(a) == tagOf(b) {
		t.Fatal("the two hashes do not share a slot with different tags")
	}
	key := func(id string, h keyward.KeyHash) *keyward.Key {
		return &keyward.Key{ID: id, Hash: h, PepperVersion: 1, Role: keyward.RoleUser, AccountID: "acc_1", UserID: "usr_1"}
	}
	// want checks what the cache answers for h: the key id, "" for a
	// negative entry, "miss" for neither.
	want := func(step string, h keyward.KeyHash, id string) {
		t.Helper()
		en, ok := e.cached(h, e.now().UnixNano())
		got := "miss"
		switch {
		case ok && en == nil:
			got = ""
		case ok:
			got = en.keyID()
		}
		if got != id {
			t.Errorf("%s: the cache answers %q for %x, want %q", step, got, h[31], id)
		}
	}
	e.KeyChanged(key("key_a", a))
	e.KeyChanged(key("key_b", b))
	want("b cached after a", a, "miss")
	want("b cached after a", b, "key_b")

	e.KeysDeleted([]keyward.KeyHash{a})
	want("a deleted", a, "")
	want("a deleted", b, "key_b")
	e.Invalidate([]keyward.KeyHash{a})
	want("a invalidated", a, "miss")
	want("a invalidated", b, "key_b")

	e.KeyChanged(key("key_a", a))
	want("a cached again", a, "key_a")
	want("a cached again", b, "miss")
	e.Invalidate([]keyward.KeyHash{b})
	want("b invalidated", a, "key_a")
	if pos, _ := e.CacheLen(); pos != 1 {
		t.Errorf("the cache holds %d keys, want 1", pos)
	}
	if n, want := e.cache.bytes.Load(), entryBytes(e.cache.shard(a).get(a)); n != want {
		t.Errorf("the cache counts %d bytes, want the one entry's %d", n, want)
	}
}

// TestIDsLiveInTheEntry: the ids a verification reads are views into the
// entry (no allocation), and those a signal carries are copies, so abuse
// detection's tables never keep an entry alive.
func TestIDsLiveInTheEntry(t *testing.T) {
	var e Engine
	k := &keyward.Key{ID: "key_01", AccountID: "acc_01", UserID: "usr_01", Role: keyward.RoleUser}
	en := e.newEntry(k, keyward.KeyHash{1}, 0)
	start := uintptr(unsafe.Pointer(en))
	inEntry := func(s string) bool {
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		return p >= start && p < start+unsafe.Sizeof(*en)
	}
	if !inEntry(en.keyID()) || !inEntry(en.accountID()) || !inEntry(en.userID()) {
		t.Error("an id of an entry is not a view into it")
	}
	id, account := en.signalIDs()
	if id != k.ID || account != k.AccountID {
		t.Errorf("signalIDs = %q, %q; want %q, %q", id, account, k.ID, k.AccountID)
	}
	if inEntry(id) || inEntry(account) {
		t.Error("a signal's id is a view into the entry: abuse detection would keep the entry alive")
	}

	// The key of a limited key's rate-limit buckets, which the limiter
	// keeps, is a copy too; a meter's id is the meter's own string.
	k.RateLimits = []keyward.RateLimit{{Name: "m", Limit: 1, Window: keyward.Duration(time.Minute)}}
	limited := e.newEntry(k, keyward.KeyHash{2}, 0)
	start = uintptr(unsafe.Pointer(limited))
	if b := limited.meter(); b != k.ID || inEntry(b) {
		t.Errorf("the buckets' key of a limited key is %q (a view into the entry: %v); want a copy of %q", b, inEntry(b), k.ID)
	}
	k.MeterID = "key_00"
	if b := e.newEntry(k, keyward.KeyHash{3}, 0).meter(); b != "key_00" {
		t.Errorf("the buckets' key of a key with a meter is %q, want key_00", b)
	}
}
