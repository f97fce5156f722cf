package apikey

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestFromHeaders(t *testing.T) {
	const k = "kw_user_abc"
	cases := []struct {
		name    string
		headers map[string][]string
		want    string
		err     error
	}{
		{"bearer", map[string][]string{"Authorization": {"Bearer " + k}}, k, nil},
		{"bearer lowercase scheme", map[string][]string{"Authorization": {"bearer " + k}}, k, nil},
		{"x-api-key", map[string][]string{"X-Api-Key": {k}}, k, nil},
		{"both equal", map[string][]string{"Authorization": {"Bearer " + k}, "X-Api-Key": {k}}, k, nil},
		{"both different", map[string][]string{"Authorization": {"Bearer " + k}, "X-Api-Key": {k + "x"}}, "", ErrAmbiguousCredential},
		{"two authorization", map[string][]string{"Authorization": {"Bearer " + k, "Bearer " + k}}, "", ErrAmbiguousCredential},
		{"two x-api-key", map[string][]string{"X-Api-Key": {k, k}}, "", ErrAmbiguousCredential},
		{"none", map[string][]string{}, "", ErrNoCredential},
		{"basic", map[string][]string{"Authorization": {"Basic dXNlcjpwYXNz"}}, "", ErrBadAuthorization},
		{"bearer empty", map[string][]string{"Authorization": {"Bearer "}}, "", ErrBadAuthorization},
		{"empty x-api-key", map[string][]string{"X-Api-Key": {" "}}, "", ErrNoCredential},
	}
	for _, c := range cases {
		h := http.Header{}
		for name, vs := range c.headers {
			for _, v := range vs {
				h.Add(name, v)
			}
		}
		got, err := FromHeaders(h)
		if got != c.want || err != c.err {
			t.Errorf("%s: FromHeaders = %q, %v; want %q, %v", c.name, got, err, c.want, c.err)
		}
	}
}

func TestFromRequestIgnoresQuery(t *testing.T) {
	r := httptest.NewRequest("GET", "/v1/whoami?api_key=kw_user_abc&key=kw_user_abc", nil)
	if _, err := FromRequest(r); err != ErrNoCredential {
		t.Fatalf("FromRequest read the query string: err = %v", err)
	}
}

func FuzzFromHeaders(f *testing.F) {
	f.Add("Bearer kw_user_abc", "")
	f.Add("", "kw_user_abc")
	f.Add("Bearer a", "b")
	f.Add("bearer  x ", " x")
	f.Fuzz(func(t *testing.T, auth, key string) {
		h := http.Header{}
		if auth != "" {
			h.Set("Authorization", auth)
		}
		if key != "" {
			h.Set("X-API-Key", key)
		}
		got, err := FromHeaders(h)
		if err != nil {
			if got != "" {
				t.Fatalf("error %v with credential %q", err, got)
			}
			return
		}
		if got == "" || got != strings.TrimSpace(got) {
			t.Fatalf("accepted credential %q", got)
		}
		// The credential comes from one of the headers, never made up.
		if !strings.Contains(auth, got) && !strings.Contains(key, got) {
			t.Fatalf("credential %q from neither header (%q, %q)", got, auth, key)
		}
		// When both are present they agree.
		if auth != "" && key != "" && strings.TrimSpace(key) != got {
			t.Fatalf("headers disagree but accepted %q", got)
		}
	})
}
