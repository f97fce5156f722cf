package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

// mintChain makes, through the API, an account_admin key (by root), a user
// key minted by it, and a user key minted by that one: two levels of
// descendants. A fourth key, minted by root, is no descendant.
func mintChain(t *testing.T, e *env) (admin, child, grandchild, bystander *keyward.CreatedKey) {
	t.Helper()
	a := e.mustAccount("acme")
	u := e.mustUser(a.ID, "alice")
	admin = e.mustKey(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin})
	bystander = e.mustKey(keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Role: keyward.RoleUser})
	mint := func(parent *keyward.CreatedKey) *keyward.CreatedKey {
		t.Helper()
		k, err := e.client(keyward.Secret(parent.Secret)).CreateKey(t.Context(), keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Role: keyward.RoleUser})
		if err != nil {
			t.Fatalf("key %s minting a key: %v", parent.ID, err)
		}
		e.remember(k.Secret)
		return k
	}
	child = mint(admin)
	grandchild = mint(child)
	return admin, child, grandchild, bystander
}

// wantDecisions verifies each key through the API.
func wantDecisions(t *testing.T, e *env, want keyward.Decision, keys ...*keyward.CreatedKey) {
	t.Helper()
	for _, k := range keys {
		v, err := e.client(e.root).VerifyKey(t.Context(), keyward.VerifyRequest{Key: k.Secret})
		if err != nil || v.Code != want {
			t.Errorf("key %s verifies %+v, %v; want %s", k.ID, v, err, want)
		}
	}
}

