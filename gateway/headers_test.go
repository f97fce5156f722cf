package gateway

import (
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for _, tc := range []struct {
		remote string
		xff    []string
		want   string
	}{
		{"192.0.2.1:1234", []string{"203.0.113.1"}, "192.0.2.1"},
		{"10.0.0.1:1234", nil, "10.0.0.1"},
		{"10.0.0.1:1234", []string{"203.0.113.1"}, "203.0.113.1"},
		{"10.0.0.1:1234", []string{"198.51.100.1, 203.0.113.1, 10.0.0.2"}, "203.0.113.1"},
		{"10.0.0.1:1234", []string{"198.51.100.1", "203.0.113.1 , 10.0.0.2,"}, "203.0.113.1"},
		{"10.0.0.1:1234", []string{"10.0.0.3, 10.0.0.2"}, "10.0.0.3"},
		{"10.0.0.1:1234", []string{"203.0.113.1, nonsense"}, "10.0.0.1"},
		{"10.0.0.1:1234", []string{"nonsense, 10.0.0.2"}, "10.0.0.2"},
		{"10.0.0.1:1234", []string{"[2001:db8::1]:443"}, "2001:db8::1"},
		{"10.0.0.1:1234", []string{"::ffff:203.0.113.5"}, "203.0.113.5"},
		{"[::1]:80", []string{"203.0.113.1:5555"}, "203.0.113.1"},
		{"[::ffff:10.0.0.1]:80", []string{"203.0.113.1"}, "203.0.113.1"},
		{"bogus", []string{"203.0.113.1"}, "invalid IP"},
	} {
		if got := clientIP(tc.remote, tc.xff, trusted).String(); got != tc.want {
			t.Errorf("clientIP(%q, %q) = %s, want %s", tc.remote, tc.xff, got, tc.want)
		}
	}
}

// FuzzClientIP checks the forwarded-header parsing on any input: no panic;
// an untrusted peer is always the answer; the answer is the peer or an
// address of the chain; it is trusted only if the whole verified chain is.
func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.1:1", "203.0.113.1, 10.0.0.2")
	f.Add("192.0.2.1:1", "203.0.113.1")
	f.Add("[::1]:1", "[2001:db8::1]:80,,unknown, ::ffff:1.2.3.4")
	f.Add("10.0.0.1:1", "\x00,\xff,[,]")
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		lines := strings.Split(xff, "\n")
		got := clientIP(remote, lines, trusted)
		peer := parseAddr(remote)
		if !peer.IsValid() {
			if got.IsValid() {
				t.Fatalf("invalid peer %q gave %s", remote, got)
			}
			return
		}
		if !isTrusted(peer, trusted) {
			if got != peer {
				t.Fatalf("untrusted peer %s: got %s", peer, got)
			}
			return
		}
		if got == peer {
			return
		}
		var chain []netip.Addr
		for _, l := range lines {
			for _, e := range strings.Split(l, ",") {
				chain = append(chain, parseAddr(strings.TrimSpace(e)))
			}
		}
		if !slices.Contains(chain, got) {
			t.Fatalf("%s is neither the peer nor in the chain %q", got, xff)
		}
		if got.Zone() != "" || got.Is4In6() {
			t.Fatalf("%s not normalised", got)
		}
	})
}

// FuzzCanonicalPath checks that a path accepted as canonical routes the
// same as its cleaned form would.
func FuzzCanonicalPath(f *testing.F) {
	for _, p := range []string{"/", "/a/b/", "/a/../b", "//a", "/a/./b", "/.", "/a/.."} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if !canonicalPath(p) {
			return
		}
		for _, seg := range strings.Split(p[1:], "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("%q accepted with a dot segment", p)
			}
		}
		if strings.Contains(p, "//") {
			t.Fatalf("%q accepted with //", p)
		}
	})
}

func TestHeaderSetFolds(t *testing.T) {
	s := newHeaderSet("X-Keyward-User")
	h := http.Header{"X-Keyward-User": {"a"}, "X_keyward_user": {"b"}, "x-keyward-user": {"c"}, "X-Keyward-Users": {"keep"}}
	s.remove(h)
	if len(h) != 1 || h.Get("X-Keyward-Users") != "keep" {
		t.Errorf("after remove: %v", h)
	}
}
