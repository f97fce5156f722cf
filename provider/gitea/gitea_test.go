package gitea_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/provider"
	"github.com/keyward/keyward/provider/gitea"
	"github.com/keyward/keyward/provider/providertest"
)

// connect returns the provider of g as user u.
func connect(t *testing.T, g *providertest.Gitea, u providertest.GiteaUser) *gitea.Provider {
	t.Helper()
	p, err := gitea.New(g.Connection(u, 0))
	if err != nil {
		t.Fatalf("gitea.New: %v", err)
	}
	return p
}

// wantCode fails the test unless err has code; it logs the message, which
// is what keyward shows.
func wantCode(t *testing.T, what string, err error, code string, mentions ...string) {
	t.Helper()
	if got := keyward.ErrorCode(err); got != code {
		t.Fatalf("%s: error %v (code %q), want code %q", what, err, got, code)
	}
	msg := keyward.ErrorMessage(err)
	for _, m := range mentions {
		if !strings.Contains(msg, m) {
			t.Errorf("%s: message %q does not mention %q", what, msg, m)
		}
	}
	t.Logf("%s: %s: %s", what, code, msg)
}

func TestGitea(t *testing.T) {
	g := providertest.StartGitea(t)
	ctx := context.Background()
	admin := connect(t, g, g.Admin)

	t.Run("CheckOK", func(t *testing.T) {
		if err := admin.Check(ctx); err != nil {
			t.Fatalf("Check: %v", err)
		}
	})

	t.Run("CheckWrongPassword", func(t *testing.T) {
		p := connect(t, g, providertest.GiteaUser{Name: g.Admin.Name, Password: "wrong-password"})
		wantCode(t, "Check", p.Check(ctx), keyward.EUNAUTHORIZED, "refused the credentials of keyward-admin", g.URL)
	})

	t.Run("CheckNotAdmin", func(t *testing.T) {
		p := connect(t, g, g.User)
		wantCode(t, "Check", p.Check(ctx), keyward.EFORBIDDEN, "alice", "not an admin", "only its own tokens")
	})

	t.Run("CheckNotGitea", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		t.Cleanup(srv.Close)
		p, err := gitea.New(provider.Connection{BaseURL: srv.URL, Username: "admin", Password: "pw"})
		if err != nil {
			t.Fatal(err)
		}
		wantCode(t, "Check", p.Check(ctx), keyward.EUPSTREAM, "does not look like Gitea")
	})

	t.Run("Lifecycle", func(t *testing.T) {
		created, err := admin.Create(ctx, provider.NewToken{User: "alice", Name: "ci", Scopes: []string{"read:repository"}})
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		secret := created.Secret.Reveal()
		if created.ExternalID == "" || created.Name != "ci" || created.User != "alice" || len(secret) < 8 {
			t.Fatalf("Create = %+v (secret of %d characters)", created.Token, len(secret))
		}
		if want := secret[len(secret)-8:]; created.Hint != want {
			t.Errorf("Create: Hint %q, want the token's last eight characters %q", created.Hint, want)
		}

		// Gitea accepts the token, but answers GET /api/v1/user with 403
		// (required scope read:user) to a token without read:user: who
		// it acts as stays unknown.
		id, err := admin.Verify(ctx, created.Secret)
		if err != nil || id.User != "" {
			t.Fatalf("Verify of a read:repository token = %+v, %v; want accepted, user unknown", id, err)
		}

		tokens, err := admin.List(ctx, "alice")
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		i := slices.IndexFunc(tokens, func(tok provider.Token) bool { return tok.ExternalID == created.ExternalID })
		if i < 0 {
			t.Fatalf("List = %+v, want token %s", tokens, created.ExternalID)
		}
		listed := tokens[i]
		if listed.Name != "ci" || listed.User != "alice" || listed.Hint != secret[len(secret)-8:] ||
			!slices.Equal(listed.Scopes, []string{"read:repository"}) || listed.CreatedAt.IsZero() {
			t.Errorf("listed %+v, want name ci, user alice, hint %q, scopes [read:repository], a creation time", listed, secret[len(secret)-8:])
		}

		_, err = admin.Create(ctx, provider.NewToken{User: "alice", Name: "ci", Scopes: []string{"read:repository"}})
		wantCode(t, "Create with a name taken", err, keyward.ECONFLICT, `"ci"`, "alice")

		if err := admin.Revoke(ctx, "alice", created.ExternalID); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		_, err = admin.Verify(ctx, created.Secret)
		wantCode(t, "Verify after Revoke", err, keyward.EUNAUTHORIZED, "refused the token")
		wantCode(t, "Revoke again", admin.Revoke(ctx, "alice", created.ExternalID), keyward.ENOTFOUND, "no token "+created.ExternalID)
	})

	t.Run("VerifyTellsUserWithReadUser", func(t *testing.T) {
		created, err := admin.Create(ctx, provider.NewToken{User: "alice", Name: "who", Scopes: []string{"read:repository", "read:user"}})
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		id, err := admin.Verify(ctx, created.Secret)
		if err != nil || id.User != "alice" {
			t.Fatalf("Verify = %+v, %v; want alice", id, err)
		}
	})

	t.Run("OwnTokens", func(t *testing.T) {
		// User "" is the connection's own, for an admin and for a user
		// who is not one.
		for _, u := range []providertest.GiteaUser{g.Admin, g.User} {
			p := connect(t, g, u)
			created, err := p.Create(ctx, provider.NewToken{Name: "own", Scopes: []string{"read:user"}})
			if err != nil {
				t.Fatalf("Create as %s: %v", u.Name, err)
			}
			if created.User != u.Name {
				t.Errorf("Create as %s: User %q", u.Name, created.User)
			}
			if id, err := p.Verify(ctx, created.Secret); err != nil || id.User != u.Name {
				t.Errorf("Verify = %+v, %v; want %s", id, err, u.Name)
			}
			if err := p.Revoke(ctx, "", created.ExternalID); err != nil {
				t.Errorf("Revoke as %s: %v", u.Name, err)
			}
		}
	})

	t.Run("NotAdminOtherUser", func(t *testing.T) {
		p := connect(t, g, g.User)
		_, err := p.Create(ctx, provider.NewToken{User: g.Admin.Name, Name: "x", Scopes: []string{"read:user"}})
		wantCode(t, "Create for another user as alice", err, keyward.EFORBIDDEN, "alice", g.Admin.Name)
		_, err = p.List(ctx, g.Admin.Name)
		wantCode(t, "List of another user as alice", err, keyward.EFORBIDDEN)
	})

	t.Run("InvalidScope", func(t *testing.T) {
		_, err := admin.Create(ctx, provider.NewToken{User: "alice", Name: "bad", Scopes: []string{"read:nothing"}})
		wantCode(t, "Create with an invalid scope", err, keyward.EINVALID, "read:nothing")
		_, err = admin.Create(ctx, provider.NewToken{User: "alice", Name: "none"})
		wantCode(t, "Create without scopes", err, keyward.EINVALID, "scope")
		_, err = admin.Create(ctx, provider.NewToken{User: "alice", Scopes: []string{"read:user"}})
		wantCode(t, "Create without a name", err, keyward.EINVALID, "without a name")
	})

	t.Run("UnknownUser", func(t *testing.T) {
		_, err := admin.Create(ctx, provider.NewToken{User: "nobody", Name: "x", Scopes: []string{"read:user"}})
		wantCode(t, "Create for an unknown user", err, keyward.ENOTFOUND, "gitea user nobody not found")
		_, err = admin.List(ctx, "nobody")
		wantCode(t, "List of an unknown user", err, keyward.ENOTFOUND, "gitea user nobody not found")
		wantCode(t, "Revoke of an unknown user", admin.Revoke(ctx, "nobody", "1"), keyward.ENOTFOUND, "gitea user nobody not found")
	})

	t.Run("RevokeBadID", func(t *testing.T) {
		// Gitea would take a name for the id: refuse before asking.
		wantCode(t, "Revoke by name", admin.Revoke(ctx, "alice", "ci"), keyward.EINVALID)
	})

	t.Run("ListPages", func(t *testing.T) {
		u := g.CreateUser(t, "many", false)
		const n = 57 // more than a page of 50
		want := make([]string, n)
		for i := range n {
			c, err := admin.Create(ctx, provider.NewToken{User: u.Name, Name: fmt.Sprintf("t%02d", i), Scopes: []string{"read:user"}})
			if err != nil {
				t.Fatalf("Create %d: %v", i, err)
			}
			want[i] = c.ExternalID
		}
		tokens, err := admin.List(ctx, u.Name)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		var got []string
		for _, tok := range tokens {
			got = append(got, tok.ExternalID)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("List gave %d tokens %v, want %d %v", len(got), got, len(want), want)
		}
	})
}

