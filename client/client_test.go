package client_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/client"
)

// The end-to-end tests of the client against the real server live in
// package httpapi; these cover what needs a fake server.

const secret = "kw_root_secretsecretsecretsecretsecretsecretsecr000000"

func TestProblemToError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"type":"urn:keyward:error:not_found","title":"Not found","status":404,"detail":"key key_x not found","code":"not_found"}`)
	}))
	defer srv.Close()
	_, err := client.New(srv.URL, secret).Key(t.Context(), "key_x")
	var kerr *keyward.Error
	if !errors.As(err, &kerr) || kerr.Code != keyward.ENOTFOUND || kerr.Message != "key key_x not found" {
		t.Fatalf("err = %#v", err)
	}
	if keyward.ErrorCode(err) != keyward.ENOTFOUND {
		t.Errorf("ErrorCode = %q", keyward.ErrorCode(err))
	}
}

func TestNonProblemError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "<html>bad gateway</html>")
	}))
	defer srv.Close()
	_, err := client.New(srv.URL, secret).WhoAmI(t.Context())
	if keyward.ErrorCode(err) != keyward.EUNAVAILABLE || !strings.Contains(err.Error(), srv.URL) {
		t.Fatalf("err = %v", err)
	}
}

func TestConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	l.Close()
	_, err = client.New(url, secret).WhoAmI(t.Context())
	if keyward.ErrorCode(err) != keyward.EUNAVAILABLE {
		t.Fatalf("code = %q, want unavailable (%v)", keyward.ErrorCode(err), err)
	}
	if !strings.Contains(keyward.ErrorMessage(err), url) {
		t.Errorf("message %q does not name %s", keyward.ErrorMessage(err), url)
	}
	if strings.Contains(err.Error(), secret) {
		t.Error("the error holds the key")
	}
}

// TestRequests checks what the client sends: URL, escaping, headers, query.
func TestRequests(t *testing.T) {
	var got []*http.Request
	rt := roundTripper(func(r *http.Request) (*http.Response, error) {
		got = append(got, r)
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(`{"items":[],"next":"acc_2"}`)), Request: r}, nil
	})

	// The zero value talks to DefaultURL without a key.
	var zero client.Client
	zero.HTTPClient = &http.Client{Transport: rt}
	l, err := zero.Accounts(t.Context(), keyward.Page{After: "acc_1", Limit: 5000})
	if err != nil || l.Next != "acc_2" {
		t.Fatalf("Accounts: %+v, %v", l, err)
	}
	r := got[0]
	if r.URL.String() != client.DefaultURL+"/v1/accounts?after=acc_1&limit=1000" || r.Header.Get("Authorization") != "" {
		t.Errorf("zero client sent %s %s auth %q", r.Method, r.URL, r.Header.Get("Authorization"))
	}

	c := client.New("https://keyward.example.com/base/", secret)
	c.Agent = "ci"
	c.HTTPClient = &http.Client{Transport: rt}
	c.Keys(t.Context(), keyward.KeyFilter{AccountID: "acc_1", Role: keyward.RoleUser}, keyward.Page{})
	c.User(t.Context(), "acc/1", "")
	r = got[1]
	if r.URL.String() != "https://keyward.example.com/base/v1/keys?account_id=acc_1&role=user" ||
		r.Header.Get("Authorization") != "Bearer "+secret || r.Header.Get("X-Keyward-Agent") != "ci" {
		t.Errorf("sent %s %s headers %v", r.Method, r.URL, r.Header)
	}
	if p := got[2].URL.EscapedPath(); p != "/base/v1/accounts/acc%2F1/users/-" {
		t.Errorf("escaped path = %s", p)
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestDependencies keeps the client light: SDK users must not pull in a
// database driver or Prometheus. Besides the root package it may import the
// permission language the domain is written in (standard library only).
func TestDependencies(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep != "github.com/keyward/keyward" && dep != "github.com/keyward/keyward/client" && dep != "github.com/keyward/keyward/permission" {
			t.Errorf("client depends on %s; it may import only the standard library, the root package and permission", dep)
		}
	}
}

// TestRedirectsAreNotFollowed: a redirect would carry the API key and the
// body (a key being verified) to wherever it points.
func TestRedirectsAreNotFollowed(t *testing.T) {
	var followed bool
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		followed = true
	}))
	defer target.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+r.URL.Path, http.StatusPermanentRedirect)
	}))
	defer srv.Close()
	res, err := client.New(srv.URL, secret).VerifyKey(t.Context(), keyward.VerifyRequest{Key: "kw_user_x"})
	if err == nil || res != nil {
		t.Fatalf("VerifyKey through a redirect = %+v, %v; want nil and an error", res, err)
	}
	if followed {
		t.Fatal("the client followed the redirect")
	}
}
