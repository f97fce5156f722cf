package admin_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/admin"
	"github.com/keyward/keyward/credits"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/verify"
)

// recorder is a keyward.KeyObserver that remembers what it was told.
type recorder struct {
	mu       sync.Mutex
	changed  []string // key ids
	deleted  []keyward.KeyHash
	accounts []string
}

func (r *recorder) KeyChanged(k *keyward.Key) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changed = append(r.changed, k.ID)
}

func (r *recorder) KeysDeleted(h []keyward.KeyHash) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deleted = append(r.deleted, h...)
}

func (r *recorder) AccountChanged(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.accounts = append(r.accounts, id)
}

type env struct {
	svc    admin.Services
	store  keyward.Store
	obs    *recorder
	now    time.Time
	root   context.Context // acting as the bootstrap root key
	engine *verify.Engine
	hook   string // the global webhook endpoint of announced
}

// announced returns the events announced since its previous call, oldest
// first, as a global webhook endpoint (created on the first call) gets
// them.
func (e *env) announced(t *testing.T) []*keyward.Event {
	t.Helper()
	if e.hook == "" {
		e.hook = must(e.svc.Webhooks.CreateWebhookEndpoint(e.root, keyward.NewWebhookEndpoint{URL: "https://hooks.example.com/keyward"})).Endpoint.ID
	}
	must(e.store.DispatchEvents(t.Context(), e.now, keyward.MaxPageLimit))
	ds := must(e.store.ClaimDeliveries(t.Context(), e.now, time.Hour, keyward.MaxPageLimit))
	var events []*keyward.Event
	for _, d := range ds {
		events = append(events, d.Event)
		must(0, e.store.FinishDelivery(t.Context(), keyward.DeliveryOutcome{EventID: d.EventID, EndpointID: d.EndpointID, LeaseUntil: d.LeaseUntil,
			Time: e.now, Status: 200, State: keyward.DeliveryDelivered, NextAttemptAt: e.now}))
	}
	slices.SortFunc(events, func(a, b *keyward.Event) int { return strings.Compare(a.ID, b.ID) })
	return events
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvOn(t, keywardtest.NewSQLiteStore(t))
}

// onEachStore runs test on an env on SQLite and one on PostgreSQL.
func onEachStore(t *testing.T, test func(t *testing.T, e *env)) {
	t.Run("sqlite", func(t *testing.T) { test(t, newEnv(t)) })
	t.Run("postgres", func(t *testing.T) { test(t, newEnvOn(t, keywardtest.NewPostgresStore(t))) })
}

// newEnvOn returns an env on store s, bootstrapped.
func newEnvOn(t *testing.T, s keyward.Store) *env {
	t.Helper()
	e := &env{store: s, obs: &recorder{}, now: keywardtest.Now()}
	clock := func() time.Time { return e.now }
	h := keywardtest.NewHasher(t)
	ledger := credits.NewStoreLedger(e.store)
	engine, err := verify.New(verify.Config{Store: e.store, Hasher: h, Credits: ledger, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Close(context.Background()) })
	e.engine = engine
	e.svc = admin.New(admin.Config{Store: e.store, Hasher: h, Verifier: engine, Observer: e.obs, Credits: ledger, Sealer: keywardtest.NewKeyring(t), Now: clock})
	_, root, err := e.svc.Keys.Bootstrap(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	e.root = keyward.NewContextWithIdentity(t.Context(), keyward.IdentityOf(root, ""))
	return e
}

// as returns a context acting as the key k.
func as(t *testing.T, k *keyward.Key) context.Context {
	return keyward.NewContextWithIdentity(t.Context(), keyward.IdentityOf(k, ""))
}

// must returns v, or panics (failing the test) on a set-up error.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := keyward.ErrorCode(err); got != code {
		t.Fatalf("error = %v (code %q), want code %q", err, got, code)
	}
}

func (e *env) tenant(t *testing.T, name string, perms ...string) (*keyward.Account, *keyward.User, *keyward.CreatedKey, *keyward.CreatedKey) {
	t.Helper()
	a := must(e.svc.Tenancy.CreateAccount(e.root, keyward.AccountCreate{Name: name}))
	u := must(e.svc.Tenancy.CreateUser(e.root, a.ID, keyward.UserCreate{Name: name + "-user"}))
	adminKey := must(e.svc.Keys.CreateKey(e.root, keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin, Permissions: perms}))
	userKey := must(e.svc.Keys.CreateKey(e.root, keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Role: keyward.RoleUser, Permissions: perms}))
	return a, u, adminKey, userKey
}

