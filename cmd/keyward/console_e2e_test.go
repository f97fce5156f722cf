package main

// End-to-end tests of the web console served by the real binary: on by
// default at /console, its failed sign-ins blocked by the same
// brute-force protection as the API's, and turned off by console.disabled.

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var consoleCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// consoleSignIn signs in to the console at base with key through its form
// and returns the status of the POST (303 when signed in).
func consoleSignIn(t *testing.T, base, key string) int {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(base + "/console/sign-in")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := consoleCSRF.FindSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("sign-in page: %d %.200s", resp.StatusCode, body)
	}
	resp, err = c.PostForm(base+"/console/sign-in", url.Values{"key": {key}, "csrf": {string(m[1])}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestConsoleServedAndGuarded: serve mounts the console at /console; 25
// wrong keys posted to its sign-in form block the address as 25 wrong API
// keys would (a wrong key on the API is then refused with 403), while the
// real root key still signs in from it.
func TestConsoleServedAndGuarded(t *testing.T) {
	requireBinary(t)
	p := startBinary(t, filepath.Join(t.TempDir(), "data"))
	root := rootKey(t, p)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(p.url + "/console")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 3 || resp.Header.Get("Location") != "/console/" {
		t.Fatalf("GET /console: %d %q, want a redirect to /console/", resp.StatusCode, resp.Header.Get("Location"))
	}
	if s := consoleSignIn(t, p.url, root); s != http.StatusSeeOther {
		t.Fatalf("root sign-in: %d, want 303", s)
	}
	for i := range 25 {
		if s := consoleSignIn(t, p.url, fmt.Sprintf("kw_root_bad%d", i)); s != http.StatusUnauthorized && s != http.StatusForbidden {
			t.Fatalf("wrong sign-in %d: %d, want 401 or 403", i, s)
		}
	}
	eventually(t, waitTimeout, "the address blocked after wrong console sign-ins", func() string {
		if s := whoami(t, p.url, "kw_root_bad_api", ""); s != http.StatusForbidden {
			return fmt.Sprint(s)
		}
		return ""
	})
	if s := consoleSignIn(t, p.url, "kw_root_bad_console"); s != http.StatusForbidden {
		t.Errorf("a wrong console sign-in from the blocked address: %d, want 403", s)
	}
	if s := consoleSignIn(t, p.url, root); s != http.StatusSeeOther {
		t.Errorf("the real root key signing in from the blocked address: %d, want 303", s)
	}
	if strings.Contains(p.stderr.String(), root) {
		t.Error("the root key is in the log")
	}
	p.stop(t)
}

// TestConsoleDisabled: console.disabled leaves /console to the API, which
// knows no such path.
func TestConsoleDisabled(t *testing.T) {
	requireBinary(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "keyward.yaml")
	if err := os.WriteFile(cfg, []byte("console:\n  disabled: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startBinary(t, filepath.Join(dir, "data"), "--config", cfg)
	resp, err := http.Get(p.url + "/console/sign-in")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		t.Errorf("GET /console/sign-in with the console off: %d %q, want the API's 404", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// The end-user portal goes with it: its pages, and the links to them.
	resp, err = http.Get(p.url + "/portal/link/kwp_x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		t.Errorf("GET /portal/link/... with the console off: %d %q, want the API's 404", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	resp, err = http.Post(p.url+"/v1/portal/sessions", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("POST /v1/portal/sessions with the console off: %d, want 404", resp.StatusCode)
	}
	p.stop(t)
}