func TestNew(t *testing.T) {
	for _, c := range []provider.Connection{
		{BaseURL: "git.example.com", Username: "admin", Password: "pw"},
		{BaseURL: "https://git.example.com", Password: "pw"},
		{BaseURL: "https://git.example.com", Username: "admin"},
	} {
		_, err := gitea.New(c)
		wantCode(t, fmt.Sprintf("New(%s, %q)", c.BaseURL, c.Username), err, keyward.EINVALID)
	}
}

func TestCheckUnreachable(t *testing.T) {
	// A port that was free a moment ago: nothing listens there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	l.Close()
	p, err := gitea.New(provider.Connection{BaseURL: url, Username: "admin", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, "Check", p.Check(context.Background()), keyward.EUPSTREAM, "cannot reach gitea", url)
}

func TestCheckHangs(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // before srv.Close, which waits for handlers
	p, err := gitea.New(provider.Connection{BaseURL: srv.URL, Username: "admin", Password: "pw", Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, "Check", p.Check(context.Background()), keyward.EUPSTREAMTIMEOUT, "did not answer", srv.URL)
}

// TestCheckSignInRequired is a Gitea with REQUIRE_SIGNIN_VIEW, which
// answers GET /api/v1/version only to a signed-in user (as Gitea 1.26
// does: 403 and a JSON message to strangers).
func TestCheckSignInRequired(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		u, pw, ok := r.BasicAuth()
		switch {
		case !ok:
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"message":"Only signed in user is allowed to call APIs."}`)
		case u != "admin" || pw != "pw":
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"message":"invalid username, password or token"}`)
		case r.URL.Path == "/api/v1/version":
			fmt.Fprint(w, `{"version":"1.26.4"}`)
		case r.URL.Path == "/api/v1/user":
			fmt.Fprint(w, `{"login":"admin","is_admin":true}`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		password string
		code     string
	}{{"pw", ""}, {"wrong", keyward.EUNAUTHORIZED}} {
		p, err := gitea.New(provider.Connection{BaseURL: srv.URL, Username: "admin", Password: keyward.Secret(tc.password)})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Check(context.Background()); keyward.ErrorCode(err) != tc.code {
			t.Errorf("Check with password %q: %v, want code %q", tc.password, err, tc.code)
		}
	}
}

func TestVerifyMalformed(t *testing.T) {
	// Refused before anything is sent: nothing listens at this URL.
	p, err := gitea.New(provider.Connection{BaseURL: "http://127.0.0.1:1", Username: "admin", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []keyward.Secret{"", "abc def", "abc\r\nX-Evil: 1"} {
		_, err := p.Verify(context.Background(), s)
		wantCode(t, "Verify", err, keyward.EINVALID)
		if strings.Contains(err.Error(), "abc") {
			t.Errorf("Verify: error %q quotes the token", err)
		}
	}
}
