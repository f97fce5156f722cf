package admin_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/admin"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/postgres"
)

// portalFixture is an account with an admin key holding notes:*, a user
// with an external id and another user with a key of its own.
type portalFixture struct {
	acc          *keyward.Account
	user, other  *keyward.User
	adminKey     *keyward.CreatedKey
	otherUserKey *keyward.CreatedKey
}

func newPortalFixture(t *testing.T, e *env) portalFixture {
	t.Helper()
	a := must(e.svc.Tenancy.CreateAccount(e.root, keyward.AccountCreate{Name: "shop"}))
	u := must(e.svc.Tenancy.CreateUser(e.root, a.ID, keyward.UserCreate{Name: "alice", ExternalID: "cust-1"}))
	o := must(e.svc.Tenancy.CreateUser(e.root, a.ID, keyward.UserCreate{Name: "bob", ExternalID: "cust-2"}))
	adm := must(e.svc.Keys.CreateKey(e.root, keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin, Permissions: []string{"notes:*"}}))
	ok := must(e.svc.Keys.CreateKey(e.root, keyward.KeyCreate{AccountID: a.ID, UserID: o.ID, Name: "bob's", Permissions: []string{"notes:read"}}))
	return portalFixture{acc: a, user: u, other: o, adminKey: adm, otherUserKey: ok}
}

func (f portalFixture) grant() keyward.PortalSessionCreate {
	return keyward.PortalSessionCreate{ExternalID: "cust-1", Permissions: []string{"notes:read", "notes:write"}, Environments: []string{"test", "live"}, ReturnURL: "https://shop.example/account"}
}

func TestPortalSessionRefusesBadGrants(t *testing.T) {
	e := newEnv(t)
	f := newPortalFixture(t, e)
	ctx := as(t, &f.adminKey.Key)
	bad := func(mod func(*keyward.PortalSessionCreate), code string) {
		t.Helper()
		in := f.grant()
		mod(&in)
		_, err := e.svc.Portal.CreatePortalSession(ctx, in)
		wantCode(t, err, code)
	}
	bad(func(c *keyward.PortalSessionCreate) { c.ExternalID = "nobody" }, keyward.ENOTFOUND)
	bad(func(c *keyward.PortalSessionCreate) { c.ExternalID = "" }, keyward.EINVALID)
	bad(func(c *keyward.PortalSessionCreate) { c.Permissions = []string{"billing:read"} }, keyward.EFORBIDDEN)
	bad(func(c *keyward.PortalSessionCreate) { c.Permissions = []string{"*"} }, keyward.EFORBIDDEN)
	bad(func(c *keyward.PortalSessionCreate) { c.Environments = []string{"Prod!"} }, keyward.EINVALID)
	for _, u := range []string{"", "/account", "//evil.example/x", "javascript:alert(1)", "ftp://shop.example/", "https://user:pw@shop.example/", "https:///path", "https://shop.example/\\evil"} {
		bad(func(c *keyward.PortalSessionCreate) { c.ReturnURL = u }, keyward.EINVALID)
	}
	bad(func(c *keyward.PortalSessionCreate) { c.LinkTTL = keyward.Duration(2 * time.Hour) }, keyward.EINVALID)
	bad(func(c *keyward.PortalSessionCreate) { c.SessionTTL = keyward.Duration(time.Second) }, keyward.EINVALID)
	// Another account's admin finds no such account; a user key may not.
	_, _, otherAdmin, userKey := e.tenant(t, "other", "notes:*")
	_, err := e.svc.Portal.CreatePortalSession(as(t, &otherAdmin.Key), keyward.PortalSessionCreate{AccountID: f.acc.ID, ExternalID: "cust-1", ReturnURL: "https://shop.example/"})
	wantCode(t, err, keyward.ENOTFOUND)
	_, err = e.svc.Portal.CreatePortalSession(as(t, &userKey.Key), keyward.PortalSessionCreate{ExternalID: "cust-1", ReturnURL: "https://shop.example/"})
	wantCode(t, err, keyward.EFORBIDDEN)
	// What must not be refused: root naming the account, http to a local
	// service, a port, a query.
	_, err = e.svc.Portal.CreatePortalSession(e.root, keyward.PortalSessionCreate{AccountID: f.acc.ID, ExternalID: "cust-1", ReturnURL: "http://localhost:3000/keys?tab=api#top"})
	if err != nil {
		t.Fatalf("root: %v", err)
	}
}

