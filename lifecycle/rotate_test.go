package lifecycle_test

import (
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/lifecycle"
)

// TestRotationHandsOverThePolicy: a user who rotates a key as its policy
// asks gets a replacement that has the key's own policy and not the expiry
// the policy scheduled, so it lives on past the old key's deadline and is
// due again max_age after its creation. An expiry a person set is carried
// over as before.
func TestRotationHandsOverThePolicy(t *testing.T) {
	for name, open := range map[string]func(testing.TB) keyward.Store{
		"sqlite":   func(t testing.TB) keyward.Store { return keywardtest.NewSQLiteStore(t) },
		"postgres": func(t testing.TB) keyward.Store { return keywardtest.NewPostgresStore(t) },
	} {
		t.Run(name, func(t *testing.T) { testRotationHandsOverThePolicy(t, open(t)) })
	}
}

func testRotationHandsOverThePolicy(t *testing.T, s keyward.Store) {
	ctx := t.Context()
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	c := &clock{t: t0}
	in := newInstance(t, s, c, lifecycle.Config{})
	h := keywardtest.NewHasher(t)
	acct := keywardtest.NewAccount(t, s, "acme")
	root := keywardtest.NewRootKey(t, s, h)
	rootCtx := keyward.NewContextWithIdentity(ctx, &keyward.Identity{KeyID: root.ID, Role: keyward.RoleRoot})
	mk := func(name string, expires *time.Time) *keyward.Key {
		return &keywardtest.NewKey(t, s, h, keyward.Key{Name: name, Role: keyward.RoleAccountAdmin, AccountID: acct.ID,
			CreatedAt: t0, UpdatedAt: t0, ExpiresAt: expires}).Key
	}
	policy := keyward.RotationPolicySet{MaxAge: keyward.Duration(10 * day), ExpireAfter: keyward.Duration(2 * day)}
	deploy := mk("deploy", nil)                     // expiry scheduled by its policy
	explicit := mk("explicit", ptr(t0.Add(11*day))) // expires before the notice period ends
	extended := mk("extended", nil)                 // scheduled, then extended by an admin
	for _, k := range []*keyward.Key{deploy, explicit, extended} {
		if _, err := in.admin.Keys.SetRotationPolicy(rootCtx, keyward.RotationScope{KeyID: k.ID}, policy); err != nil {
			t.Fatal(err)
		}
	}

	c.Add(10*day + time.Hour) // all three due: announced, expiry scheduled
	in.runOnce(t)
	deadline := t0.Add(12*day + time.Hour)
	if k, _ := s.Key(ctx, deploy.ID); k.ExpiresAt == nil || !k.ExpiresAt.Equal(deadline) || !k.ExpiryScheduled {
		t.Fatalf("due key: expires_at %v scheduled %v, want %v by the policy", k.ExpiresAt, k.ExpiryScheduled, deadline)
	}
	if k, _ := s.Key(ctx, explicit.ID); !k.ExpiresAt.Equal(t0.Add(11*day)) || k.ExpiryScheduled {
		t.Fatalf("key expiring earlier: expires_at %v scheduled %v, want its own expiry", k.ExpiresAt, k.ExpiryScheduled)
	}
	later := t0.Add(40 * day)
	k, err := in.admin.Keys.UpdateKey(rootCtx, extended.ID, keyward.KeyUpdate{ExpiresAt: &later})
	if err != nil {
		t.Fatal(err)
	}
	if k.ExpiryScheduled {
		t.Fatal("an expiry set by an admin is still marked scheduled")
	}

	rotate := func(k *keyward.Key) *keyward.CreatedKey {
		t.Helper()
		next, err := in.admin.Keys.RotateKey(rootCtx, k.ID, keyward.KeyRotate{Grace: keyward.Duration(time.Hour)})
		if err != nil {
			t.Fatalf("rotate %s: %v", k.Name, err)
		}
		if _, err := s.RotationPolicy(ctx, keyward.RotationScope{KeyID: k.ID}); keyward.ErrorCode(err) != keyward.ENOTFOUND {
			t.Fatalf("the rotated key %s kept its policy (err %v)", k.Name, err)
		}
		p, err := s.RotationPolicy(ctx, keyward.RotationScope{KeyID: next.ID})
		if err != nil {
			t.Fatalf("the replacement of %s has no policy: %v", k.Name, err)
		}
		if p.MaxAge != policy.MaxAge || p.ExpireAfter != policy.ExpireAfter {
			t.Fatalf("the replacement's policy = %+v, want %+v", p, policy)
		}
		return next
	}
	next := rotate(deploy)
	if next.ExpiresAt != nil || next.ExpiryScheduled {
		t.Fatalf("the replacement inherited the scheduled expiry %v", next.ExpiresAt)
	}
	if got := rotate(explicit).ExpiresAt; got == nil || !got.Equal(t0.Add(11*day)) {
		t.Fatalf("the replacement of a key with its own expiry expires at %v, want it carried over", got)
	}
	if got := rotate(extended).ExpiresAt; got == nil || !got.Equal(later) {
		t.Fatalf("the replacement of an extended key expires at %v, want %v", got, later)
	}

	// Past the old key's deadline the replacement works and is not due.
	c.Add(3 * day)
	in.runOnce(t)
	stored, err := s.Key(ctx, next.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := stored.Status(c.Now()); got != keyward.DecisionValid || stored.ExpiresAt != nil {
		t.Fatalf("replacement after the old key's deadline: %s, expires_at %v", got, stored.ExpiresAt)
	}
	if ns, _ := s.KeyNotices(ctx, next.ID); len(ns) != 0 {
		t.Fatalf("replacement announced before its max_age: %+v", ns)
	}

	// max_age after its creation it is due, and its policy schedules its
	// expiry.
	c.Add(7 * day) // t0 + 20d + 1h: the replacement was created at t0 + 10d + 1h
	in.runOnce(t)
	stored, _ = s.Key(ctx, next.ID)
	if want := c.Now().Add(2 * day); stored.ExpiresAt == nil || !stored.ExpiresAt.Equal(want) || !stored.ExpiryScheduled {
		t.Fatalf("replacement due: expires_at %v scheduled %v, want %v by its policy", stored.ExpiresAt, stored.ExpiryScheduled, want)
	}
}
