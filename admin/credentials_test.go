package admin_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/admin"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/provider"
)

// failingStore is a store whose CreateCredential fails while fail is set:
// the one fault of a credential's creation a real store cannot be made to
// show on demand (the provider created the token, the record is refused).
type failingStore struct {
	keyward.Store
	mu   sync.Mutex
	fail bool
}

func (s *failingStore) CreateCredential(ctx context.Context, ch keyward.Change, c *keyward.ManagedCredential) error {
	s.mu.Lock()
	fail := s.fail
	s.mu.Unlock()
	if fail && c.Status == keyward.CredentialActive {
		return keyward.Errorf(keyward.EUNAVAILABLE, "database unavailable")
	}
	return s.Store.CreateCredential(ctx, keyward.Change{}, c)
}

// tokenSystem is a provider that records what it holds; revokeFails makes
// Revoke fail.
type tokenSystem struct {
	mu          sync.Mutex
	next        int
	tokens      map[string]bool
	revokeFails bool
}

func (p *tokenSystem) Kind() string                                           { return provider.KindGitea }
func (p *tokenSystem) Check(context.Context) error                            { return nil }
func (p *tokenSystem) List(context.Context, string) ([]provider.Token, error) { return nil, nil }
func (p *tokenSystem) Verify(context.Context, keyward.Secret) (*provider.Identity, error) {
	return &provider.Identity{}, nil
}

func (p *tokenSystem) Create(_ context.Context, t provider.NewToken) (*provider.Created, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next++
	id := string(rune('0' + p.next))
	p.tokens[id] = true
	return &provider.Created{Token: provider.Token{ExternalID: id, Name: t.Name, User: t.User}, Secret: "token-secret-" + keyward.Secret(id)}, nil
}

func (p *tokenSystem) Revoke(_ context.Context, _, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.revokeFails {
		return keyward.Errorf(keyward.EUPSTREAM, "gitea unreachable")
	}
	delete(p.tokens, id)
	return nil
}

// TestCreateCredentialLeavesNoHalfState: when the record of a token created
// at the provider cannot be written, the token is revoked there again; when
// that fails too, it is recorded as orphaned and the error says so.
func TestCreateCredentialLeavesNoHalfState(t *testing.T) {
	store := &failingStore{Store: keywardtest.NewSQLiteStore(t)}
	sys := &tokenSystem{tokens: map[string]bool{}}
	svc := admin.New(admin.Config{Store: store, Hasher: keywardtest.NewHasher(t), Sealer: keywardtest.NewKeyring(t),
		Providers: func(string, provider.Connection) (provider.Provider, error) { return sys, nil }})
	_, rootKey, err := svc.Keys.Bootstrap(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	root := keyward.NewContextWithIdentity(t.Context(), keyward.IdentityOf(rootKey, ""))
	acc := must(svc.Tenancy.CreateAccount(root, keyward.AccountCreate{Name: "acme"}))
	conn := must(svc.Credentials.CreateProviderConnection(root, keyward.NewProviderConnection{AccountID: acc.ID, Kind: provider.KindGitea,
		Name: "git", BaseURL: "https://git.example.com", Username: "admin", Password: "pw"}))
	create := func() error {
		_, err := svc.Credentials.CreateCredential(root, keyward.NewCredential{ProviderID: conn.ID, User: "alice", Name: "ci",
			ExpiresAt: ptrTime(time.Now().Add(time.Hour))})
		return err
	}

	store.fail = true
	err = create()
	if keyward.ErrorCode(err) != keyward.EUNAVAILABLE || len(sys.tokens) != 0 {
		t.Fatalf("record refused: err %v, tokens left at the provider %v; want the error and none left", err, sys.tokens)
	}

	sys.revokeFails = true
	err = create()
	if keyward.ErrorCode(err) != keyward.EUNAVAILABLE || !strings.Contains(keyward.ErrorMessage(err), "orphaned") || len(sys.tokens) != 1 {
		t.Fatalf("record and revoke refused: err %v, tokens %v; want an error naming the orphan", err, sys.tokens)
	}
	l := must(svc.Credentials.Credentials(root, keyward.CredentialFilter{Status: keyward.CredentialOrphaned}, keyward.Page{}))
	if len(l.Items) != 1 || !sys.tokens[l.Items[0].ExternalID] {
		t.Fatalf("orphaned records: %+v, want the one token left at the provider", l.Items)
	}
}

func ptrTime(t time.Time) *time.Time { return &t }

func TestRotatedName(t *testing.T) {
	at := time.Date(2026, 11, 23, 16, 38, 5, 123_000_000, time.UTC)
	for _, c := range []struct{ name, want string }{
		{"ci", "ci-rot20261123163805123"},
		{"ci-rot20261123101010999", "ci-rot20261123163805123"}, // a rotation of a rotation keeps the base name
		{strings.Repeat("n", 49), strings.Repeat("n", 29) + "-rot20261123163805123"},
	} {
		got := admin.RotatedName(c.name, at)
		if got != c.want || len([]rune(got)) > 50 {
			t.Errorf("RotatedName(%q) = %q, want %q (at most 50 characters)", c.name, got, c.want)
		}
	}
	if admin.RotatedName("ci", at) == admin.RotatedName("ci", at.Add(time.Millisecond)) {
		t.Error("two rotations a millisecond apart got the same name")
	}
}
