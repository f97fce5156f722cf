package console_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/keyward/keyward"
)

// chromium returns the path of Debian's Chromium. Without it the browser
// tests skip, saying how to install it, except under CI=true, where they
// fail.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no Chromium for the console's browser tests: install it with apt-get update && apt-get install -y chromium"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// newTab starts a headless Chromium and returns a tab's context.
func newTab(t *testing.T) context.Context {
	t.Helper()
	path := chromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(cancelTab)
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("starting Chromium (%s): %v", path, err)
	}
	return tab
}

// run runs steps in tab, failing the test on an error.
func run(t *testing.T, tab context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(tab, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// read runs an action returning a value in tab, failing the test on an
// error.
func read[T any](t *testing.T, tab context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(tab, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// text returns the text of the first element matching the CSS selector sel.
func text(t *testing.T, tab context.Context, sel string) string {
	t.Helper()
	return strings.TrimSpace(read(t, tab, "reading "+sel, chromedp.Text(chromedp.CSS(sel))))
}

// signInWith signs in through the form.
func signInWith(t *testing.T, tab context.Context, base, key string) {
	t.Helper()
	run(t, tab, "signing in",
		chromedp.Navigate(base+"/console/sign-in"),
		chromedp.WaitVisible(chromedp.CSS("#key")),
		chromedp.SendKeys(chromedp.CSS("#key"), key),
		chromedp.Submit(chromedp.CSS("#key")),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/console/keys/new"]`)),
	)
}

// verifyCode asks POST /v1/keys/verify about secret with the root key and
// returns the answer's code ("" when valid).
func verifyCode(t *testing.T, e *env, secret string) (valid bool, code string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"key": secret})
	req, _ := http.NewRequest("POST", e.ts.URL+"/v1/keys/verify", strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+e.root)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Valid bool   `json:"valid"`
		Code  string `json:"code"`
	}
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&out) != nil {
		t.Fatalf("verify: status %d", resp.StatusCode)
	}
	return out.Valid, out.Code
}

