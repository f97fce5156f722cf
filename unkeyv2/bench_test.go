package unkeyv2

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/admin"
	"github.com/keyward/keyward/credits"
	"github.com/keyward/keyward/httpapi"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/verify"
)

// BenchmarkVerify compares keys.verifyKey with keyward's own
// /v1/keys/verify for the same valid key, in process, over the same
// engine and services: the target is v2 at least 90% of v1's
// throughput (compare the ns/op of the two sub-benchmarks).
func BenchmarkVerify(b *testing.B) {
	store := keywardtest.NewSQLiteStore(b)
	hasher := keywardtest.NewHasher(b)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ledger := credits.NewStoreLedger(store)
	engine, err := verify.New(verify.Config{Store: store, Hasher: hasher, Credits: ledger, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { engine.Close(context.Background()) })
	svc := admin.New(admin.Config{Store: store, Hasher: hasher, Verifier: engine, Credits: ledger, Sealer: keywardtest.NewKeyring(b), Logger: log})
	secret, rootKey, err := svc.Keys.Bootstrap(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	root := secret.Reveal()
	ctx := keyward.NewContextWithIdentity(b.Context(), keyward.IdentityOf(rootKey, ""))
	acc, err := svc.Tenancy.CreateAccount(ctx, keyward.AccountCreate{Name: "acme"})
	if err != nil {
		b.Fatal(err)
	}
	u, err := svc.Tenancy.CreateUser(ctx, acc.ID, keyward.UserCreate{Name: "u", ExternalID: "u1"})
	if err != nil {
		b.Fatal(err)
	}
	k, err := svc.Keys.CreateKey(ctx, keyward.KeyCreate{AccountID: acc.ID, UserID: u.ID, Role: keyward.RoleUser, Permissions: []string{"docs.read"}})
	if err != nil {
		b.Fatal(err)
	}
	v1 := httpapi.New(httpapi.Config{
		Services: httpapi.Services{Tenancy: svc.Tenancy, Roles: svc.Roles, Keys: svc.Keys, Credentials: svc.Credentials, Webhooks: svc.Webhooks, Audit: svc.Audit, Abuse: svc.Abuse},
		Engine:   engine, Logger: log,
	})
	// As the server wires it: counted in v1's metrics.
	srv := New(Config{Tenancy: svc.Tenancy, Keys: svc.Keys, Engine: engine, Denied: svc.Audit, Logger: log})
	v2 := v1.Instrument(srv, srv.Routes(), srv.Route)
	for _, c := range []struct {
		name, path, body string
		h                http.Handler
	}{
		{"v1", "/v1/keys/verify", `{"key": "` + k.Secret + `", "permissions": ["docs.read"]}`, v1},
		{"v2", "/v2/keys.verifyKey", `{"key": "` + k.Secret + `", "permissions": "docs.read"}`, v2},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, c.path, strings.NewReader(c.body))
				req.Header.Set("Authorization", "Bearer "+root)
				w := httptest.NewRecorder()
				c.h.ServeHTTP(w, req)
				if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"valid":true`) {
					b.Fatalf("%s: %d %s", c.path, w.Code, w.Body)
				}
			}
		})
	}
}