func TestBootstrapOnlyOnce(t *testing.T) {
	e := newEnv(t)
	_, _, err := e.svc.Keys.Bootstrap(t.Context())
	wantCode(t, err, keyward.ECONFLICT)
}

func TestNoCallerIsUnauthorized(t *testing.T) {
	e := newEnv(t)
	_, err := e.svc.Tenancy.Accounts(t.Context(), keyward.Page{})
	wantCode(t, err, keyward.EUNAUTHORIZED)
}

func TestCreateKeyUsesAccountPrefix(t *testing.T) {
	e := newEnv(t)
	a := must(e.svc.Tenancy.CreateAccount(e.root, keyward.AccountCreate{Name: "acme", KeyPrefix: "acme_live"}))
	u := must(e.svc.Tenancy.CreateUser(e.root, a.ID, keyward.UserCreate{Name: "alice"}))
	k := must(e.svc.Keys.CreateKey(e.root, keyward.KeyCreate{AccountID: a.ID, UserID: u.ID}))
	if k.Role != keyward.RoleUser || k.Prefix != "acme_live" || k.Start != k.Secret[:len("acme_live_")+4] {
		t.Fatalf("key = role %s prefix %q start %q", k.Role, k.Prefix, k.Start)
	}
	stored := must(e.store.Key(t.Context(), k.ID))
	if stored.Hash == (keyward.KeyHash{}) || stored.Start != k.Start {
		t.Fatalf("stored key lacks hash or start: %+v", stored)
	}
}

func TestCreateKeyRejectsBadInput(t *testing.T) {
	e := newEnv(t)
	a, u, _, _ := e.tenant(t, "acme")
	past := e.now.Add(-time.Hour)
	for name, c := range map[string]keyward.KeyCreate{
		"no role":             {AccountID: a.ID},
		"unknown role":        {AccountID: a.ID, Role: "owner"},
		"root with account":   {AccountID: a.ID, Role: keyward.RoleRoot},
		"admin without acct":  {Role: keyward.RoleAccountAdmin},
		"admin with user":     {AccountID: a.ID, UserID: u.ID, Role: keyward.RoleAccountAdmin},
		"user without user":   {AccountID: a.ID, Role: keyward.RoleUser},
		"expired":             {AccountID: a.ID, Role: keyward.RoleAccountAdmin, ExpiresAt: &past},
		"meta not object":     {AccountID: a.ID, Role: keyward.RoleAccountAdmin, Meta: []byte(`[1]`)},
		"permission w/ space": {AccountID: a.ID, Role: keyward.RoleAccountAdmin, Permissions: []string{"a b"}},
	} {
		if _, err := e.svc.Keys.CreateKey(e.root, c); keyward.ErrorCode(err) != keyward.EINVALID {
			t.Errorf("%s: error = %v, want invalid", name, err)
		}
	}
	other := must(e.svc.Tenancy.CreateAccount(e.root, keyward.AccountCreate{Name: "other"}))
	_, err := e.svc.Keys.CreateKey(e.root, keyward.KeyCreate{AccountID: other.ID, UserID: u.ID})
	wantCode(t, err, keyward.ENOTFOUND)
}

