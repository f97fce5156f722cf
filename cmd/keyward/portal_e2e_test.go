package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

// TestPortalServed: serve mounts the end-user portal at /portal: a link
// from POST /v1/portal/sessions, on the address the caller used, works
// once in a browser-like client (a session cookie, the keys page) and is
// refused the second time.
func TestPortalServed(t *testing.T) {
	requireBinary(t)
	p := startBinary(t, filepath.Join(t.TempDir(), "data"))
	root := rootKey(t, p)
	var acc keyward.Account
	st, body := apiCall(t, p.url, "POST", "/v1/accounts", root, "", map[string]any{"name": "shop"})
	if st != http.StatusCreated || json.Unmarshal(body, &acc) != nil {
		t.Fatalf("create account: %d %s", st, body)
	}
	if st, body := apiCall(t, p.url, "POST", "/v1/accounts/"+acc.ID+"/users", root, "", map[string]any{"name": "alice", "external_id": "cust-1"}); st != http.StatusCreated {
		t.Fatalf("create user: %d %s", st, body)
	}
	var link keyward.PortalLink
	st, body = apiCall(t, p.url, "POST", "/v1/portal/sessions", root, "", map[string]any{"account_id": acc.ID, "external_id": "cust-1", "return_url": "https://shop.example/"})
	if st != http.StatusCreated || json.Unmarshal(body, &link) != nil || !strings.HasPrefix(link.URL, p.url+"/portal/link/") {
		t.Fatalf("create portal session: %d %s", st, body)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, page := get(link.URL); st != http.StatusOK || !strings.Contains(page, "Your API keys") {
		t.Fatalf("the link: %d %.300s", st, page)
	}
	if st, page := get(link.URL); st != http.StatusNotFound || !strings.Contains(page, "cannot be used") {
		t.Fatalf("the link again: %d %.300s", st, page)
	}
	p.stop(t)
}
