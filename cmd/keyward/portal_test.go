package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

// TestPortalCLI hands out a portal link and brands the portal against an
// in-process server: the link is printed once, works once and is refused
// the second time; an admin cannot grant what it lacks; bad input is one
// line with a non-zero exit and changes nothing.
func TestPortalCLI(t *testing.T) {
	s := startServer(t, nil)
	root := s.rootKey
	var acme keyward.Account
	s.okJSON(t, root, &acme, "accounts", "create", "--name", "acme")
	var u keyward.User
	s.okJSON(t, root, &u, "users", "create", "--account", acme.ID, "--name", "alice", "--external-id", "cust-1")
	var admin keyward.CreatedKey
	s.okJSON(t, root, &admin, "keys", "create", "--account", acme.ID, "--role", "account_admin", "--permission", "notes:*")

	var link keyward.PortalLink
	s.okJSON(t, admin.Secret, &link, "portal", "link", "--external-id", "cust-1", "--return-url", "https://shop.example/",
		"--permission", "notes:read", "--link-ttl", "2m")
	if !strings.HasPrefix(link.URL, s.url+"/portal/link/") || link.UserID != u.ID || link.AccountID != acme.ID ||
		len(link.Permissions) != 1 || link.LinkExpiresAt.Sub(link.CreatedAt).Minutes() != 2 {
		t.Fatalf("portal link = %+v", link)
	}
	if out := s.ok(t, admin.Secret, "portal", "link", "--external-id", "cust-1", "--return-url", "https://shop.example/"); !strings.HasPrefix(out, s.url+"/portal/link/") || !strings.Contains(out, "usable once until") {
		t.Errorf("portal link (table):\n%s", out)
	}

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	open := func() int {
		t.Helper()
		resp, err := browser.Get(link.URL)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := open(); st != http.StatusOK {
		t.Fatalf("the link: %d, want 200", st)
	}
	if st := open(); st != http.StatusNotFound {
		t.Errorf("the link again: %d, want 404", st)
	}

	s.fails(t, ExitForbidden, admin.Secret, "portal", "link", "--external-id", "cust-1", "--return-url", "https://shop.example/", "--permission", "billing:read")
	s.fails(t, ExitNotFound, admin.Secret, "portal", "link", "--external-id", "nobody", "--return-url", "https://shop.example/")
	s.fails(t, ExitUsage, admin.Secret, "portal", "link", "--external-id", "cust-1", "--return-url", "javascript:alert(1)")
	s.fails(t, ExitUsage, admin.Secret, "portal", "link", "--external-id", "cust-1")

	var b keyward.PortalBranding
	s.okJSON(t, admin.Secret, &b, "portal", "branding", "--account", acme.ID, "--set", "--title", "Acme keys", "--accent-color", "#112233")
	if b.Title != "Acme keys" || b.AccentColor != "#112233" {
		t.Fatalf("portal branding --set = %+v", b)
	}
	s.fails(t, ExitUsage, admin.Secret, "portal", "branding", "--account", acme.ID, "--set", "--accent-color", "red;}body{")
	if out := s.ok(t, admin.Secret, "portal", "branding", "--account", acme.ID); !strings.Contains(out, "Acme keys") || !strings.Contains(out, "#112233") {
		t.Errorf("portal branding after a refused change:\n%s", out)
	}
}