func TestNoPrivilegeEscalation(t *testing.T) {
	e := newEnv(t)
	a, u, adminKey, userKey := e.tenant(t, "acme", "memories:read")
	b, _, _, _ := e.tenant(t, "other")
	asAdmin, asUser := as(t, &adminKey.Key), as(t, &userKey.Key)
	later := e.now.Add(time.Hour)
	cases := []struct {
		name string
		ctx  context.Context
		c    keyward.KeyCreate
		code string
	}{
		{"admin creates root", asAdmin, keyward.KeyCreate{Role: keyward.RoleRoot}, keyward.EFORBIDDEN},
		{"admin creates in other account", asAdmin, keyward.KeyCreate{AccountID: b.ID, Role: keyward.RoleAccountAdmin}, keyward.EFORBIDDEN},
		{"admin grants permission it lacks", asAdmin, keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin, Permissions: []string{"memories:write"}}, keyward.EFORBIDDEN},
		{"user creates admin", asUser, keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin}, keyward.EFORBIDDEN},
		{"user grants permission it lacks", asUser, keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Permissions: []string{"memories:write"}}, keyward.EFORBIDDEN},
		{"admin subset ok", asAdmin, keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Permissions: []string{"memories:read"}}, ""},
		{"user own ok", asUser, keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Permissions: []string{"memories:read"}, ExpiresAt: &later}, ""},
	}
	for _, c := range cases {
		_, err := e.svc.Keys.CreateKey(c.ctx, c.c)
		if got := keyward.ErrorCode(err); got != c.code {
			t.Errorf("%s: error = %v, want code %q", c.name, err, c.code)
		}
	}

	// Update cannot add what the caller lacks, nor outlive the caller.
	perms := []string{"memories:read", "memories:write"}
	_, err := e.svc.Keys.UpdateKey(asUser, userKey.ID, keyward.KeyUpdate{Permissions: &perms})
	wantCode(t, err, keyward.EFORBIDDEN)
	short := must(e.svc.Keys.CreateKey(asUser, keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, ExpiresAt: &later}))
	_, err = e.svc.Keys.CreateKey(as(t, &short.Key), keyward.KeyCreate{AccountID: a.ID, UserID: u.ID})
	wantCode(t, err, keyward.EFORBIDDEN)
	_, err = e.svc.Keys.UpdateKey(as(t, &short.Key), short.ID, keyward.KeyUpdate{ClearExpiry: true})
	wantCode(t, err, keyward.EFORBIDDEN)
	if k := must(e.store.Key(t.Context(), short.ID)); k.ExpiresAt == nil {
		t.Fatal("a refused update changed the key")
	}

	// Rotation cannot mint a secret more powerful than the caller.
	strong := must(e.svc.Keys.CreateKey(e.root, keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Permissions: []string{"memories:write"}}))
	_, err = e.svc.Keys.RotateKey(asAdmin, strong.ID, keyward.KeyRotate{})
	wantCode(t, err, keyward.EFORBIDDEN)
}

func TestScopeHidesOtherAccounts(t *testing.T) {
	e := newEnv(t)
	_, _, adminA, userA := e.tenant(t, "a")
	b, ub, _, userB := e.tenant(t, "b")
	asAdminA := as(t, &adminA.Key)
	_, err := e.svc.Keys.Key(asAdminA, userB.ID)
	wantCode(t, err, keyward.ENOTFOUND)
	_, err = e.svc.Tenancy.Account(asAdminA, b.ID)
	wantCode(t, err, keyward.ENOTFOUND)
	_, err = e.svc.Tenancy.User(asAdminA, b.ID, ub.ID)
	wantCode(t, err, keyward.ENOTFOUND)
	_, err = e.svc.Keys.Keys(asAdminA, keyward.KeyFilter{AccountID: b.ID}, keyward.Page{})
	wantCode(t, err, keyward.ENOTFOUND)
	list := must(e.svc.Keys.Keys(as(t, &userA.Key), keyward.KeyFilter{}, keyward.Page{}))
	if len(list.Items) != 1 || list.Items[0].ID != userA.ID {
		t.Fatalf("user sees keys %v, want only its own", list.Items)
	}
	_, err = e.svc.Tenancy.Accounts(asAdminA, keyward.Page{})
	wantCode(t, err, keyward.EFORBIDDEN)
}

func TestRotate(t *testing.T) {
	e := newEnv(t)
	_, _, _, userKey := e.tenant(t, "acme", "memories:read")
	next := must(e.svc.Keys.RotateKey(e.root, userKey.ID, keyward.KeyRotate{Grace: keyward.Duration(time.Hour)}))
	if next.RotatedFrom != userKey.ID || next.Secret == userKey.Secret || len(next.Permissions) != 1 {
		t.Fatalf("rotated key = %+v", next.Key)
	}
	old := must(e.store.Key(t.Context(), userKey.ID))
	if old.GraceUntil == nil || !old.GraceUntil.Equal(e.now.Add(time.Hour)) || !old.RevokedAt.Equal(*old.GraceUntil) {
		t.Fatalf("old key grace = %v revoked = %v", old.GraceUntil, old.RevokedAt)
	}
	if got := old.Status(e.now.Add(59 * time.Minute)); got != keyward.DecisionValid {
		t.Errorf("old key within grace: %s", got)
	}
	if got := old.Status(e.now.Add(time.Hour)); got != keyward.DecisionRevoked {
		t.Errorf("old key after grace: %s", got)
	}
	_, err := e.svc.Keys.RotateKey(e.root, userKey.ID, keyward.KeyRotate{})
	wantCode(t, err, keyward.ECONFLICT)
	_, err = e.svc.Keys.RotateKey(e.root, next.ID, keyward.KeyRotate{Grace: keyward.Duration(admin.MaxGrace + time.Second)})
	wantCode(t, err, keyward.EINVALID)

	// Revoking a key in its grace window ends the window at once.
	revoked := must(e.svc.Keys.RevokeKey(e.root, userKey.ID))
	if !revoked.RevokedAt.Equal(e.now) {
		t.Fatalf("revoked_at = %v, want now", revoked.RevokedAt)
	}
	_, err = e.svc.Keys.RotateKey(e.root, userKey.ID, keyward.KeyRotate{})
	wantCode(t, err, keyward.ECONFLICT)
}

