package console_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/keyward/keyward"
)

// TestBrowserPortal: a service sends its customer's browser, from its own
// site, to a portal link; the customer lands on their keys (the token gone
// from the address), sees only their own, creates one and reads it once,
// revokes it and sees verification fail; the same link is refused the
// second time. The account's colours apply under the CSP.
func TestBrowserPortal(t *testing.T) {
	e := newEnv(t)
	tab := newTab(t)
	w := e.portalWorld()
	base := e.ts.URL
	if st := e.api("PUT", "/v1/accounts/"+w.acc.ID+"/portal-branding", w.adminKey.Secret, `{"title":"Shop API","accent_color":"#1f6feb","background_color":"#fdfcf7"}`, nil); st != 200 {
		t.Fatalf("branding: %d", st)
	}
	link := base + e.portalLink(w)
	// The service's own site: another site than keyward's (localhost, not
	// 127.0.0.1), which redirects the browser to the link, as a service
	// would.
	service := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/open-portal" {
			http.Redirect(rw, r, link, http.StatusFound)
			return
		}
		rw.Header().Set("Content-Type", "text/html")
		rw.Write([]byte(`<!doctype html><a id="manage" href="/open-portal">Manage your API keys</a>`))
	}))
	t.Cleanup(service.Close)
	serviceURL := strings.Replace(service.URL, "127.0.0.1", "localhost", 1)

	// A click on the service's page: a navigation another site started,
	// which a SameSite=Strict cookie would not survive.
	run(t, tab, "following the service's link to the portal",
		chromedp.EmulateViewport(1100, 700),
		chromedp.Navigate(serviceURL+"/account"),
		chromedp.WaitVisible(chromedp.CSS("#manage")),
		chromedp.Click(chromedp.CSS("#manage")),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/portal/keys"]`)),
	)
	if loc := read(t, tab, "reading the address", chromedp.Location()); loc != base+"/portal/keys" {
		t.Fatalf("address = %q, want the keys page without the token", loc)
	}
	if h := text(t, tab, "h1"); h != "Your API keys" {
		t.Fatalf("h1 = %q", h)
	}
	if brand := text(t, tab, ".brand"); brand != "Shop API" {
		t.Errorf("title = %q", brand)
	}
	colors := read(t, tab, "reading the colours", chromedp.Evaluate[string](`getComputedStyle(document.querySelector("button[type=submit]")).backgroundColor+" "+getComputedStyle(document.body).backgroundColor`))
	if colors != "rgb(31, 111, 235) rgb(253, 252, 247)" {
		t.Errorf("colours = %q: the account's branding did not apply", colors)
	}
	page := read(t, tab, "reading the page", chromedp.OuterHTML(chromedp.CSS("html")))
	if strings.Contains(page, w.otherKey.ID) || strings.Contains(page, "bobs-key") || strings.Contains(page, w.otherKey.Start) {
		t.Fatal("the portal shows another user's key")
	}

	// Create a key, read it once.
	run(t, tab, "creating a key",
		chromedp.SendKeys(chromedp.CSS("#name"), "laptop"),
		chromedp.Click(chromedp.CSS(`form[action="/portal/keys"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS("#secret")),
	)
	shot(t, tab, "portal-created.png")
	secret := read(t, tab, "reading the secret", chromedp.Value(chromedp.CSS("#secret")))
	e.remember(secret)
	if valid, code := verifyCode(t, e, secret); !valid {
		t.Fatalf("the new key does not verify: %s", code)
	}
	run(t, tab, "copying", chromedp.Click(chromedp.CSS("button.copy")), chromedp.WaitVisible(chromedp.CSS(".copied:not(:empty)")))
	run(t, tab, "back to the keys",
		chromedp.Click(chromedp.CSS(`main a[href="/portal/keys"]`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action$="/revoke"]`)),
	)
	shot(t, tab, "portal-keys.png")
	page = read(t, tab, "reading the page", chromedp.OuterHTML(chromedp.CSS("html")))
	if strings.Contains(page, secret) || !strings.Contains(page, "laptop") {
		t.Fatal("the keys page shows the secret again, or not the new key")
	}
	run(t, tab, "revoking",
		chromedp.Click(chromedp.CSS(`form[action$="/revoke"] button`)),
		chromedp.WaitVisible(chromedp.CSS(".status.revoked")),
	)
	if valid, code := verifyCode(t, e, secret); valid || code != string(keyward.DecisionRevoked) {
		t.Errorf("after revoking in the portal, verify = %v %q, want REVOKED", valid, code)
	}

	// The link again, as the service would send it: refused.
	run(t, tab, "using the link a second time",
		chromedp.Navigate(serviceURL+"/open-portal"),
		chromedp.WaitVisible(chromedp.CSS("h1")),
	)
	if h := text(t, tab, "h1"); h != "This link cannot be used" {
		t.Fatalf("second use: h1 = %q", h)
	}
}

// TestBrowserPortalPhoneAndKeyboard: on a 390px screen no portal page
// scrolls sideways, and the keys page is used with the keyboard alone:
// the first Tab reaches the skip link, then the menu, sign-out, the key's
// actions and the new key's form, which Enter submits.
func TestBrowserPortalPhoneAndKeyboard(t *testing.T) {
	e := newEnv(t)
	tab := newTab(t)
	w := e.portalWorld()
	w.portalPermissions = []string{"notes:read", "notes:write", "notes:export_everything_as_an_archive"}
	e.key(keyward.KeyCreate{AccountID: w.acc.ID, UserID: w.customer.ID, Environment: "test", Name: "a-rather-long-key-name-for-a-small-screen", Permissions: []string{"notes:read", "notes:write"}})
	run(t, tab, "opening the portal on a phone",
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		chromedp.Navigate(e.ts.URL+e.portalLink(w)),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/portal/keys"]`)),
	)
	order := tabOrder(t, tab, 14)
	for _, want := range []string{"A /portal/keys", "A /portal/usage", "BUTTON Sign out", "BUTTON Rotate", "BUTTON Revoke", "INPUT name", "SELECT environment"} {
		if !strings.Contains(order, want) {
			t.Errorf("Tab never reaches %q; order: %s", want, order)
		}
	}
	run(t, tab, "creating a key with the keyboard",
		chromedp.Focus(chromedp.CSS("#name")),
		chromedp.KeyEvent("phone"),
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(chromedp.CSS("#secret")),
	)
	e.remember(read(t, tab, "reading the secret", chromedp.Value(chromedp.CSS("#secret"))))
	for _, path := range []string{"/portal/keys", "/portal/usage"} {
		run(t, tab, "opening "+path, chromedp.Navigate(e.ts.URL+path), chromedp.WaitVisible(chromedp.CSS("h1")))
		if fits := read(t, tab, "measuring "+path, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= window.innerWidth && Array.from(document.querySelectorAll(".table")).every(function(d){return d.scrollWidth <= d.clientWidth})`)); !fits {
			t.Errorf("%s, or a table on it, scrolls sideways on a 390px screen", path)
		}
	}
}
