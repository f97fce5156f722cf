package console_test

import (
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/console"
)

func TestSignInStartsASession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	p := b.get("/console/sign-in")
	if p.status != 200 || !strings.Contains(p.body, `<label for="key">API key</label>`) {
		t.Fatalf("sign-in page: %d %.300s", p.status, p.body)
	}
	if ck := setCookie(p, "keyward_console_signin"); ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
		t.Errorf("sign-in CSRF cookie = %+v, want HttpOnly and SameSite=Strict", ck)
	}
	p = b.post("/console/sign-in", url.Values{"key": {e.root}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/console/keys" {
		t.Fatalf("sign-in: %d %q", p.status, p.header.Get("Location"))
	}
	ck := setCookie(p, console.SessionCookie)
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Secure || ck.Path != "/console" || len(ck.Value) < 40 {
		t.Fatalf("session cookie = %+v, want HttpOnly, SameSite=Strict, not Secure over http, Path=/console, a long random value", ck)
	}
	if strings.Contains(ck.Value, e.root) {
		t.Error("the session cookie holds the key")
	}
	// Signing in again replaces the session: the first id stops working.
	first := ck.Value
	b.get("/console/sign-in")
	if p := b.post("/console/sign-in", url.Values{"key": {e.root}}); setCookie(p, console.SessionCookie) == nil || setCookie(p, console.SessionCookie).Value == first {
		t.Fatal("a second sign-in kept the session id")
	}
	stale := e.browser()
	u0, _ := url.Parse(e.ts.URL + "/console/")
	stale.client.Jar.SetCookies(u0, []*http.Cookie{{Name: console.SessionCookie, Value: first, Path: "/console"}})
	if p := stale.get("/console/keys"); p.status != http.StatusSeeOther {
		t.Errorf("the replaced session still works: %d", p.status)
	}
	p = b.get("/console/keys")
	if p.status != 200 || !strings.Contains(p.body, "Sign out") {
		t.Fatalf("keys page: %d %.300s", p.status, p.body)
	}
	for name, want := range map[string]string{
		"Content-Security-Policy": console.ContentSecurityPolicy,
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
		"X-Frame-Options":         "DENY",
	} {
		if got := p.header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	csp := p.header.Get("Content-Security-Policy")
	for _, part := range []string{"default-src 'self'", "frame-ancestors 'none'", "script-src 'self'"} {
		if !strings.Contains(csp, part) {
			t.Errorf("CSP %q lacks %q", csp, part)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(p.body, "<script>") || strings.Contains(p.body, " onclick=") || strings.Contains(p.body, "style=") {
		t.Error("inline script or style on the page or allowed by the CSP")
	}
	// Sign-out ends the session on the server: the old cookie no longer works.
	old := b.cookie(console.SessionCookie).Value
	p = b.post("/console/sign-out", nil)
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/console/sign-in" {
		t.Fatalf("sign-out: %d %q", p.status, p.header.Get("Location"))
	}
	if ck := setCookie(p, console.SessionCookie); ck == nil || ck.MaxAge >= 0 {
		t.Errorf("sign-out cookie = %+v, want it deleted", ck)
	}
	replay := e.browser()
	u, _ := url.Parse(e.ts.URL + "/console/")
	replay.client.Jar.SetCookies(u, []*http.Cookie{{Name: console.SessionCookie, Value: old, Path: "/console"}})
	if p := replay.get("/console/keys"); p.status != http.StatusSeeOther || p.header.Get("Location") != "/console/sign-in" {
		t.Errorf("the signed-out session still works: %d", p.status)
	}
}

func TestSignInRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	if p := b.get("/console/keys"); p.status != http.StatusSeeOther || p.header.Get("Location") != "/console/sign-in" {
		t.Errorf("keys without a session: %d %q, want a redirect to sign-in", p.status, p.header.Get("Location"))
	}
	b.get("/console/sign-in")
	before := len(e.signals.failures())
	wrong := keywardtestBreak(e.root)
	e.remember(wrong)
	p := b.post("/console/sign-in", url.Values{"key": {wrong}})
	if p.status != http.StatusUnauthorized || !strings.Contains(p.body, "invalid API key") || b.cookie(console.SessionCookie) != nil {
		t.Fatalf("wrong key: %d, session %v, %.300s", p.status, b.cookie(console.SessionCookie), p.body)
	}
	// A refused sign-in reaches abuse detection as a failure from the
	// client's address, as a refused API authentication does.
	f := e.signals.failures()
	if len(f) != before+1 || f[len(f)-1].IP != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("failure signals = %+v, want one more from 127.0.0.1", f)
	}
	if logs := e.logs.String(); !strings.Contains(logs, "console sign-in refused") {
		t.Error("the refused sign-in is not in the (captured) log")
	}
	// No CSRF token (or another form's): refused before the key is tried.
	p = b.post("/console/sign-in", url.Values{"key": {e.root}, "csrf": {"forged"}})
	if p.status != http.StatusForbidden || b.cookie(console.SessionCookie) != nil {
		t.Errorf("forged sign-in token: %d, want 403 and no session", p.status)
	}
	fresh := e.browser()
	if p := fresh.post("/console/sign-in", url.Values{"key": {e.root}, "csrf": {""}}); p.status != http.StatusForbidden {
		t.Errorf("sign-in without the form's cookie: %d, want 403", p.status)
	}
	// A key in the URL is refused, never used.
	b.get("/console/sign-in")
	p = b.post("/console/sign-in?key="+url.QueryEscape(e.root), url.Values{"key": {e.root}})
	if p.status != http.StatusBadRequest || b.cookie(console.SessionCookie) != nil {
		t.Errorf("key in the URL: %d, want 400 and no session", p.status)
	}
	// A blocked address cannot sign in, even with a good key.
	if _, err := e.svc.Abuse.CreateIPRule(e.rootCtx(), keyward.IPRuleCreate{Action: keyward.IPBlock, CIDR: "127.0.0.1/32", Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	b.get("/console/sign-in")
	if p := b.post("/console/sign-in", url.Values{"key": {e.root}}); p.status == http.StatusSeeOther || b.cookie(console.SessionCookie) != nil {
		t.Errorf("sign-in from a blocked address: %d, want a refusal", p.status)
	}
}

// keywardtestBreak changes the last character of a key: well formed, wrong
// checksum.
func keywardtestBreak(s string) string {
	last := "x"
	if strings.HasSuffix(s, last) {
		last = "y"
	}
	return s[:len(s)-1] + last
}

func TestSessionTimeouts(t *testing.T) {
	t.Parallel()
	e := newEnv(t) // idle 10m, max age 1h
	b := e.browser()
	b.signIn(e.root)
	// Active within the idle timeout: the session lives on.
	for range 5 {
		e.clock.advance(9 * time.Minute)
		if p := b.get("/console/keys"); p.status != 200 {
			t.Fatalf("active session refused after %d: %d", 9, p.status)
		}
	}
	// Idle for the idle timeout: ended.
	e.clock.advance(10 * time.Minute)
	if p := b.get("/console/keys"); p.status != http.StatusSeeOther {
		t.Fatalf("idle session still works: %d", p.status)
	}
	// However active, a session ends at its absolute lifetime.
	b.signIn(e.root)
	for i := range 7 {
		e.clock.advance(9 * time.Minute)
		p := b.get("/console/keys")
		if i < 6 && p.status != 200 {
			t.Fatalf("session refused at %d min: %d", 9*(i+1), p.status)
		}
		if i == 6 && p.status != http.StatusSeeOther {
			t.Fatalf("session alive at 63 min, past its 1h lifetime: %d", p.status)
		}
	}
}

func TestSecureCookie(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, envOptions{tls: true})
	b := e.browser()
	b.get("/console/sign-in")
	p := b.post("/console/sign-in", url.Values{"key": {e.root}})
	if ck := setCookie(p, console.SessionCookie); ck == nil || !ck.Secure || !ck.HttpOnly {
		t.Errorf("session cookie over TLS = %+v, want Secure", ck)
	}
	if p.header.Get("Strict-Transport-Security") == "" {
		t.Error("no Strict-Transport-Security over TLS")
	}

	for _, c := range []struct {
		name    string
		trusted []netip.Prefix
		secure  bool
	}{
		{"a trusted proxy saying https", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, true},
		{"an untrusted peer saying https", nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnvWith(t, envOptions{trusted: c.trusted})
			b := e.browser()
			b.get("/console/sign-in")
			form := url.Values{"key": {e.root}, "csrf": {b.csrf}}
			req, _ := http.NewRequest("POST", e.ts.URL+"/console/sign-in", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Forwarded-Proto", "https")
			// The jar would not send a Secure cookie over http: set it by hand.
			req.AddCookie(&http.Cookie{Name: "keyward_console_signin", Value: b.csrf})
			p := b.do(req)
			ck := setCookie(p, console.SessionCookie)
			if ck == nil || ck.Secure != c.secure {
				t.Errorf("session cookie = %+v, want Secure %v", ck, c.secure)
			}
		})
	}
}

func TestCSRFRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.account("acme")
	k := e.key(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin})
	b := e.browser()
	b.signIn(e.root)
	other := e.browser()
	other.signIn(e.root)
	forged := "x" + b.csrf[1:]
	if forged == b.csrf {
		forged = "y" + b.csrf[1:]
	}
	for name, token := range map[string]string{"none": "", "forged": forged, "another session's": other.csrf} {
		if p := b.post("/console/keys/"+k.ID+"/revoke", url.Values{"csrf": {token}}); p.status != http.StatusForbidden {
			t.Errorf("revoke with %s token: %d, want 403", name, p.status)
		}
		if p := b.post("/console/sign-out", url.Values{"csrf": {token}}); p.status != http.StatusForbidden {
			t.Errorf("sign-out with %s token: %d, want 403", name, p.status)
		}
	}
	got, err := e.svc.Keys.Key(e.rootCtx(), k.ID)
	if err != nil || got.RevokedAt != nil {
		t.Fatalf("key after refused revokes: %+v, %v", got, err)
	}
	// The right token works: the protection does not block the form.
	if p := b.post("/console/keys/"+k.ID+"/revoke", nil); p.status != http.StatusSeeOther {
		t.Fatalf("revoke with the session's token: %d %.300s", p.status, p.body)
	}
	if got, _ := e.svc.Keys.Key(e.rootCtx(), k.ID); got.RevokedAt == nil {
		t.Error("key not revoked")
	}
}

func TestKeyLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.account("acme")
	u := e.user(a.ID, "alice")
	b := e.browser()
	b.signIn(e.root)
	if p := b.get("/console/keys/new"); p.status != 200 || !strings.Contains(p.body, `<label for="permissions">`) {
		t.Fatalf("new key page: %d", p.status)
	}
	p := b.post("/console/keys", url.Values{"name": {"ci"}, "role": {"user"}, "account_id": {a.ID}, "user_id": {u.ID}, "permissions": {"memories:read, search:run"}, "environment": {"test"}})
	if p.status != http.StatusCreated || p.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("create: %d, Cache-Control %q, %.300s", p.status, p.header.Get("Cache-Control"), p.body)
	}
	secret := secretOf(t, p)
	e.remember(secret)
	if !strings.Contains(p.body, `data-copy="secret"`) || !strings.Contains(p.body, "only time") {
		t.Error("created page lacks the copy button or the notice")
	}
	list, err := e.svc.Keys.Keys(e.rootCtx(), keyward.KeyFilter{UserID: u.ID}, keyward.Page{})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("keys of the user: %v, %v", list, err)
	}
	k := list.Items[0]
	if k.Name != "ci" || k.Environment != "test" || strings.Join(k.Permissions, " ") != "memories:read search:run" {
		t.Errorf("created key = %+v", k)
	}
	// The secret is shown once: not on the key page, not in the list.
	kp := b.get("/console/keys/" + k.ID)
	if kp.status != 200 || strings.Contains(kp.body, secret) || !strings.Contains(kp.body, k.ID) {
		t.Fatalf("key page: %d, holds the secret: %v", kp.status, strings.Contains(kp.body, secret))
	}
	if lp := b.get("/console/keys"); strings.Contains(lp.body, secret) || !strings.Contains(lp.body, k.ID) {
		t.Error("the list holds the secret or lacks the key")
	}
	// The audit log names the signed-in key as the actor.
	entries, err := e.svc.Audit.AuditEntries(e.rootCtx(), keyward.AuditFilter{Action: "key.create", TargetID: k.ID}, keyward.Page{})
	if err != nil || len(entries.Items) != 1 || entries.Items[0].Actor.KeyID == "" || entries.Items[0].Actor.KeyID == k.ID {
		t.Fatalf("audit of the creation: %+v, %v", entries, err)
	}
	rootID := entries.Items[0].Actor.KeyID
	if entries.Items[0].Actor.IP != "127.0.0.1" {
		t.Errorf("audit actor IP = %q", entries.Items[0].Actor.IP)
	}

	state := func() string {
		t.Helper()
		got, err := e.svc.Keys.Key(e.rootCtx(), k.ID)
		if err != nil {
			return keyward.ErrorCode(err)
		}
		return string(got.Status(time.Now()))
	}
	act := func(action string, form url.Values) page {
		t.Helper()
		return b.post("/console/keys/"+k.ID+"/"+action, form)
	}
	if p := act("disable", nil); p.status != http.StatusSeeOther || state() != string(keyward.DecisionDisabled) {
		t.Fatalf("disable: %d, state %s", p.status, state())
	}
	if p := b.get("/console/keys?status=disabled"); !strings.Contains(p.body, k.ID) {
		t.Error("status filter disabled misses the key")
	}
	if p := b.get("/console/keys?status=active"); strings.Contains(p.body, k.ID) {
		t.Error("status filter active lists a disabled key")
	}
	if p := act("enable", nil); p.status != http.StatusSeeOther || state() != string(keyward.DecisionValid) {
		t.Fatalf("enable: %d, state %s", p.status, state())
	}
	p = act("rotate", url.Values{"grace": {"1h"}})
	if p.status != http.StatusCreated {
		t.Fatalf("rotate: %d %.300s", p.status, p.body)
	}
	newSecret := secretOf(t, p)
	e.remember(newSecret)
	if newSecret == secret || !strings.Contains(p.body, "grace") {
		t.Error("rotation shows the old secret or no grace notice")
	}
	if old, _ := e.svc.Keys.Key(e.rootCtx(), k.ID); old.GraceUntil == nil {
		t.Error("rotated key has no grace")
	}
	if p := act("revoke", nil); p.status != http.StatusSeeOther || state() != string(keyward.DecisionRevoked) {
		t.Fatalf("revoke: %d, state %s", p.status, state())
	}
	if p := act("delete", nil); p.status != http.StatusSeeOther || p.header.Get("Location") != "/console/keys" || state() != keyward.ENOTFOUND {
		t.Fatalf("delete: %d, state %s", p.status, state())
	}
	// An expiry is a duration from now; a bad one is refused.
	p = b.post("/console/keys", url.Values{"role": {"account_admin"}, "account_id": {a.ID}, "expires_in": {"720h"}, "name": {"expiring"}})
	if p.status != http.StatusCreated {
		t.Fatalf("create with an expiry: %d %.300s", p.status, p.body)
	}
	e.remember(secretOf(t, p))
	l, _ := e.svc.Keys.Keys(e.rootCtx(), keyward.KeyFilter{AccountID: a.ID}, keyward.Page{})
	var expiring *keyward.Key
	for _, k := range l.Items {
		if k.Name == "expiring" {
			expiring = k
		}
	}
	if expiring == nil || expiring.ExpiresAt == nil || time.Until(*expiring.ExpiresAt) < 719*time.Hour || time.Until(*expiring.ExpiresAt) > 721*time.Hour {
		t.Errorf("key created to expire in 720h: %+v", expiring)
	}
	if p := b.post("/console/keys", url.Values{"role": {"account_admin"}, "account_id": {a.ID}, "expires_in": {"soon"}}); p.status != http.StatusBadRequest || !strings.Contains(p.body, "720h") {
		t.Errorf("create with a bad expiry: %d", p.status)
	}
	if p := b.post("/console/keys", url.Values{"role": {"user"}, "account_id": {a.ID}, "permissions": {"*"}, "user_id": {u.ID}}); p.status != http.StatusForbidden && p.status != http.StatusBadRequest {
		t.Errorf("a user key with *: %d, want the API's refusal", p.status)
	}
	if p := act("explode", nil); p.status != http.StatusNotFound {
		t.Errorf("unknown action: %d", p.status)
	}
	for _, action := range []string{"key.update", "key.rotate", "key.revoke", "key.delete"} {
		l, err := e.svc.Audit.AuditEntries(e.rootCtx(), keyward.AuditFilter{Action: action, ActorKeyID: rootID}, keyward.Page{})
		if err != nil || len(l.Items) == 0 {
			t.Errorf("no %s audited with the signed-in key as actor: %v", action, err)
		}
	}
}

func TestKeyListSearchAndPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.account("acme")
	for i := range 60 {
		name := "batch"
		if i == 42 {
			name = "needle"
		}
		e.key(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin, Name: name, Environment: "live"})
	}
	e.key(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin, Name: "tester", Environment: "test"})
	b := e.browser()
	b.signIn(e.root)
	p := b.get("/console/keys?account=" + a.ID)
	if n := strings.Count(p.body, "<tr><td"); n != 50 {
		t.Fatalf("first page has %d keys, want 50", n)
	}
	m := regexpNext.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatal("no next page link")
	}
	p2 := b.get(strings.ReplaceAll(m[1], "&amp;", "&"))
	if n := strings.Count(p2.body, "<tr><td"); n != 11 || regexpNext.MatchString(p2.body) {
		t.Fatalf("second page has %d keys (want 11) or a next link", n)
	}
	if p := b.get("/console/keys?q=NEEDLE"); strings.Count(p.body, "<tr><td") != 1 || !strings.Contains(p.body, "needle") {
		t.Error("search by name does not find exactly the one key")
	}
	if p := b.get("/console/keys?environment=test"); strings.Count(p.body, "<tr><td") != 1 || !strings.Contains(p.body, "tester") {
		t.Error("environment filter does not find exactly the one key")
	}
	if p := b.get("/console/keys?status=lost"); p.status != http.StatusBadRequest {
		t.Errorf("unknown status: %d, want 400", p.status)
	}
}