func TestObserverHearsEveryChange(t *testing.T) {
	e := newEnv(t)
	a, u, adminKey, userKey := e.tenant(t, "acme")
	e.obs = &recorder{} // forget the set-up; the service holds the old one
	svc := admin.New(admin.Config{Store: e.store, Hasher: keywardtest.NewHasher(t), Verifier: e.engine, Observer: e.obs, Now: func() time.Time { return e.now }})
	disabled := true
	must(svc.Keys.UpdateKey(e.root, userKey.ID, keyward.KeyUpdate{Disabled: &disabled}))
	must(svc.Keys.RevokeKey(e.root, userKey.ID))
	next := must(svc.Keys.RotateKey(e.root, adminKey.ID, keyward.KeyRotate{}))
	must(svc.Tenancy.UpdateAccount(e.root, a.ID, keyward.AccountUpdate{Disabled: &disabled}))
	if err := svc.Tenancy.DeleteUser(e.root, a.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	if err := svc.Tenancy.DeleteAccount(e.root, a.ID); err != nil {
		t.Fatal(err)
	}
	wantChanged := []string{userKey.ID, userKey.ID, adminKey.ID, next.ID}
	if len(e.obs.changed) != len(wantChanged) {
		t.Fatalf("changed = %v, want %v", e.obs.changed, wantChanged)
	}
	for i := range wantChanged {
		if e.obs.changed[i] != wantChanged[i] {
			t.Fatalf("changed = %v, want %v", e.obs.changed, wantChanged)
		}
	}
	// DeleteUser took the user key; DeleteAccount the old and new admin keys.
	if len(e.obs.deleted) != 3 {
		t.Fatalf("deleted %d hashes, want 3", len(e.obs.deleted))
	}
	if len(e.obs.accounts) != 2 || e.obs.accounts[0] != a.ID {
		t.Fatalf("account changes = %v", e.obs.accounts)
	}
}

func TestVerifyKey(t *testing.T) {
	e := newEnv(t)
	_, _, adminA, userA := e.tenant(t, "a", "memories:read")
	verifierA := must(e.svc.Keys.CreateKey(as(t, &adminA.Key), keyward.KeyCreate{AccountID: adminA.AccountID, Role: keyward.RoleAccountAdmin}))
	_, err := e.svc.Keys.VerifyKey(as(t, &verifierA.Key), keyward.VerifyRequest{Key: userA.Secret})
	wantCode(t, err, keyward.EFORBIDDEN)

	// Root may verify; the answer carries identity, permissions and meta.
	res := must(e.svc.Keys.VerifyKey(e.root, keyward.VerifyRequest{Key: userA.Secret, Permissions: []string{"memories:read"}, Agent: "bot"}))
	if !res.Valid || res.Code != keyward.DecisionValid || res.KeyID != userA.ID || res.Identity.Agent != "bot" || res.Identity.UserID != userA.UserID {
		t.Fatalf("verify = %+v", res)
	}
	res = must(e.svc.Keys.VerifyKey(e.root, keyward.VerifyRequest{Key: userA.Secret, Permissions: []string{"memories:write"}}))
	if res.Valid || res.Code != keyward.DecisionInsufficientPermissions || res.Identity != nil {
		t.Fatalf("verify without permission = %+v", res)
	}
}

func TestVerifyKeyIsScopedToCallersAccount(t *testing.T) {
	e := newEnv(t)
	a, _, _, userA := e.tenant(t, "a")
	_, _, _, userB := e.tenant(t, "b")
	svcKey := must(e.svc.Keys.CreateKey(e.root, keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin, Permissions: []string{admin.PermissionVerify}}))
	ctx := as(t, &svcKey.Key)
	if res := must(e.svc.Keys.VerifyKey(ctx, keyward.VerifyRequest{Key: userA.Secret})); !res.Valid {
		t.Fatalf("own account key: %+v", res)
	}
	res := must(e.svc.Keys.VerifyKey(ctx, keyward.VerifyRequest{Key: userB.Secret}))
	if res.Valid || res.Code != keyward.DecisionNotFound || res.KeyID != "" {
		t.Fatalf("other account key answered %+v, want NOT_FOUND and nothing else", res)
	}
}