func TestRevokeCascade(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin, child, grandchild, bystander := mintChain(t, e)
	wantDecisions(t, e, keyward.DecisionValid, admin, child, grandchild, bystander) // cached as valid

	// Without cascade, today's behaviour: the children keep working.
	if r := e.do("POST", "/v1/keys/"+child.ID+"/revoke?cascade=maybe", e.root, ""); r.status != http.StatusBadRequest {
		t.Errorf("cascade=maybe: %d, want 400", r.status)
	}
	r, err := e.client(e.root).RevokeKeyCascade(t.Context(), admin.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != admin.ID || r.RevokedAt == nil || len(r.Cascaded) != 2 || r.Cascaded[0] != child.ID || r.Cascaded[1] != grandchild.ID {
		t.Fatalf("revocation = %+v (cascaded %v), want the admin key with child then grandchild", r.Key, r.Cascaded)
	}
	wantDecisions(t, e, keyward.DecisionRevoked, admin, child, grandchild)
	wantDecisions(t, e, keyward.DecisionValid, bystander)

	// Each child has its own audit entry naming the key it descends from.
	l, err := e.client(e.root).AuditEntries(t.Context(), keyward.AuditFilter{Action: "key.revoke"}, keyward.Page{})
	if err != nil || len(l.Items) != 3 {
		t.Fatalf("key.revoke entries = %+v, %v; want 3", l, err)
	}
	for i, id := range []string{admin.ID, child.ID, grandchild.ID} {
		if l.Items[i].TargetID != id {
			t.Errorf("entry %d targets %s, want %s", i, l.Items[i].TargetID, id)
		}
	}

	// Again: nothing left to revoke, nothing listed.
	r, err = e.client(e.root).RevokeKeyCascade(t.Context(), admin.ID)
	if err != nil || len(r.Cascaded) != 0 {
		t.Errorf("second cascade = %+v, %v; want nothing cascaded", r, err)
	}
	// A root key is refused a cascade: its keys are every account's.
	if _, err := e.client(e.root).RevokeKeyCascade(t.Context(), e.rootKey.ID); keyward.ErrorCode(err) != keyward.EINVALID {
		t.Errorf("cascade from a root key: %v, want invalid", err)
	}
}

func TestReportLeaksCascades(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin, child, grandchild, bystander := mintChain(t, e)
	res, err := e.client(e.root).ReportLeaks(t.Context(), keyward.LeakReport{Tokens: []keyward.LeakedToken{{Token: admin.Secret, Source: "github"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Results[0]; got.Status != keyward.LeakRevoked || got.KeyID != admin.ID || got.Cascaded != 2 {
		t.Fatalf("result = %+v, want the admin key revoked with 2 descendants", got)
	}
	wantDecisions(t, e, keyward.DecisionRevoked, admin, child, grandchild)
	wantDecisions(t, e, keyward.DecisionValid, bystander)
	l, err := e.client(e.root).AuditEntries(t.Context(), keyward.AuditFilter{Action: "key.revoke"}, keyward.Page{})
	if err != nil || len(l.Items) != 2 {
		t.Fatalf("key.revoke entries of the descendants = %+v, %v; want 2", l, err)
	}
}

func TestReportLeaksWithoutCascade(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin, child, grandchild, _ := mintChain(t, e)
	off := false
	res, err := e.client(e.root).ReportLeaks(t.Context(), keyward.LeakReport{Cascade: &off, Tokens: []keyward.LeakedToken{{Token: admin.Secret}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Results[0]; got.Status != keyward.LeakRevoked || got.Cascaded != 0 {
		t.Fatalf("result = %+v, want the admin key alone", got)
	}
	wantDecisions(t, e, keyward.DecisionRevoked, admin)
	wantDecisions(t, e, keyward.DecisionValid, child, grandchild)
}

func TestAccountMintPolicy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.mustAccount("viking")
	u := e.mustUser(a.ID, "alice")
	admin := e.mustKey(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin})
	user := e.mustKey(keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Role: keyward.RoleUser})
	mint := func(by *keyward.CreatedKey, c keyward.KeyCreate) error {
		k, err := e.client(keyward.Secret(by.Secret)).CreateKey(t.Context(), c)
		if err == nil {
			e.remember(k.Secret)
		}
		return err
	}
	userKey := keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Role: keyward.RoleUser}
	adminKey := keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin}

	// The default policy keeps what accounts could always do.
	if acc, err := e.client(e.root).Account(t.Context(), a.ID); err != nil || acc.Policy != (keyward.AccountPolicy{}) {
		t.Fatalf("default policy = %+v, %v", acc, err)
	}
	for name, err := range map[string]error{"user -> user": mint(user, userKey), "admin -> admin": mint(admin, adminKey)} {
		if err != nil {
			t.Errorf("%s under the default policy: %v", name, err)
		}
	}

	// Root turns both off; only root may.
	off := false
	policy := &keyward.AccountPolicyUpdate{UsersMayMintKeys: &off, AdminsMayMintAdminKeys: &off}
	if _, err := e.client(keyward.Secret(admin.Secret)).UpdateAccount(t.Context(), a.ID, keyward.AccountUpdate{Policy: policy}); keyward.ErrorCode(err) != keyward.EFORBIDDEN {
		t.Errorf("an account admin setting its policy: %v, want forbidden", err)
	}
	acc, err := e.client(e.root).UpdateAccount(t.Context(), a.ID, keyward.AccountUpdate{Policy: policy})
	if err != nil || acc.Policy != (keyward.AccountPolicy{NoUserMinting: true, NoAdminMinting: true}) {
		t.Fatalf("update policy = %+v, %v", acc, err)
	}
	if r := e.do("GET", "/v1/accounts/"+a.ID, e.root, ""); r.status != http.StatusOK ||
		!strings.Contains(string(r.body), `"policy":{"users_may_mint_keys":false,"admins_may_mint_admin_keys":false}`) {
		t.Errorf("GET account: %d %s", r.status, r.body)
	}
	for name, err := range map[string]error{"user -> user": mint(user, userKey), "admin -> admin": mint(admin, adminKey)} {
		if keyward.ErrorCode(err) != keyward.EFORBIDDEN {
			t.Errorf("%s under the closed policy: %v, want forbidden", name, err)
		}
	}
	// What the policy does not cover still works: an admin minting a user
	// key, root minting an account_admin key.
	if err := mint(admin, userKey); err != nil {
		t.Errorf("admin -> user under the closed policy: %v", err)
	}
	if k, err := e.client(e.root).CreateKey(t.Context(), adminKey); err != nil {
		t.Errorf("root -> admin under the closed policy: %v", err)
	} else {
		e.remember(k.Secret)
	}
	// Another account keeps the default.
	b := e.mustAccount("other")
	bu := e.mustUser(b.ID, "bob")
	bUser := e.mustKey(keyward.KeyCreate{AccountID: b.ID, UserID: bu.ID})
	if err := mint(bUser, keyward.KeyCreate{AccountID: b.ID, UserID: bu.ID, Role: keyward.RoleUser}); err != nil {
		t.Errorf("user of another account: %v", err)
	}
}