func TestPortalLinkWorksOnceAndBeforeItExpires(t *testing.T) {
	onEachStore(t, func(t *testing.T, e *env) {
		f := newPortalFixture(t, e)
		ctx := as(t, &f.adminKey.Key)
		link := must(e.svc.Portal.CreatePortalSession(ctx, f.grant()))
		token, ok := strings.CutPrefix(link.URL, "/portal/link/")
		if !ok || !strings.HasPrefix(token, "kwp_") || link.UserID != f.user.ID || !slices.Equal(link.Environments, []string{"live", "test"}) {
			t.Fatalf("link = %+v", link)
		}
		cookie, p, err := e.svc.Portal.StartPortalSession(t.Context(), token)
		if err != nil || cookie == "" || p.ID != link.ID || p.ExpiresAt == nil || !p.ExpiresAt.Equal(e.now.Add(time.Hour)) {
			t.Fatalf("start = %q, %+v, %v", cookie, p, err)
		}
		_, _, err = e.svc.Portal.StartPortalSession(t.Context(), token)
		wantCode(t, err, keyward.ENOTFOUND)
		got, err := e.svc.Portal.PortalSession(t.Context(), cookie)
		if err != nil || got.ID != p.ID {
			t.Fatalf("PortalSession = %+v, %v", got, err)
		}
		_, err = e.svc.Portal.PortalSession(t.Context(), token)
		wantCode(t, err, keyward.EUNAUTHORIZED)

		// An expired link is refused; a session ends after its ttl.
		late := must(e.svc.Portal.CreatePortalSession(ctx, f.grant()))
		e.now = e.now.Add(keyward.DefaultPortalLinkTTL)
		_, _, err = e.svc.Portal.StartPortalSession(t.Context(), strings.TrimPrefix(late.URL, "/portal/link/"))
		wantCode(t, err, keyward.ENOTFOUND)
		e.now = e.now.Add(time.Hour)
		_, err = e.svc.Portal.PortalSession(t.Context(), cookie)
		wantCode(t, err, keyward.EUNAUTHORIZED)

		// Sign-out ends a session at once.
		fresh := must(e.svc.Portal.CreatePortalSession(ctx, f.grant()))
		c2, _ := must2(e.svc.Portal.StartPortalSession(t.Context(), strings.TrimPrefix(fresh.URL, "/portal/link/")))
		must(0, e.svc.Portal.EndPortalSession(t.Context(), c2))
		_, err = e.svc.Portal.PortalSession(t.Context(), c2)
		wantCode(t, err, keyward.EUNAUTHORIZED)

		entries := must(e.svc.Audit.AuditEntries(e.root, keyward.AuditFilter{TargetID: link.ID}, keyward.Page{}))
		var actions []string
		for _, a := range entries.Items {
			actions = append(actions, a.Action+" by "+a.Actor.KeyID)
		}
		if want := []string{"portal_session.create by " + f.adminKey.ID, "portal_session.start by " + link.ID}; !slices.Equal(actions, want) {
			t.Fatalf("audit = %q, want %q", actions, want)
		}
	})
}

// TestPortalSessionLastsWhileItsCreatorKeyIsValid: a session acts within
// the grant of the key that created it, so it ends while that key is
// disabled, and for good once it is revoked; an unused link of that key is
// refused and stays unused. Sessions of other creators go on.
func TestPortalSessionLastsWhileItsCreatorKeyIsValid(t *testing.T) {
	onEachStore(t, func(t *testing.T, e *env) {
		f := newPortalFixture(t, e)
		ctx := as(t, &f.adminKey.Key)
		token := func(l *keyward.PortalLink) string { return strings.TrimPrefix(l.URL, "/portal/link/") }
		cookie, _ := must2(e.svc.Portal.StartPortalSession(t.Context(), token(must(e.svc.Portal.CreatePortalSession(ctx, f.grant())))))
		unused := must(e.svc.Portal.CreatePortalSession(ctx, f.grant()))
		byRoot := f.grant()
		byRoot.AccountID = f.acc.ID
		rootCookie, _ := must2(e.svc.Portal.StartPortalSession(t.Context(), token(must(e.svc.Portal.CreatePortalSession(e.root, byRoot)))))
		live := func(cookie string, want bool) {
			t.Helper()
			_, err := e.svc.Portal.PortalSession(t.Context(), cookie)
			if want && err != nil {
				t.Fatalf("PortalSession: %v, want the session", err)
			}
			if !want {
				wantCode(t, err, keyward.EUNAUTHORIZED)
			}
		}
		live(cookie, true)

		yes, no := true, false
		must(e.svc.Keys.UpdateKey(e.root, f.adminKey.ID, keyward.KeyUpdate{Disabled: &yes}))
		live(cookie, false)
		live(rootCookie, true)
		must(e.svc.Keys.UpdateKey(e.root, f.adminKey.ID, keyward.KeyUpdate{Disabled: &no}))
		live(cookie, true)

		must(e.svc.Keys.RevokeKey(e.root, f.adminKey.ID))
		live(cookie, false)
		_, _, err := e.svc.Portal.StartPortalSession(t.Context(), token(unused))
		wantCode(t, err, keyward.ENOTFOUND)
		live(rootCookie, true)
		entries := must(e.svc.Audit.AuditEntries(e.root, keyward.AuditFilter{TargetID: unused.ID}, keyward.Page{}))
		if len(entries.Items) != 1 || entries.Items[0].Action != "portal_session.create" {
			t.Fatalf("audit of the refused link = %+v, want its creation only", entries.Items)
		}
	})
}

