package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

// TestBrandingPage: an account admin sets its account's portal branding
// from the console; a colour that is not #rrggbb is refused and changes
// nothing; another account's admin finds no such account, a user key may
// not.
func TestBrandingPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acc, other := e.account("alpha"), e.account("beta")
	adminA := e.key(keyward.KeyCreate{AccountID: acc.ID, Role: keyward.RoleAccountAdmin})
	adminB := e.key(keyward.KeyCreate{AccountID: other.ID, Role: keyward.RoleAccountAdmin})
	u := e.user(acc.ID, "ann")
	userKey := e.key(keyward.KeyCreate{AccountID: acc.ID, UserID: u.ID, Role: keyward.RoleUser})
	page := "/console/accounts/" + acc.ID + "/portal"

	admin := e.browser()
	admin.signIn(adminA.Secret)
	if p := admin.get("/console/accounts/" + acc.ID); !strings.Contains(p.body, `href="/console/accounts/`+acc.ID+`/portal"`) {
		t.Error("the account page does not link to the portal branding")
	}
	if p := admin.get(page); p.status != 200 || !strings.Contains(p.body, `id="accent_color_default" name="accent_color_default" value="1" checked`) {
		t.Fatalf("branding page: %d %.400s", p.status, p.body)
	}
	p := admin.post(page, url.Values{"title": {"Alpha API"}, "accent_color": {"#1f6feb"}, "background_color": {"#ffffff"}, "background_color_default": {"1"}, "text_color": {"#222222"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("save: %d %.300s", p.status, p.body)
	}
	b, err := e.svc.Portal.PortalBranding(e.rootCtx(), acc.ID)
	if err != nil || *b != (keyward.PortalBranding{AccountID: acc.ID, Title: "Alpha API", AccentColor: "#1f6feb", TextColor: "#222222", UpdatedAt: b.UpdatedAt}) {
		t.Fatalf("branding = %+v, %v", b, err)
	}
	admin.get(page)
	if p := admin.post(page, url.Values{"title": {"x"}, "accent_color": {"#000;}body{display:none"}}); p.status != http.StatusBadRequest {
		t.Fatalf("a bad colour: %d", p.status)
	}
	if b2, _ := e.svc.Portal.PortalBranding(e.rootCtx(), acc.ID); b2.Title != "Alpha API" {
		t.Fatal("a refused form changed the branding")
	}
	intruder := e.browser()
	intruder.signIn(adminB.Secret)
	if p := intruder.get(page); p.status != http.StatusNotFound {
		t.Errorf("another account's admin: %d, want 404", p.status)
	}
	user := e.browser()
	user.signIn(userKey.Secret)
	if p := user.get(page); p.status != http.StatusForbidden {
		t.Errorf("a user key: %d, want 403", p.status)
	}
}
