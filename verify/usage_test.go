package verify_test

import (
	"context"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/verify"
)

func TestUsageBatched(t *testing.T) {
	e := newEnv(t, nil)
	a := e.key(keyward.Key{})
	b := e.key(keyward.Key{})
	revoked := e.key(keyward.Key{RevokedAt: ptr(e.clock.Now())})
	for range 100 {
		e.clock.Advance(time.Second)
		e.want(a.Secret, keyward.DecisionValid)
		e.want(b.Secret, keyward.DecisionInsufficientPermissions, "x") // authenticated: a use
		e.want(revoked.Secret, keyward.DecisionRevoked)                // refused: not a use
	}
	latest := e.clock.Now()
	e.clock.Advance(time.Hour) // a later clock changes nothing already recorded
	if n := len(e.store.Touches()); n != 0 {
		t.Fatalf("%d usage writes before the flush, want 0", n)
	}
	if err := e.engine.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	touches := e.store.Touches()
	if len(touches) != 1 || len(touches[0]) != 2 {
		t.Fatalf("usage writes = %v, want one batch of two keys", touches)
	}
	for _, k := range []*keyward.CreatedKey{a, b} {
		stored, err := e.store.Key(e.ctx, k.ID)
		if err != nil {
			t.Fatal(err)
		}
		if stored.LastUsedAt == nil || !stored.LastUsedAt.Equal(latest) {
			t.Errorf("key %s last used at %v, want %v", k.ID, stored.LastUsedAt, latest)
		}
	}
	if stored, _ := e.store.Key(e.ctx, revoked.ID); stored.LastUsedAt != nil {
		t.Errorf("a refused key was recorded as used at %v", stored.LastUsedAt)
	}
	// Nothing new: no write.
	if err := e.engine.Flush(context.Background()); err != nil || len(e.store.Touches()) != 1 {
		t.Fatalf("empty flush: err %v, %d writes", err, len(e.store.Touches()))
	}
}

func TestUsageAcrossFlushes(t *testing.T) {
	e := newEnv(t, nil)
	k := e.key(keyward.Key{})
	e.want(k.Secret, keyward.DecisionValid)
	first := e.clock.Now()
	if err := e.engine.Flush(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	e.want(k.Secret, keyward.DecisionValid)
	// An invalidation replaces the entry; the use recorded on the old
	// one is not lost.
	e.clock.Advance(time.Second)
	e.want(k.Secret, keyward.DecisionValid)
	stored, _ := e.store.Key(e.ctx, k.ID)
	e.engine.KeyChanged(stored)
	if err := e.engine.Flush(e.ctx); err != nil {
		t.Fatal(err)
	}
	touches := e.store.Touches()
	if len(touches) != 2 || !touches[0][0].At.Equal(first) || !touches[1][0].At.Equal(e.clock.Now()) {
		t.Fatalf("usage writes = %v, want %v then %v", touches, first, e.clock.Now())
	}
}

func TestUsageRetriedAfterFailure(t *testing.T) {
	e := newEnv(t, nil)
	k := e.key(keyward.Key{})
	e.want(k.Secret, keyward.DecisionValid)
	e.store.down.Store(true)
	if err := e.engine.Flush(e.ctx); keyward.ErrorCode(err) != keyward.EUNAVAILABLE {
		t.Fatalf("flush during an outage: %v, want %s", err, keyward.EUNAVAILABLE)
	}
	e.store.down.Store(false)
	if err := e.engine.Flush(e.ctx); err != nil {
		t.Fatal(err)
	}
	if stored, _ := e.store.Key(e.ctx, k.ID); stored.LastUsedAt == nil || !stored.LastUsedAt.Equal(e.clock.Now()) {
		t.Fatalf("last used at %v after the retry, want %v", stored.LastUsedAt, e.clock.Now())
	}
}

func TestUsageFlushedInBackground(t *testing.T) {
	e := newEnv(t, func(c *verify.Config) { c.UsageFlushInterval = 10 * time.Millisecond })
	k := e.key(keyward.Key{})
	e.want(k.Secret, keyward.DecisionValid)
	select {
	case <-e.store.touched:
	case <-time.After(10 * time.Second):
		t.Fatal("usage not flushed by the background goroutine")
	}
	if stored, _ := e.store.Key(e.ctx, k.ID); stored.LastUsedAt == nil {
		t.Fatal("last_used_at not written")
	}
}
