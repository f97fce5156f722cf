package admin_test

import (
	"context"
	"encoding/hex"
	"slices"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/admin"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/verify"
)

// TestKeyEnvironments: the configured prefixes pick each key's prefix by
// tier and environment (the bootstrap root key's too), the environment is
// kept by a rotation, verify can require one, and keys list by
// environment.
func TestKeyEnvironments(t *testing.T) {
	s := keywardtest.NewSQLiteStore(t)
	h := keywardtest.NewHasher(t)
	engine, err := verify.New(verify.Config{Store: s, Hasher: h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Close(context.Background()) })
	all := admin.New(admin.Config{Store: s, Hasher: h, Verifier: engine, Sealer: keywardtest.NewKeyring(t),
		Prefixes: apikey.Prefixes{Root: "ovk_root_", AccountAdmin: "ovk_acct_", User: "ovk_user_"}})
	svc := all.Keys
	secret, root, err := svc.Bootstrap(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if raw := secret.Reveal(); !strings.HasPrefix(raw, "ovk_root_") || root.Environment != keyward.DefaultEnvironment {
		t.Fatalf("bootstrap key starts %q, environment %q; want ovk_root_, live", apikey.Start(raw), root.Environment)
	}
	ctx := keyward.NewContextWithIdentity(t.Context(), keyward.IdentityOf(root, ""))
	a := must(all.Tenancy.CreateAccount(ctx, keyward.AccountCreate{Name: "acme"}))
	u := must(all.Tenancy.CreateUser(ctx, a.ID, keyward.UserCreate{Name: "alice"}))
	live := must(svc.CreateKey(ctx, keyward.KeyCreate{AccountID: a.ID, UserID: u.ID}))
	test := must(svc.CreateKey(ctx, keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Environment: "test"}))
	adminTest := must(svc.CreateKey(ctx, keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin, Environment: "test"}))
	for _, c := range []struct {
		k         *keyward.CreatedKey
		env, head string
	}{{live, "live", "ovk_user_"}, {test, "test", "ovk_test_user_"}, {adminTest, "test", "ovk_test_acct_"}} {
		if c.k.Environment != c.env || !strings.HasPrefix(c.k.Secret, c.head) || c.k.Prefix+"_" != c.head {
			t.Errorf("key %s: environment %q, prefix %q, starts %q; want %s, %s", c.k.ID, c.k.Environment, c.k.Prefix, apikey.Start(c.k.Secret), c.env, c.head)
		}
		if got := must(s.Key(t.Context(), c.k.ID)); got.Environment != c.env {
			t.Errorf("stored key %s: environment %q, want %s", c.k.ID, got.Environment, c.env)
		}
	}

	// Environments nobody configured, or that are no names, are refused.
	_, err = svc.CreateKey(ctx, keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Environment: "staging"})
	wantCode(t, err, keyward.EINVALID)
	_, err = svc.CreateKey(ctx, keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Environment: "Test"})
	wantCode(t, err, keyward.EINVALID)

	// An account's own prefix may not overlap the configured tiers and
	// environments, at creation or by an update, and a refusal changes
	// nothing; the defaults' reserved prefixes are free under others.
	before := must(all.Tenancy.Accounts(ctx, keyward.Page{}))
	for _, p := range []string{"ovk_root", "ovk_test_acct", "ovk"} {
		_, err = all.Tenancy.CreateAccount(ctx, keyward.AccountCreate{Name: "overlap", KeyPrefix: p})
		wantCode(t, err, keyward.EINVALID)
	}
	bad := "ovk_acct_acme"
	_, err = all.Tenancy.UpdateAccount(ctx, a.ID, keyward.AccountUpdate{KeyPrefix: &bad})
	wantCode(t, err, keyward.EINVALID)
	if after := must(all.Tenancy.Accounts(ctx, keyward.Page{})); len(after.Items) != len(before.Items) || must(all.Tenancy.Account(ctx, a.ID)).KeyPrefix != "" {
		t.Errorf("refused prefixes changed the accounts: %d before, %d after", len(before.Items), len(after.Items))
	}
	kw := must(all.Tenancy.CreateAccount(ctx, keyward.AccountCreate{Name: "old style", KeyPrefix: "kw_root"}))
	kwUser := must(all.Tenancy.CreateUser(ctx, kw.ID, keyward.UserCreate{Name: "bob"}))
	if k := must(svc.CreateKey(ctx, keyward.KeyCreate{AccountID: kw.ID, UserID: kwUser.ID})); !strings.HasPrefix(k.Secret, "kw_root_") {
		t.Errorf("user key of an account with prefix kw_root starts %q", apikey.Start(k.Secret))
	}

	// Imported keys take an environment too, checked as a created key's;
	// an import naming one that is not configured imports nothing.
	const legacy = "legacy-token-of-the-test-environment"
	_, err = svc.ImportKeys(ctx, keyward.KeyImportRequest{Keys: []keyward.KeyImportEntry{
		{SHA256: hexDigest(legacy), Role: keyward.RoleAccountAdmin, Account: a.ID, Environment: "test"},
		{SHA256: hexDigest("another-legacy-token"), Role: keyward.RoleAccountAdmin, Account: a.ID, Environment: "staging"},
	}})
	wantCode(t, err, keyward.EINVALID)
	if c := must(s.KeyImportCounts(t.Context())); c.Pending != 0 {
		t.Fatalf("a refused import left %d keys pending", c.Pending)
	}
	imported := must(svc.ImportKeys(ctx, keyward.KeyImportRequest{Keys: []keyward.KeyImportEntry{
		{SHA256: hexDigest(legacy), Role: keyward.RoleAccountAdmin, Account: a.ID, Environment: "test"},
	}}))
	if got := must(s.Key(t.Context(), imported.Imported[0].ID)); got.Environment != "test" {
		t.Errorf("imported key's environment = %q, want test", got.Environment)
	}
	if err := engine.ReloadImports(t.Context()); err != nil {
		t.Fatal(err)
	}
	if res := must(svc.VerifyKey(ctx, keyward.VerifyRequest{Key: legacy, Environment: "live"})); res.Code != keyward.DecisionWrongEnvironment || res.Environment != "test" {
		t.Errorf("imported test key verified for live = %+v, want WRONG_ENVIRONMENT naming test", res)
	}

	// Verify returns the environment and refuses another when required.
	res := must(svc.VerifyKey(ctx, keyward.VerifyRequest{Key: test.Secret}))
	if !res.Valid || res.Environment != "test" || res.Identity.Environment != "test" {
		t.Errorf("verify test key = %+v, want VALID in test", res)
	}
	res = must(svc.VerifyKey(ctx, keyward.VerifyRequest{Key: test.Secret, Environment: "live"}))
	if res.Valid || res.Code != keyward.DecisionWrongEnvironment || res.Environment != "test" || res.Identity != nil {
		t.Errorf("verify test key for live = %+v, want WRONG_ENVIRONMENT naming test, without identity", res)
	}
	res = must(svc.VerifyKey(ctx, keyward.VerifyRequest{Key: live.Secret, Environment: "live"}))
	if !res.Valid || res.Environment != "live" {
		t.Errorf("verify live key for live = %+v, want VALID", res)
	}
	_, err = svc.VerifyKey(ctx, keyward.VerifyRequest{Key: live.Secret, Environment: "LIVE"})
	wantCode(t, err, keyward.EINVALID)

	// A rotation keeps the environment and its prefix.
	next := must(svc.RotateKey(ctx, test.ID, keyward.KeyRotate{}))
	if next.Environment != "test" || !strings.HasPrefix(next.Secret, "ovk_test_user_") {
		t.Errorf("rotated test key: environment %q, starts %q", next.Environment, apikey.Start(next.Secret))
	}

	// Listing by environment, within the caller's scope.
	list := must(svc.Keys(ctx, keyward.KeyFilter{Environment: "test"}, keyward.Page{}))
	var ids []string
	for _, k := range list.Items {
		ids = append(ids, k.ID)
	}
	// Ids made within one millisecond list in any order.
	want := []string{test.ID, adminTest.ID, next.ID, imported.Imported[0].ID}
	slices.Sort(ids)
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("test keys = %v, want %v", ids, want)
	}
	_, err = svc.Keys(ctx, keyward.KeyFilter{Environment: "no such"}, keyward.Page{})
	wantCode(t, err, keyward.EINVALID)
	// A user sees only its own keys of the environment.
	userCtx := keyward.NewContextWithIdentity(t.Context(), keyward.IdentityOf(&live.Key, ""))
	if got := must(svc.Keys(userCtx, keyward.KeyFilter{Environment: "live"}, keyward.Page{})); len(got.Items) != 1 || got.Items[0].ID != live.ID {
		t.Errorf("the user's live keys = %d keys, want only %s", len(got.Items), live.ID)
	}
}

// hexDigest is the SHA-256 hex digest of raw, as an import names a key.
func hexDigest(raw string) string {
	d := keyward.DigestOf(raw)
	return hex.EncodeToString(d[:])
}
