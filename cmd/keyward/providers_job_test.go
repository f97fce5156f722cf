package main

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/admin"
	"github.com/keyward/keyward/internal/server"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/lifecycle"
	"github.com/keyward/keyward/provider"
	"github.com/keyward/keyward/provider/providertest"
)

// TestCredentialExpiryJob creates credentials at a real Gitea and a real
// n8n through the admin service, moves an injected clock past their expiry
// and runs the lifecycle jobs: each is revoked at its provider (the token
// is refused there), recorded as expired and announced once; a rotated one
// is revoked when its grace ends.
func TestCredentialExpiryJob(t *testing.T) {
	g := providertest.StartGitea(t)
	n := providertest.StartN8n(t)
	ctx := t.Context()
	var (
		mu  sync.Mutex
		now = time.Now().UTC().Truncate(time.Second)
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	quiet := slog.New(slog.DiscardHandler)
	store := keywardtest.NewSQLiteStore(t)
	svc := admin.New(admin.Config{Store: store, Hasher: keywardtest.NewHasher(t), Sealer: keywardtest.NewKeyring(t),
		Providers: (&server.Core{}).OpenProvider, Now: clock, Logger: quiet})
	jobs, err := lifecycle.New(lifecycle.Config{Store: store, Actions: svc.Jobs(), Now: clock, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	_, rootKey, err := svc.Keys.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	root := keyward.NewContextWithIdentity(ctx, keyward.IdentityOf(rootKey, ""))
	acc, err := svc.Tenancy.CreateAccount(root, keyward.AccountCreate{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	gc, err := svc.Credentials.CreateProviderConnection(root, keyward.NewProviderConnection{AccountID: acc.ID, Kind: provider.KindGitea,
		Name: "git", BaseURL: g.URL, Username: g.Admin.Name, Password: g.Admin.Password})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := svc.Credentials.CreateProviderConnection(root, keyward.NewProviderConnection{AccountID: acc.ID, Kind: provider.KindN8n,
		Name: "automation", BaseURL: n.URL, Username: n.Email, Password: n.Password})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Webhooks.CreateWebhookEndpoint(root, keyward.NewWebhookEndpoint{URL: "https://hooks.example.com/keyward"}); err != nil {
		t.Fatal(err)
	}
	in := func(d time.Duration) *time.Time { at := clock().Add(d); return &at }
	gitToken, err := svc.Credentials.CreateCredential(root, keyward.NewCredential{ProviderID: gc.ID, User: g.User.Name, Name: "ci",
		Scopes: []string{"read:repository", "read:user"}, ExpiresAt: in(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	n8nKey, err := svc.Credentials.CreateCredential(root, keyward.NewCredential{ProviderID: nc.ID, Name: "ci",
		Scopes: []string{"workflow:list"}, ExpiresAt: in(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	valid := func(connID, token string) bool {
		t.Helper()
		v, err := svc.Credentials.VerifyCredential(root, connID, token)
		if err != nil {
			t.Fatalf("verify at %s: %v", connID, err)
		}
		return v.Valid
	}
	if !valid(gc.ID, gitToken.Secret) || !valid(nc.ID, n8nKey.Secret) {
		t.Fatal("a new credential does not verify at its provider")
	}
	// A rotation with a grace: both tokens work until the grace ends,
	// then the job revokes the old one.
	deploy, err := svc.Credentials.CreateCredential(root, keyward.NewCredential{ProviderID: gc.ID, User: g.User.Name, Name: "deploy",
		Scopes: []string{"read:user"}})
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := svc.Credentials.RotateCredential(root, deploy.Credential.ID, 90*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !valid(gc.ID, deploy.Secret) || !valid(gc.ID, rotated.Secret) {
		t.Fatal("during the grace both tokens must work")
	}

	run := func() {
		t.Helper()
		if _, err := jobs.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	run() // nothing due yet
	if !valid(gc.ID, gitToken.Secret) {
		t.Fatal("the job revoked a credential before its expiry")
	}
	mu.Lock()
	now = now.Add(2 * time.Hour) // past the Gitea token's expiry only
	mu.Unlock()
	run()
	run() // a second run changes nothing
	if valid(gc.ID, gitToken.Secret) {
		t.Fatal("the expired Gitea token still works at Gitea")
	}
	if valid(gc.ID, deploy.Secret) || !valid(gc.ID, rotated.Secret) {
		t.Fatal("after the grace the job must revoke the old token and keep the new one")
	}
	if c, err := svc.Credentials.Credential(root, deploy.Credential.ID); err != nil || c.Status != keyward.CredentialRevoked {
		t.Fatalf("the rotated credential after its grace: %+v, %v; want revoked", c, err)
	}
	if !valid(nc.ID, n8nKey.Secret) {
		t.Fatal("the n8n key was revoked before its expiry")
	}
	mu.Lock()
	now = now.Add(24 * time.Hour)
	mu.Unlock()
	run()
	if valid(nc.ID, n8nKey.Secret) {
		t.Fatal("the expired n8n key still works at n8n")
	}
	for _, id := range []string{gitToken.Credential.ID, n8nKey.Credential.ID} {
		c, err := svc.Credentials.Credential(root, id)
		if err != nil || c.Status != keyward.CredentialExpired || c.RevokedAt == nil {
			t.Fatalf("credential %s after the job: %+v, %v; want expired", id, c, err)
		}
	}
	l, err := svc.Audit.AuditEntries(root, keyward.AuditFilter{Action: "credential.expire"}, keyward.Page{})
	if err != nil || len(l.Items) != 2 || l.Items[0].Actor.System != admin.SystemActor {
		t.Fatalf("credential.expire audit entries: %+v, %v; want 2 by keyward itself", l, err)
	}
	// Announced once each, through a webhook endpoint's outbox.
	if _, err := store.DispatchEvents(ctx, clock(), 1000); err != nil {
		t.Fatal(err)
	}
	ds, err := store.ClaimDeliveries(ctx, clock(), time.Hour, 1000)
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]int{}
	for _, d := range ds {
		types[d.EventType]++
	}
	if types[keyward.EventCredentialCreated] != 3 || types[keyward.EventCredentialExpired] != 2 ||
		types[keyward.EventCredentialRotated] != 1 || types[keyward.EventCredentialRevoked] != 1 {
		t.Fatalf("events announced: %v, want 3 credential.created, 2 .expired, 1 .rotated, 1 .revoked", types)
	}
}
