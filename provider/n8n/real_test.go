package n8n

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/provider"
	"github.com/keyward/keyward/provider/providertest"
)

// TestRealN8n runs the provider against a real n8n, one for all its
// subtests (a fresh start takes about 8 s). n8n allows 5 logins per minute
// per email: the subtests share one provider, which logs in once, and
// only the wrong-password subtest adds a login.
func TestRealN8n(t *testing.T) {
	n := providertest.StartN8n(t)
	p, err := New(n.Connection(0))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	t.Run("Check", func(t *testing.T) {
		if err := p.Check(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("CheckWrongPassword", func(t *testing.T) {
		c := n.Connection(0)
		c.Password = keyward.Secret(n.Password + "-wrong")
		bad, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		err = bad.Check(ctx)
		wantCode(t, err, keyward.EUNAUTHORIZED)
		if msg := keyward.ErrorMessage(err); !strings.Contains(msg, "refused the login of "+n.Email) || strings.Contains(msg, n.Password) {
			t.Fatalf("message %q", msg)
		}
	})

	t.Run("NotN8n", func(t *testing.T) {
		// Gitea's or any other server's URL given by mistake.
		srv := httptest.NewServer(http.NotFoundHandler())
		defer srv.Close()
		other, err := New(provider.Connection{BaseURL: srv.URL, Username: n.Email, Password: keyward.Secret(n.Password)})
		if err != nil {
			t.Fatal(err)
		}
		wantCode(t, other.Check(ctx), keyward.EUPSTREAM)
	})

	var created *provider.Created
	t.Run("CreateVerifyList", func(t *testing.T) {
		exp := time.Now().Add(24 * time.Hour).Truncate(time.Second)
		created, err = p.Create(ctx, provider.NewToken{Name: "keyward-ci", Scopes: []string{"workflow:read", "workflow:list"}, ExpiresAt: &exp})
		if err != nil {
			t.Fatal(err)
		}
		if created.ExternalID == "" || created.Secret.Reveal() == "" || created.Name != "keyward-ci" || created.User != n.Email {
			t.Fatalf("created %+v", created.Token)
		}
		if created.ExpiresAt == nil || !created.ExpiresAt.Equal(exp) {
			t.Fatalf("created expiring %v, want %v", created.ExpiresAt, exp)
		}
		if !strings.HasSuffix(created.Secret.Reveal(), created.Hint) || len(created.Hint) != 4 {
			t.Fatalf("hint %q is not the key's end", created.Hint)
		}
		// n8n without a license for scopes grants every scope of the
		// owner's role; with one, those asked for. Either way these.
		for _, s := range []string{"workflow:read", "workflow:list"} {
			if !slices.Contains(created.Scopes, s) {
				t.Fatalf("created with scopes %v, want %s among them", created.Scopes, s)
			}
		}

		id, err := p.Verify(ctx, created.Secret)
		if err != nil {
			t.Fatal(err)
		}
		if id.User != n.Email {
			t.Fatalf("verified as %q, want %q", id.User, n.Email)
		}

		tokens, err := p.List(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(tokens, func(tok provider.Token) bool { return tok.ExternalID == created.ExternalID })
		if i < 0 {
			t.Fatalf("created key %s not listed: %+v", created.ExternalID, tokens)
		}
		got := tokens[i]
		if got.Name != "keyward-ci" || got.Hint != created.Hint || got.ExpiresAt == nil || !got.ExpiresAt.Equal(exp) || got.CreatedAt.IsZero() {
			t.Fatalf("listed %+v", got)
		}
	})
	if created == nil {
		t.FailNow()
	}

	t.Run("DuplicateLabel", func(t *testing.T) {
		_, err := p.Create(ctx, provider.NewToken{Name: "keyward-ci", Scopes: []string{"workflow:read"}})
		wantCode(t, err, keyward.ECONFLICT)
		if msg := keyward.ErrorMessage(err); strings.Contains(msg, "500") {
			t.Fatalf("n8n's 500 reached the caller: %q", msg)
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		for name, nt := range map[string]provider.NewToken{
			"unknown scope":  {Name: "bad-scope", Scopes: []string{"workflow:fly"}},
			"no scope":       {Name: "no-scope"},
			"malformed":      {Name: "malformed", Scopes: []string{"workflow"}},
			"empty label":    {Name: "", Scopes: []string{"workflow:read"}},
			"long label":     {Name: strings.Repeat("x", 51), Scopes: []string{"workflow:read"}},
			"expiry in past": {Name: "past", Scopes: []string{"workflow:read"}, ExpiresAt: ptr(time.Now().Add(-time.Minute))},
		} {
			_, err := p.Create(ctx, nt)
			if keyward.ErrorCode(err) != keyward.EINVALID {
				t.Errorf("%s: error %v, want code %s", name, err, keyward.EINVALID)
			}
		}
	})

	t.Run("Revoke", func(t *testing.T) {
		if err := p.Revoke(ctx, "", created.ExternalID); err != nil {
			t.Fatal(err)
		}
		_, err := p.Verify(ctx, created.Secret)
		wantCode(t, err, keyward.EUNAUTHORIZED)
		wantCode(t, p.Revoke(ctx, "", created.ExternalID), keyward.ENOTFOUND)
		tokens, err := p.List(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(tokens, func(tok provider.Token) bool { return tok.ExternalID == created.ExternalID }) {
			t.Fatalf("revoked key still listed")
		}
	})

	t.Run("VerifyGarbage", func(t *testing.T) {
		_, err := p.Verify(ctx, "not-an-n8n-key")
		wantCode(t, err, keyward.EUNAUTHORIZED)
	})

	t.Run("Expired", func(t *testing.T) {
		// n8n refuses an expiry that is not in the future, and counts
		// in whole seconds: the nearest is the next second. The key is
		// then polled until n8n refuses it (within a second or two),
		// with a deadline, never a fixed sleep.
		exp := time.Now().Add(time.Second)
		c, err := p.Create(ctx, provider.NewToken{Name: "expiring", Scopes: []string{"workflow:read"}, ExpiresAt: &exp})
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			_, err := p.Verify(ctx, c.Secret)
			if keyward.ErrorCode(err) == keyward.EUNAUTHORIZED {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("n8n still accepts a key that expired at %v", c.ExpiresAt)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := p.Revoke(ctx, "", c.ExternalID); err != nil {
			t.Fatal(err)
		}
	})
}

func ptr[T any](v T) *T { return &v }