// TestPortalSessionIdleTimeout: a session unused for the idle timeout
// (the default, 30 minutes) has ended for good; one used more often than
// that lasts to its ttl. Uses are written at most about once a minute.
func TestPortalSessionIdleTimeout(t *testing.T) {
	onEachStore(t, func(t *testing.T, e *env) {
		f := newPortalFixture(t, e)
		ctx := as(t, &f.adminKey.Key)
		grant := f.grant()
		grant.SessionTTL = keyward.Duration(2 * time.Hour)
		start := func() string {
			l := must(e.svc.Portal.CreatePortalSession(ctx, grant))
			c, _ := must2(e.svc.Portal.StartPortalSession(t.Context(), strings.TrimPrefix(l.URL, "/portal/link/")))
			return c
		}
		active, idle := start(), start()
		started := e.now
		use := func(cookie string) (*keyward.PortalSession, error) {
			return e.svc.Portal.PortalSession(t.Context(), cookie)
		}
		// Used every 29 minutes, the active one outlives the idle timeout.
		for range 4 {
			e.now = e.now.Add(29 * time.Minute)
			if _, err := use(active); err != nil {
				t.Fatalf("a session used every 29 minutes, at %v: %v", e.now.Sub(started), err)
			}
		}
		// Uses closer together than a minute are not written.
		e.now = e.now.Add(30 * time.Second)
		p, err := use(active)
		if err != nil || !p.LastSeenAt.Equal(started.Add(4*29*time.Minute)) {
			t.Fatalf("a use 30 s after the last = %+v, %v; want last seen still at the last write", p, err)
		}
		// The other, unused since its start, has ended, and stays ended.
		for range 2 {
			_, err = use(idle)
			wantCode(t, err, keyward.EUNAUTHORIZED)
		}
	})
}

// must2 returns the two values, or panics on a set-up error.
func must2[A, B any](a A, b B, err error) (A, B) {
	if err != nil {
		panic(err)
	}
	return a, b
}

func TestPortalCustomerManagesOnlyItsKeysWithinBounds(t *testing.T) {
	e := newEnv(t)
	f := newPortalFixture(t, e)
	link := must(e.svc.Portal.CreatePortalSession(as(t, &f.adminKey.Key), f.grant()))
	_, p := must2(e.svc.Portal.StartPortalSession(t.Context(), strings.TrimPrefix(link.URL, "/portal/link/")))
	ctx := t.Context()
	pt := e.svc.Portal

	k, err := pt.PortalCreateKey(ctx, p, keyward.KeyCreate{Name: "ci", Permissions: []string{"notes:read"}, Environment: "test"})
	if err != nil || k.UserID != f.user.ID || k.Environment != "test" || k.CreatedBy != p.ID || k.Secret == "" {
		t.Fatalf("create = %+v, %v", k, err)
	}
	// Beyond the grant: a permission, an environment, another user, a role.
	_, err = pt.PortalCreateKey(ctx, p, keyward.KeyCreate{Permissions: []string{"notes:delete"}})
	wantCode(t, err, keyward.EFORBIDDEN)
	_, err = pt.PortalCreateKey(ctx, p, keyward.KeyCreate{Environment: "prod"})
	wantCode(t, err, keyward.EFORBIDDEN)
	forged, err := pt.PortalCreateKey(ctx, p, keyward.KeyCreate{UserID: f.other.ID, Role: keyward.RoleAccountAdmin})
	if err != nil || forged.UserID != f.user.ID || forged.Role != keyward.RoleUser {
		t.Fatalf("owner fields are the session's: %+v, %v", forged, err)
	}

	// Only its user's keys, in the granted environments.
	l := must(pt.PortalKeys(ctx, p, keyward.Page{}))
	for _, key := range l.Items {
		if key.UserID != f.user.ID {
			t.Fatalf("lists another user's key %s", key.ID)
		}
	}
	if len(l.Items) != 2 {
		t.Fatalf("listed %d keys, want 2", len(l.Items))
	}
	_, err = pt.PortalRevokeKey(ctx, p, f.otherUserKey.ID)
	wantCode(t, err, keyward.ENOTFOUND)
	_, err = pt.PortalRotateKey(ctx, p, f.otherUserKey.ID, keyward.KeyRotate{})
	wantCode(t, err, keyward.ENOTFOUND)
	_, err = pt.PortalUsage(ctx, p, keyward.UsageFilter{KeyID: f.otherUserKey.ID, Granularity: keyward.UsageHour})
	wantCode(t, err, keyward.ENOTFOUND)

	rotated := must(pt.PortalRotateKey(ctx, p, k.ID, keyward.KeyRotate{Grace: keyward.Duration(time.Hour)}))
	if rotated.Environment != "test" || rotated.UserID != f.user.ID {
		t.Fatalf("rotated = %+v", rotated)
	}
	revoked := must(pt.PortalRevokeKey(ctx, p, rotated.ID))
	if revoked.RevokedAt == nil {
		t.Fatalf("not revoked: %+v", revoked)
	}
	// Audited with the portal session as the actor, naming the user.
	entries := must(e.svc.Audit.AuditEntries(e.root, keyward.AuditFilter{TargetID: rotated.ID}, keyward.Page{}))
	if n := len(entries.Items); n == 0 {
		t.Fatal("no audit entry")
	}
	for _, a := range entries.Items {
		if a.Actor.KeyID != p.ID || a.Actor.UserID != f.user.ID || a.Actor.Agent != keyward.PortalAgent {
			t.Fatalf("actor = %+v", a.Actor)
		}
	}
}

