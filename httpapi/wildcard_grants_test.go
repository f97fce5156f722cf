package httpapi_test

import (
	"testing"

	"github.com/keyward/keyward"
)

// TestNoEscalationWithWildcards: a wildcard is granted only by a key
// holding it or a broader one, narrower grants pass, and "*" is for root
// keys only. It is apart from TestRoleTable and TestNoPrivilegeEscalation,
// whose worlds it does not change.
func TestNoEscalationWithWildcards(t *testing.T) {
	e := newEnv(t)
	a := e.mustAccount("wildcards")
	u := e.mustUser(a.ID, "holder")
	admin := keyward.Secret(e.mustKey(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin, Permissions: []string{"memories:*", "search:run", "keys:*"}}).Secret)
	user := keyward.Secret(e.mustKey(keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Role: keyward.RoleUser, Permissions: []string{"memories:notes:*"}}).Secret)
	userKey := func(perms ...string) keyward.KeyCreate {
		return keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Role: keyward.RoleUser, Permissions: perms}
	}
	for _, c := range []struct {
		name   string
		caller keyward.Secret
		create keyward.KeyCreate
		want   string // "" for allowed
	}{
		{"admin grants a permission its wildcard covers", admin, userKey("memories:read"), ""},
		{"admin grants a deeper permission its wildcard covers", admin, userKey("memories:notes.read"), ""},
		{"admin grants its own wildcard", admin, userKey("memories:*"), ""},
		{"admin grants a narrower wildcard", admin, userKey("memories:notes:*"), ""},
		{"admin grants keyward's own permission its wildcard covers", admin, userKey("keys:verify"), ""},
		{"admin grants *", admin, userKey("*"), keyward.EFORBIDDEN},
		{"admin grants a wildcard broader than its exact permission", admin, userKey("search:*"), keyward.EFORBIDDEN},
		{"admin grants a permission of another service", admin, userKey("billing:read"), keyward.EFORBIDDEN},
		{"admin grants the service name its wildcard does not cover", admin, userKey("memories"), keyward.EFORBIDDEN},
		{"admin grants another separator", admin, userKey("memories.read"), keyward.EFORBIDDEN},
		{"user grants within its wildcard", user, userKey("memories:notes:read"), ""},
		{"user grants its parent's wildcard", user, userKey("memories:*"), keyward.EFORBIDDEN},
		{"user grants a sibling", user, userKey("memories:files:read"), keyward.EFORBIDDEN},
		{"root grants * to an account admin", e.root, keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin, Permissions: []string{"*"}}, keyward.EFORBIDDEN},
		{"root grants * to a root key", e.root, keyward.KeyCreate{Role: keyward.RoleRoot, Permissions: []string{"*"}}, ""},
		{"root grants a wildcard", e.root, userKey("billing:*"), ""},
		{"a wildcard within a segment", e.root, userKey("billing:re*"), keyward.EINVALID},
	} {
		t.Run(c.name, func(t *testing.T) {
			k, err := e.client(c.caller).CreateKey(t.Context(), c.create)
			if k != nil && k.Secret != "" {
				e.remember(k.Secret)
			}
			if got := keyward.ErrorCode(err); got != c.want {
				t.Fatalf("CreateKey: code %q (%v), want %q", got, err, c.want)
			}
		})
	}

	// An update may not widen a key's permissions beyond the caller's
	// either, and may narrow them.
	target := e.mustKey(userKey("memories:read")).ID
	for _, c := range []struct {
		perms []string
		want  string
	}{
		{[]string{"memories:*", "search:run"}, ""},
		{[]string{"search:*"}, keyward.EFORBIDDEN},
		{[]string{"*"}, keyward.EFORBIDDEN},
	} {
		_, err := e.client(admin).UpdateKey(t.Context(), target, keyward.KeyUpdate{Permissions: &c.perms})
		if got := keyward.ErrorCode(err); got != c.want {
			t.Errorf("UpdateKey to %q: code %q (%v), want %q", c.perms, got, err, c.want)
		}
	}
}
