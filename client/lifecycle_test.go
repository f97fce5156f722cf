package client_test

import (
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/client"
)

// TestRotationPolicies round-trips the rotation policy methods over HTTP.
func TestRotationPolicies(t *testing.T) {
	e := newEnv(t)
	c := client.New(e.ts.URL, e.root)
	k := e.userKey()
	for _, s := range []keyward.RotationScope{{AccountID: e.acct.ID}, {KeyID: k.ID}} {
		p, err := c.SetRotationPolicy(t.Context(), s, keyward.RotationPolicySet{MaxAge: keyward.Duration(90 * 24 * time.Hour), ExpireAfter: keyward.Duration(time.Hour)})
		if err != nil || p.Scope() != s || time.Duration(p.MaxAge) != 90*24*time.Hour || time.Duration(p.ExpireAfter) != time.Hour {
			t.Fatalf("SetRotationPolicy(%v) = %+v, %v", s, p, err)
		}
		if got, err := c.RotationPolicy(t.Context(), s); err != nil || got.MaxAge != p.MaxAge || got.Scope() != s {
			t.Fatalf("RotationPolicy(%v) = %+v, %v", s, got, err)
		}
		if err := c.DeleteRotationPolicy(t.Context(), s); err != nil {
			t.Fatalf("DeleteRotationPolicy(%v): %v", s, err)
		}
		if _, err := c.RotationPolicy(t.Context(), s); keyward.ErrorCode(err) != keyward.ENOTFOUND {
			t.Errorf("RotationPolicy after delete: %v, want not found", err)
		}
	}
	if _, err := c.SetRotationPolicy(t.Context(), keyward.RotationScope{}, keyward.RotationPolicySet{MaxAge: keyward.Duration(time.Hour)}); keyward.ErrorCode(err) != keyward.EINVALID {
		t.Errorf("SetRotationPolicy without a scope: %v, want invalid", err)
	}
	if _, err := c.SetRotationPolicy(t.Context(), keyward.RotationScope{AccountID: e.acct.ID}, keyward.RotationPolicySet{}); keyward.ErrorCode(err) != keyward.EINVALID {
		t.Errorf("SetRotationPolicy without max_age: %v, want invalid", err)
	}
}