func TestRetiringKeyMayNotChangeAnything(t *testing.T) {
	e := newEnv(t)
	a, u, adminKey, _ := e.tenant(t, "acme", "memories:read")
	must(e.svc.Keys.RotateKey(e.root, adminKey.ID, keyward.KeyRotate{Grace: keyward.Duration(time.Hour)}))
	old := must(e.store.Key(t.Context(), adminKey.ID))
	id := keyward.IdentityOf(old, "")
	if !id.Retiring || !id.ExpiresAt.Equal(*old.GraceUntil) {
		t.Fatalf("identity of a key in grace = %+v, want retiring, expiring with its grace", id)
	}
	ctx := keyward.NewContextWithIdentity(t.Context(), id)
	_, err := e.svc.Keys.CreateKey(ctx, keyward.KeyCreate{AccountID: a.ID, UserID: u.ID})
	wantCode(t, err, keyward.EFORBIDDEN)
	_, err = e.svc.Keys.RotateKey(ctx, adminKey.ID, keyward.KeyRotate{})
	wantCode(t, err, keyward.EFORBIDDEN)
	// It may still read.
	if _, err := e.svc.Tenancy.Account(ctx, a.ID); err != nil {
		t.Fatalf("a key in grace could not read its account: %v", err)
	}
}

func TestOnlyRootSetsMeta(t *testing.T) {
	e := newEnv(t)
	a, u, adminKey, userKey := e.tenant(t, "acme")
	meta := []byte(`{"plan":"pro"}`)
	_, err := e.svc.Keys.CreateKey(as(t, &adminKey.Key), keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Meta: meta})
	wantCode(t, err, keyward.EFORBIDDEN)
	raw := json.RawMessage(meta)
	_, err = e.svc.Keys.UpdateKey(as(t, &userKey.Key), userKey.ID, keyward.KeyUpdate{Meta: &raw})
	wantCode(t, err, keyward.EFORBIDDEN)
	k := must(e.svc.Keys.UpdateKey(e.root, userKey.ID, keyward.KeyUpdate{Meta: &raw}))
	if string(k.Meta) != string(meta) {
		t.Fatalf("meta = %s", k.Meta)
	}
}

func TestLastRootKeyCannotBeDeleted(t *testing.T) {
	e := newEnv(t)
	rootID := keyward.IdentityFrom(e.root).KeyID
	err := e.svc.Keys.DeleteKey(e.root, rootID)
	wantCode(t, err, keyward.ECONFLICT)
	second := must(e.svc.Keys.CreateKey(e.root, keyward.KeyCreate{Role: keyward.RoleRoot}))
	if err := e.svc.Keys.DeleteKey(e.root, rootID); err != nil {
		t.Fatalf("deleting a root key with another one left: %v", err)
	}
	err = e.svc.Keys.DeleteKey(as(t, &second.Key), second.ID)
	wantCode(t, err, keyward.ECONFLICT)
}

func TestVerifyKeyRejectsBadAgent(t *testing.T) {
	e := newEnv(t)
	_, _, _, userKey := e.tenant(t, "acme")
	_, err := e.svc.Keys.VerifyKey(e.root, keyward.VerifyRequest{Key: userKey.Secret, Agent: "bot\nX-Injected: 1"})
	wantCode(t, err, keyward.EINVALID)
}

// TestCacheFollowsCommitOrder toggles one key from many goroutines; however
// the notices interleave, the cache must end in the state the store holds.
func TestCacheFollowsCommitOrder(t *testing.T) {
	e := newEnv(t)
	_, _, _, userKey := e.tenant(t, "acme")
	var wg sync.WaitGroup
	for i := range 16 {
		disabled := i%2 == 0
		wg.Go(func() {
			if _, err := e.svc.Keys.UpdateKey(e.root, userKey.ID, keyward.KeyUpdate{Disabled: &disabled}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	stored := must(e.store.Key(t.Context(), userKey.ID))
	want := keyward.DecisionValid
	if stored.Disabled {
		want = keyward.DecisionDisabled
	}
	if got := e.engine.Verify(t.Context(), verify.Request{Key: userKey.Secret}).Decision; got != want {
		t.Fatalf("cache says %s, store says disabled=%v", got, stored.Disabled)
	}
}