func TestBrowserKeyLifecycle(t *testing.T) {
	e := newEnv(t)
	tab := newTab(t)
	a := e.account("acme")
	base := e.ts.URL

	// Not signed in: the keys page sends the browser to sign-in.
	run(t, tab, "opening keys", chromedp.EmulateViewport(1100, 700), chromedp.Navigate(base+"/console/keys"), chromedp.WaitVisible(chromedp.CSS("#key")))
	shot(t, tab, "console-sign-in.png")
	if h := text(t, tab, "h1"); h != "Sign in" {
		t.Fatalf("h1 = %q, want Sign in", h)
	}
	// A wrong key is refused on the page.
	run(t, tab, "wrong key",
		chromedp.SendKeys(chromedp.CSS("#key"), keywardtestBreak(e.root)),
		chromedp.Submit(chromedp.CSS("#key")),
		chromedp.WaitVisible(chromedp.CSS(".error")),
	)
	if msg := text(t, tab, ".error"); msg != "invalid API key" {
		t.Errorf("refusal = %q", msg)
	}
	signInWith(t, tab, base, e.root)

	// Create a key through the form and read its secret once.
	run(t, tab, "creating a key",
		chromedp.Click(chromedp.CSS(`a[href="/console/keys/new"]`)),
		chromedp.WaitVisible(chromedp.CSS("#name")),
		chromedp.SendKeys(chromedp.CSS("#name"), "browser-made"),
		chromedp.SetValue(chromedp.CSS("#role"), "account_admin"),
		chromedp.SendKeys(chromedp.CSS("#account_id"), a.ID),
		chromedp.SendKeys(chromedp.CSS("#permissions"), "memories:read"),
		chromedp.Submit(chromedp.CSS("#name")),
		chromedp.WaitVisible(chromedp.CSS("#secret")),
	)
	secret := read(t, tab, "reading the secret", chromedp.Value(chromedp.CSS("#secret")))
	e.remember(secret)
	if !strings.HasPrefix(secret, "kw_") {
		t.Fatalf("secret on the page = %.8q...", secret)
	}
	// The copy button's script runs under the CSP and reports.
	run(t, tab, "copying", chromedp.Click(chromedp.CSS("button.copy")), chromedp.WaitVisible(chromedp.CSS(".copied:not(:empty)")))
	if valid, code := verifyCode(t, e, secret); !valid {
		t.Fatalf("the new key does not verify: %s", code)
	}

	// The key page does not show the secret again; revoke it there.
	run(t, tab, "opening the key",
		chromedp.Click(chromedp.CSS(`main a[href^="/console/keys/key_"]`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action$="/revoke"]`)),
	)
	keyPage := read(t, tab, "reading the key page", chromedp.OuterHTML(chromedp.CSS("html")))
	keyURL := read(t, tab, "reading the key page's address", chromedp.Location())
	shot(t, tab, "console-key.png")
	if strings.Contains(keyPage, secret) {
		t.Fatal("the key page shows the secret again")
	}

	// A stale CSRF token is refused and changes nothing.
	run(t, tab, "forging the token",
		chromedp.SetAttributeValue(chromedp.CSS(`form[action$="/revoke"] input[name="csrf"]`), "value", "forged"),
		chromedp.Click(chromedp.CSS(`form[action$="/revoke"] button`)),
		chromedp.WaitVisible(chromedp.CSS(".error")),
	)
	if msg := text(t, tab, ".error"); !strings.Contains(msg, "security token") {
		t.Errorf("CSRF refusal = %q", msg)
	}
	if valid, _ := verifyCode(t, e, secret); !valid {
		t.Fatal("a forged form revoked the key")
	}
	run(t, tab, "revoking",
		chromedp.Navigate(keyURL),
		chromedp.WaitVisible(chromedp.CSS(`form[action$="/revoke"]`)),
		chromedp.Click(chromedp.CSS(`form[action$="/revoke"] button`)),
		chromedp.WaitVisible(chromedp.CSS(".status.revoked")),
		chromedp.Navigate(base+"/console/keys"),
		chromedp.WaitVisible(chromedp.CSS("table")),
	)
	shot(t, tab, "console-keys.png")
	if valid, code := verifyCode(t, e, secret); valid || code != string(keyward.DecisionRevoked) {
		t.Errorf("after revoking in the console, verify = %v %q, want REVOKED", valid, code)
	}

	// The session expires with its idle timeout.
	e.clock.advance(11 * time.Minute)
	run(t, tab, "after idling", chromedp.Navigate(base+"/console/keys"), chromedp.WaitVisible(chromedp.CSS("#key")))

	// Sign out ends the session.
	signInWith(t, tab, base, e.root)
	run(t, tab, "signing out",
		chromedp.Click(chromedp.CSS(`form[action="/console/sign-out"] button`)),
		chromedp.WaitVisible(chromedp.CSS("#key")),
		chromedp.Navigate(base+"/console/keys"),
		chromedp.WaitVisible(chromedp.CSS("#key")),
	)
}

func TestBrowserAccountAdminIsConfined(t *testing.T) {
	e := newEnv(t)
	tab := newTab(t)
	accA, accB := e.account("alpha"), e.account("beta")
	userA := e.user(accA.ID, "ann")
	keyA := e.key(keyward.KeyCreate{AccountID: accA.ID, UserID: userA.ID, Role: keyward.RoleUser, Name: "alpha-key"})
	adminB := e.key(keyward.KeyCreate{AccountID: accB.ID, Role: keyward.RoleAccountAdmin, Name: "beta-admin"})
	base := e.ts.URL

	signInWith(t, tab, base, adminB.Secret)
	nav := read(t, tab, "reading the navigation", chromedp.OuterHTML(chromedp.CSS("header")))
	if strings.Contains(nav, `href="/console/accounts"`) || !strings.Contains(nav, accB.ID) {
		t.Error("an account admin's navigation offers all accounts, or not its own")
	}
	for _, path := range []string{"/console/accounts/" + accA.ID, "/console/keys/" + keyA.ID, "/console/accounts/" + accA.ID + "/users/" + userA.ID} {
		run(t, tab, "opening "+path, chromedp.Navigate(base+path), chromedp.WaitVisible(chromedp.CSS("h1")))
		body := read(t, tab, "reading "+path, chromedp.OuterHTML(chromedp.CSS("main")))
		if h := text(t, tab, "h1"); h != "Not found" || strings.Contains(body, "alpha") {
			t.Errorf("%s: h1 %q, want Not found and nothing of account alpha", path, h)
		}
	}
	run(t, tab, "opening its own account",
		chromedp.Navigate(base+"/console/accounts/"+accB.ID),
		chromedp.WaitVisible(chromedp.CSS("#external_id")),
	)
	if h := text(t, tab, "h1"); h != "Account beta" {
		t.Errorf("own account h1 = %q", h)
	}
}

// tabOrder presses Tab on tab's page: the first press must focus the skip
// link; it returns what each of the next n presses focuses ("A /href",
// "BUTTON text", "INPUT id"), joined by " | ".
func tabOrder(t *testing.T, tab context.Context, n int) string {
	t.Helper()
	focused := func() string {
		return read(t, tab, "reading the focus", chromedp.Evaluate[string](`(function(){var a=document.activeElement;return a.tagName+" "+(a.getAttribute("href")||a.id||a.textContent.trim())})()`))
	}
	run(t, tab, "first Tab", chromedp.KeyEvent("\t"))
	if f := focused(); f != "A #main" {
		t.Errorf("first Tab focuses %q, want the skip link", f)
	}
	var seen []string
	for range n {
		run(t, tab, "Tab", chromedp.KeyEvent("\t"))
		seen = append(seen, focused())
	}
	return strings.Join(seen, " | ")
}
