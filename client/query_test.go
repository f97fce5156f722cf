package client_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/client"
)

// TestCachedVerifierQuery: a permission query and a required role reach
// the server, which says what is missing; each query and role is a
// question of its own for the cache; a query that does not parse is an
// invalid_query error naming its position, never a cached answer.
func TestCachedVerifierQuery(t *testing.T) {
	e := newEnv(t)
	k := e.userKey("notes:*", "search:run")
	c, rt := e.verifier(e.root)
	v := client.NewCachedVerifier(c, client.CacheConfig{Now: newClock().Now})

	verifyCode(t, v, keyward.VerifyRequest{Key: k.Secret, Query: "notes:read AND (search:run OR admin:*)"}, keyward.DecisionValid)
	verifyCode(t, v, keyward.VerifyRequest{Key: k.Secret, Query: "notes:read AND (search:run OR admin:*)"}, keyward.DecisionValid)
	wantCalls(t, rt, 1)

	res := verifyCode(t, v, keyward.VerifyRequest{Key: k.Secret, Permissions: []string{"notes:read", "memories:read"}, Query: "billing:read OR admin:*"}, keyward.DecisionInsufficientPermissions)
	if want := []string{"memories:read", "billing:read", "admin:*"}; !reflect.DeepEqual(res.MissingPermissions, want) {
		t.Errorf("missing_permissions = %q, want %q", res.MissingPermissions, want)
	}
	wantCalls(t, rt, 2)

	res = verifyCode(t, v, keyward.VerifyRequest{Key: k.Secret, Query: "notes:read", RequireRole: keyward.RoleAccountAdmin}, keyward.DecisionInsufficientPermissions)
	if res.MissingRole != keyward.RoleAccountAdmin || res.MissingPermissions != nil {
		t.Errorf("missing role %q, permissions %q; want account_admin and none", res.MissingRole, res.MissingPermissions)
	}
	verifyCode(t, v, keyward.VerifyRequest{Key: k.Secret, Query: "notes:read", RequireRole: keyward.RoleUser}, keyward.DecisionValid)
	wantCalls(t, rt, 4)

	for range 2 {
		_, err := v.VerifyKey(t.Context(), keyward.VerifyRequest{Key: k.Secret, Query: "notes:read AND (search:run"})
		if keyward.ErrorCode(err) != keyward.EQUERY || !strings.Contains(err.Error(), "at position 27") {
			t.Fatalf("a bad query: %v, want invalid_query at position 27", err)
		}
	}
	wantCalls(t, rt, 6)
}