func TestPortalBranding(t *testing.T) {
	e := newEnv(t)
	f := newPortalFixture(t, e)
	ctx := as(t, &f.adminKey.Key)
	b := must(e.svc.Portal.PortalBranding(ctx, f.acc.ID))
	if *b != (keyward.PortalBranding{AccountID: f.acc.ID}) {
		t.Fatalf("default branding = %+v", b)
	}
	set := keyward.PortalBranding{AccountID: f.acc.ID, Title: "Shop API", AccentColor: "#1F6FEB", BackgroundColor: "#ffffff", TextColor: "#111111"}
	must(e.svc.Portal.SetPortalBranding(ctx, set))
	b = must(e.svc.Portal.PortalBranding(ctx, f.acc.ID))
	if b.Title != "Shop API" || b.AccentColor != "#1F6FEB" {
		t.Fatalf("branding = %+v", b)
	}
	for _, c := range []string{"red", "#fff", "#12345g", "#123456;}body{display:none", "url(x)", "#1234567"} {
		bad := set
		bad.AccentColor = c
		_, err := e.svc.Portal.SetPortalBranding(ctx, bad)
		wantCode(t, err, keyward.EINVALID)
	}
	bad := set
	bad.Title = "a\nb"
	_, err := e.svc.Portal.SetPortalBranding(ctx, bad)
	wantCode(t, err, keyward.EINVALID)
	_, _, otherAdmin, userKey := e.tenant(t, "other")
	_, err = e.svc.Portal.SetPortalBranding(as(t, &otherAdmin.Key), set)
	wantCode(t, err, keyward.ENOTFOUND)
	_, err = e.svc.Portal.PortalBranding(as(t, &userKey.Key), f.acc.ID)
	wantCode(t, err, keyward.EFORBIDDEN)
}

// TestPortalLinkAcrossInstances: two instances on one PostgreSQL database,
// each with its own store pool and services: a link created on one starts
// a session on the other, which both then serve; the link is refused on
// both afterwards.
func TestPortalLinkAcrossInstances(t *testing.T) {
	dbURL := keywardtest.PostgresURL(t)
	schema := keywardtest.NewPostgresSchema(t, dbURL)
	open := func() keyward.Store {
		s, err := postgres.OpenOptions(t.Context(), keywardtest.PostgresNoSync(dbURL), postgres.Options{Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a := newEnvOn(t, open())
	f := newPortalFixture(t, a)
	b := admin.New(admin.Config{Store: open(), Hasher: keywardtest.NewHasher(t), Sealer: keywardtest.NewKeyring(t)})

	link := must(a.svc.Portal.CreatePortalSession(as(t, &f.adminKey.Key), f.grant()))
	token := strings.TrimPrefix(link.URL, "/portal/link/")
	cookie, _ := must2(b.Portal.StartPortalSession(t.Context(), token))
	for name, svc := range map[string]*admin.Portal{"a": a.svc.Portal, "b": b.Portal} {
		if p, err := svc.PortalSession(t.Context(), cookie); err != nil || p.ID != link.ID {
			t.Fatalf("instance %s: session %+v, %v", name, p, err)
		}
		_, _, err := svc.StartPortalSession(t.Context(), token)
		wantCode(t, err, keyward.ENOTFOUND)
	}
}
