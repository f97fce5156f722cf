package console_test

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/keyward/keyward"
)

var (
	controlRE = regexp.MustCompile(`<(input|select|textarea)\b[^>]*>`)
	idRE      = regexp.MustCompile(`\bid="([^"]+)"`)
)

// TestFormControlsLabelled: every visible form control of every page has
// an id and a <label for> naming it, so screen readers announce it and a
// click on the label focuses it.
func TestFormControlsLabelled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.account("acme")
	u := e.user(a.ID, "alice")
	k := e.key(keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Role: keyward.RoleUser, Name: "labelled"})
	if _, err := e.svc.Roles.CreateRole(e.rootCtx(), a.ID, keyward.RoleCreate{Name: "reader", Permissions: []string{"memories:read"}}); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	pages := map[string]page{"sign-in": b.get("/console/sign-in")}
	b.signIn(e.root)
	for _, path := range []string{"/console/keys", "/console/keys/new", "/console/keys/" + k.ID, "/console/accounts", "/console/accounts/" + a.ID, "/console/accounts/" + a.ID + "/users/" + u.ID, "/console/accounts/" + a.ID + "/roles", "/console/audit", "/console/audit/verify", "/console/ip-rules", "/console/anomalies", "/console/webhooks", "/console/usage", "/console/keys/key_nothere"} {
		pages[path] = b.get(path)
	}
	b.get("/console/keys/new")
	pages["created"] = b.post("/console/keys", url.Values{"role": {"root"}})
	e.remember(secretOf(t, pages["created"]))
	for name, p := range pages {
		if p.status >= 500 || !strings.Contains(p.body, `<html lang="en">`) || !strings.Contains(p.body, `name="viewport"`) {
			t.Errorf("%s: status %d, or no lang or viewport", name, p.status)
		}
		n := 0
		for _, control := range controlRE.FindAllString(p.body, -1) {
			if strings.Contains(control, `type="hidden"`) {
				continue
			}
			n++
			m := idRE.FindStringSubmatch(control)
			if m == nil || !strings.Contains(p.body, `<label for="`+m[1]+`">`) {
				t.Errorf("%s: control without a label: %s", name, control)
			}
		}
		if n == 0 && name != "/console/keys/key_nothere" && name != "/console/audit/verify" && !strings.HasPrefix(name, "/console/accounts/"+a.ID+"/") {
			t.Errorf("%s: no form control found: the check checks nothing", name)
		}
	}
}

// shot writes a screenshot of the tab to $KEYWARD_CONSOLE_SCREENSHOTS/name
// when that directory is set (docs/console.md shows them).
func shot(t *testing.T, tab context.Context, name string) {
	t.Helper()
	dir := os.Getenv("KEYWARD_CONSOLE_SCREENSHOTS")
	if dir == "" {
		return
	}
	png := read(t, tab, "screenshot "+name, chromedp.CaptureScreenshot())
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBrowserPhoneAndKeyboard: on a phone-sized screen no page scrolls
// sideways, and the console is used with the keyboard alone: sign in
// with Enter, Tab reaches the skip link first, then the navigation and
// the page's controls.
func TestBrowserPhoneAndKeyboard(t *testing.T) {
	e := newEnv(t)
	tab := newTab(t)
	a := e.account("acme-corporation-with-a-long-name")
	u := e.user(a.ID, "alice")
	k := e.key(keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Role: keyward.RoleUser, Name: "a-rather-long-key-name-for-a-small-screen", Permissions: []string{"memories:read", "search:run", "billing.invoices:export"}})
	base := e.ts.URL

	run(t, tab, "phone screen", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	run(t, tab, "signing in with the keyboard",
		chromedp.Navigate(base+"/console/sign-in"),
		chromedp.WaitVisible(chromedp.CSS("#key")),
		chromedp.Focus(chromedp.CSS("#key")),
		chromedp.KeyEvent(e.root),
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/console/keys/new"]`)),
	)
	order := tabOrder(t, tab, 12)
	for _, want := range []string{"A /console/keys", "A /console/accounts", "BUTTON Sign out", "A /console/keys/new", "INPUT q", "SELECT status"} {
		if !strings.Contains(order, want) {
			t.Errorf("Tab never reaches %q; order: %s", want, order)
		}
	}
	for _, path := range []string{"/console/keys", "/console/keys/" + k.ID, "/console/keys/new", "/console/accounts", "/console/accounts/" + a.ID, "/console/audit", "/console/ip-rules", "/console/anomalies", "/console/webhooks", "/console/usage"} {
		run(t, tab, "opening "+path, chromedp.Navigate(base+path), chromedp.WaitVisible(chromedp.CSS("h1")))
		if fits := read(t, tab, "measuring "+path, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= window.innerWidth && Array.from(document.querySelectorAll(".table")).every(function(d){return d.scrollWidth <= d.clientWidth})`)); !fits {
			t.Errorf("%s, or a table on it, scrolls sideways on a 390px screen", path)
		}
		if path == "/console/keys" {
			shot(t, tab, "console-keys-phone.png")
		}
	}
	resp, err := http.Get(base + "/console/static/console.css")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stylesheet: %v", err)
	}
	resp.Body.Close()
}
