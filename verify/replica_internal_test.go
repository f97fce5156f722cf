package verify

import (
	"context"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

// replicaLoader is a KeyLoader that reads replicas up to maxLag behind.
type replicaLoader struct {
	KeyLoader
	maxLag time.Duration
}

func (r replicaLoader) ReplicaMaxLag() time.Duration { return r.maxLag }

// TestChangeLog: a change is remembered per hash, a change of every key
// (or more hashes than the bound) applies to all, and a store that reads no
// replica gets no log at all.
func TestChangeLog(t *testing.T) {
	if l := newChangeLog(nil); l.window != 0 || l.at != nil {
		t.Fatal("a store without replicas has a change log")
	}
	l := newChangeLog(replicaLoader{maxLag: time.Hour})
	if l.window != time.Hour {
		t.Fatalf("window = %v, want the store's max lag", l.window)
	}
	a, b := keyward.KeyHash{1}, keyward.KeyHash{2}
	if !l.since(a).IsZero() {
		t.Fatal("a key never changed has a change time")
	}
	before := time.Now()
	l.changed(a)
	if t0 := l.since(a); t0.Before(before) {
		t.Fatalf("since(changed key) = %v, want at least %v", t0, before)
	}
	if !l.since(b).IsZero() {
		t.Fatal("a change of one key applies to another")
	}
	l.changedAll()
	if l.since(b).IsZero() {
		t.Fatal("a change of every key does not apply to each")
	}

	l = newChangeLog(replicaLoader{maxLag: time.Hour})
	hs := make([]keyward.KeyHash, maxChanges+1)
	for i := range hs {
		hs[i] = keyward.KeyHash{byte(i), byte(i >> 8), byte(i >> 16)}
	}
	l.changed(hs...)
	if len(l.at) > maxChanges || l.since(b).IsZero() {
		t.Fatalf("past the bound: %d hashes kept, since(other) = %v; want none kept and every key changed", len(l.at), l.since(b))
	}
}

// TestFreshLoaderAsksAfterChange: a lookup of a changed key carries the
// change time to the store, others carry none.
func TestFreshLoaderAsksAfterChange(t *testing.T) {
	var got []time.Time
	st := &afterRecorder{got: &got}
	l := newChangeLog(replicaLoader{maxLag: time.Hour})
	f := freshLoader{store: st, changes: l}
	a, b := keyward.KeyHash{1}, keyward.KeyHash{2}
	l.changed(a)
	f.KeyByHash(context.Background(), a)
	f.KeyByHash(context.Background(), b)
	if len(got) != 2 || got[0].IsZero() || !got[1].IsZero() {
		t.Fatalf("ReadAfter seen by the store = %v, want [change time, zero]", got)
	}
}

// afterRecorder records the ReadAfter of each lookup.
type afterRecorder struct {
	KeyLoader
	got *[]time.Time
}

func (r *afterRecorder) KeyByHash(ctx context.Context, _ keyward.KeyHash) (*keyward.Key, error) {
	*r.got = append(*r.got, keyward.ReadAfter(ctx))
	return nil, keyward.Errorf(keyward.ENOTFOUND, "no key")
}