var regexpNext = mustRE(`<a href="(/console/keys\?[^"]+)" rel="next">`)

func TestRoleGating(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	accA, accB := e.account("alpha"), e.account("beta")
	userA := e.user(accA.ID, "ann")
	userB, userB2 := e.user(accB.ID, "bob"), e.user(accB.ID, "bea")
	keyA := e.key(keyward.KeyCreate{AccountID: accA.ID, UserID: userA.ID, Role: keyward.RoleUser, Name: "alpha-key"})
	adminB := e.key(keyward.KeyCreate{AccountID: accB.ID, Role: keyward.RoleAccountAdmin, Name: "beta-admin"})
	keyB := e.key(keyward.KeyCreate{AccountID: accB.ID, UserID: userB.ID, Role: keyward.RoleUser, Name: "bob-key"})
	keyB2 := e.key(keyward.KeyCreate{AccountID: accB.ID, UserID: userB2.ID, Role: keyward.RoleUser, Name: "bea-key"})

	admin := e.browser()
	admin.signIn(adminB.Secret)
	p := admin.get("/console/keys")
	if !strings.Contains(p.body, "bob-key") || strings.Contains(p.body, "alpha-key") || strings.Contains(p.body, accA.ID) {
		t.Error("an account admin's key list shows another account's key, or misses its own")
	}
	if strings.Contains(p.body, `href="/console/accounts"`) || !strings.Contains(p.body, `href="/console/accounts/`+accB.ID+`"`) {
		t.Error("an account admin's navigation links to all accounts, or not to its own")
	}
	for _, path := range []string{
		"/console/accounts/" + accA.ID,
		"/console/accounts/" + accA.ID + "/users/" + userA.ID,
		"/console/keys/" + keyA.ID,
		"/console/keys?account=" + accA.ID,
	} {
		if p := admin.get(path); p.status != http.StatusNotFound || strings.Contains(p.body, "alpha") {
			t.Errorf("account admin GET %s: %d, want 404 without a trace of it", path, p.status)
		}
	}
	unknown := admin.get("/console/keys/key_0000000000nothere0000")
	other := admin.get("/console/keys/" + keyA.ID)
	if unknown.status != other.status || strings.ReplaceAll(unknown.body, "key_0000000000nothere0000", "") != strings.ReplaceAll(other.body, keyA.ID, "") {
		t.Error("another account's key answers differently from a key that does not exist")
	}
	for _, action := range []string{"revoke", "disable", "delete", "rotate"} {
		if p := admin.post("/console/keys/"+keyA.ID+"/"+action, nil); p.status != http.StatusNotFound {
			t.Errorf("account admin %s of another account's key: %d, want 404", action, p.status)
		}
	}
	if got, _ := e.svc.Keys.Key(e.rootCtx(), keyA.ID); got.RevokedAt != nil || got.Disabled {
		t.Error("another account's key was changed")
	}
	if p := admin.get("/console/accounts"); p.status != http.StatusForbidden {
		t.Errorf("account admin lists accounts: %d, want 403", p.status)
	}
	if p := admin.post("/console/accounts", url.Values{"name": {"gamma"}}); p.status != http.StatusForbidden {
		t.Errorf("account admin creates an account: %d, want 403", p.status)
	}
	if p := admin.post("/console/keys", url.Values{"role": {"user"}, "account_id": {accA.ID}, "user_id": {userA.ID}}); p.status != http.StatusForbidden && p.status != http.StatusNotFound {
		t.Errorf("account admin creates a key in another account: %d", p.status)
	}
	// Its own account works: users page, create a user.
	if p := admin.get("/console/accounts/" + accB.ID); p.status != 200 || !strings.Contains(p.body, "bob") {
		t.Errorf("account admin's own account: %d", p.status)
	}
	if p := admin.post("/console/accounts/"+accB.ID+"/users", url.Values{"name": {"cid"}}); p.status != http.StatusSeeOther {
		t.Errorf("account admin creates a user: %d %.300s", p.status, p.body)
	}
	// A refused action is audited as the API audits it.
	denied, err := e.svc.Audit.AuditEntries(e.rootCtx(), keyward.AuditFilter{ActorKeyID: adminB.ID}, keyward.Page{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, en := range denied.Items {
		found = found || en.Outcome == keyward.AuditDenied
	}
	if !found {
		t.Error("no denied entry in the audit log for the account admin's refused action")
	}

	user := e.browser()
	user.signIn(keyB.Secret)
	p = user.get("/console/keys")
	if !strings.Contains(p.body, "bob-key") || strings.Contains(p.body, "bea-key") || strings.Contains(p.body, "beta-admin") {
		t.Error("a user key's list shows keys other than its own")
	}
	if strings.Contains(p.body, "/console/accounts") {
		t.Error("a user key's navigation links to accounts")
	}
	// A user key creates keys for itself: its account and user are its own.
	p = user.post("/console/keys", url.Values{"name": {"bob-made"}})
	if p.status != http.StatusCreated {
		t.Fatalf("user key creates a key: %d %.300s", p.status, p.body)
	}
	e.remember(secretOf(t, p))
	mine, err := e.svc.Keys.Keys(e.rootCtx(), keyward.KeyFilter{UserID: userB.ID}, keyward.Page{})
	if err != nil || len(mine.Items) != 2 {
		t.Fatalf("bob's keys after creating one: %v, %v", mine, err)
	}
	if p := user.post("/console/keys", url.Values{"user_id": {userB2.ID}}); p.status != http.StatusForbidden && p.status != http.StatusNotFound {
		t.Errorf("user key creates a key for another user: %d", p.status)
	}
	if p := user.get("/console/keys/" + keyB2.ID); p.status != http.StatusNotFound {
		t.Errorf("user key reads another user's key: %d, want 404", p.status)
	}
	if p := user.get("/console/accounts"); p.status != http.StatusForbidden {
		t.Errorf("user key lists accounts: %d, want 403", p.status)
	}
}

func TestRevokedKeyEndsItsSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.account("acme")
	k := e.key(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin})
	b := e.browser()
	b.signIn(k.Secret)
	if _, err := e.svc.Keys.RevokeKey(e.rootCtx(), k.ID); err != nil {
		t.Fatal(err)
	}
	if p := b.get("/console/keys"); p.status != http.StatusSeeOther || p.header.Get("Location") != "/console/sign-in" {
		t.Fatalf("a revoked key's session still works: %d", p.status)
	}
	b.get("/console/sign-in")
	if p := b.post("/console/sign-in", url.Values{"key": {k.Secret}}); p.status != http.StatusUnauthorized {
		t.Errorf("a revoked key signs in: %d", p.status)
	}
}

func TestAccountsAndUsersPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	b.signIn(e.root)
	p := b.post("/console/accounts", url.Values{"name": {"acme"}})
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/console/accounts/acc_") {
		t.Fatalf("create account: %d %q %.300s", p.status, p.header.Get("Location"), p.body)
	}
	accPath := p.header.Get("Location")
	if p := b.get("/console/accounts"); !strings.Contains(p.body, "acme") {
		t.Error("accounts list misses the new account")
	}
	if p := b.post("/console/accounts", url.Values{"name": {"acme"}}); p.status != http.StatusConflict {
		t.Errorf("duplicate account: %d, want 409", p.status)
	}
	b.get(accPath)
	p = b.post(accPath+"/users", url.Values{"name": {"alice"}, "external_id": {"ext-1"}})
	if p.status != http.StatusSeeOther || !strings.Contains(p.header.Get("Location"), "/users/usr_") {
		t.Fatalf("create user: %d %q", p.status, p.header.Get("Location"))
	}
	up := b.get(p.header.Get("Location"))
	if up.status != 200 || !strings.Contains(up.body, "alice") || !strings.Contains(up.body, "ext-1") {
		t.Errorf("user page: %d", up.status)
	}
	if ap := b.get(accPath); !strings.Contains(ap.body, "alice") {
		t.Error("account page misses its user")
	}
	if p := b.get("/console/nothing"); p.status != http.StatusNotFound {
		t.Errorf("unknown page: %d", p.status)
	}
}

func TestStaticFiles(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	for path, ct := range map[string]string{"/console/static/console.css": "text/css", "/console/static/console.js": "javascript"} {
		p := b.get(path)
		if p.status != 200 || !strings.Contains(p.header.Get("Content-Type"), ct) || p.header.Get("Content-Security-Policy") == "" {
			t.Errorf("%s: %d %q", path, p.status, p.header.Get("Content-Type"))
		}
	}
}
