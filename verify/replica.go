package verify

import (
	"context"
	"sync"
	"time"

	"github.com/keyward/keyward"
)

// maxChanges bounds the hashes a changeLog remembers. Past it the log
// forgets them all and asks every lookup for a fresh answer for a while:
// correct, only slower.
const maxChanges = 100_000

// changeLog remembers when the engine last heard of a change of each key,
// for a store that may read replicas behind the primary
// (keyward.ReplicaReader): a lookup of a changed key then asks for an
// answer no older than the change (keyward.ContextReadAfter), so a lagging
// replica can never re-cache a revoked key. A change is remembered for the
// store's ReplicaMaxLag: past that the store reads no replica that has not
// caught up with it anyway. Changes the engine cannot name by hash (an
// account's, a purge after the bus reconnects) apply to every key.
//
// Times are time.Now, not Config.Now: they are compared with the store's
// clock.
type changeLog struct {
	window time.Duration // the store's ReplicaMaxLag; zero: the log is off
	mu     sync.Mutex
	at     map[keyward.KeyHash]time.Time
	all    time.Time // a change of every key
}

// newChangeLog returns the change log of an engine on store, off unless
// the store reads replicas.
func newChangeLog(store KeyLoader) *changeLog {
	l := &changeLog{}
	if rr, ok := store.(keyward.ReplicaReader); ok {
		l.window = rr.ReplicaMaxLag()
	}
	if l.window > 0 {
		l.at = make(map[keyward.KeyHash]time.Time)
	}
	return l
}

// changed records a change of the keys with hashes hs.
func (l *changeLog) changed(hs ...keyward.KeyHash) {
	if l.window == 0 {
		return
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.at)+len(hs) > maxChanges {
		for h, t := range l.at {
			if now.Sub(t) > l.window {
				delete(l.at, h)
			}
		}
		if len(l.at)+len(hs) > maxChanges {
			clear(l.at)
			l.all = now
			return
		}
	}
	for _, h := range hs {
		l.at[h] = now
	}
}

// changedAll records a change of every key.
func (l *changeLog) changedAll() {
	if l.window == 0 {
		return
	}
	now := time.Now()
	l.mu.Lock()
	l.all = now
	clear(l.at)
	l.mu.Unlock()
}

// since returns the time of the last change heard of the key with hash h,
// zero if none within the window.
func (l *changeLog) since(h keyward.KeyHash) time.Time {
	if l.window == 0 {
		return time.Time{}
	}
	l.mu.Lock()
	t, all := l.at[h], l.all
	l.mu.Unlock()
	if all.After(t) {
		t = all
	}
	if !t.IsZero() && time.Since(t) > l.window {
		return time.Time{}
	}
	return t
}

// freshLoader is the engine's store as findKey reads it: a lookup of a key
// the change log names asks for an answer no older than the change.
type freshLoader struct {
	store   KeyLoader
	changes *changeLog
}

func (f freshLoader) KeyByHash(ctx context.Context, h keyward.KeyHash) (*keyward.Key, error) {
	if t := f.changes.since(h); !t.IsZero() {
		ctx = keyward.ContextReadAfter(ctx, t)
	}
	return f.store.KeyByHash(ctx, h)
}
