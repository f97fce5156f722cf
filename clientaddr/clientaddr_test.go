package clientaddr_test

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/keyward/keyward/clientaddr"
)

var trusted = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("2001:db8:ffff::/48"),
}

// TestFrom pins the rule, including the inputs on which the gateway, the
// middleware and the admin API once disagreed.
func TestFrom(t *testing.T) {
	for _, tc := range []struct {
		name, peer string
		xff        []string
		want       string // "" for unknown
	}{
		{"untrusted peer, header ignored", "198.51.100.9:1234", []string{"203.0.113.7"}, "198.51.100.9"},
		{"trusted peer without header", "10.0.0.1:1234", nil, "10.0.0.1"},
		{"trusted peer, one client", "10.0.0.1:1234", []string{"203.0.113.7"}, "203.0.113.7"},
		{"trailing empty element", "10.0.0.1:1234", []string{"203.0.113.7, "}, "203.0.113.7"},
		{"empty elements everywhere", "10.0.0.1:1234", []string{" , 203.0.113.7,,\t, "}, "203.0.113.7"},
		{"bracketed IPv6 without port", "10.0.0.1:1234", []string{"[2001:db8::1]"}, "2001:db8::1"},
		{"bracketed IPv6 with port", "10.0.0.1:1234", []string{"[2001:db8::1]:443"}, "2001:db8::1"},
		{"bare IPv6", "10.0.0.1:1234", []string{"2001:db8::1"}, "2001:db8::1"},
		{"IPv4 with port", "10.0.0.1:1234", []string{"203.0.113.7:41234"}, "203.0.113.7"},
		{"zone dropped", "10.0.0.1:1234", []string{"fe80::1%eth0"}, "fe80::1"},
		{"IPv4-mapped unmapped", "10.0.0.1:1234", []string{"::ffff:203.0.113.7"}, "203.0.113.7"},
		{"right-most untrusted wins", "10.0.0.1:1234", []string{"192.0.2.1, 203.0.113.7, 10.0.0.2"}, "203.0.113.7"},
		{"several header lines", "10.0.0.1:1234", []string{"192.0.2.1", "203.0.113.7, 10.0.0.2"}, "203.0.113.7"},
		{"garbage stops at last trusted hop", "10.0.0.1:1234", []string{"203.0.113.7, unknown, 10.0.0.2"}, "10.0.0.2"},
		{"garbage left of trusted hops", "10.0.0.1:1234", []string{"nonsense, 10.0.0.2"}, "10.0.0.2"},
		{"garbage right after the peer", "10.0.0.1:1234", []string{"203.0.113.7, _hidden"}, "10.0.0.1"},
		{"only trusted hops", "10.0.0.1:1234", []string{"10.0.0.3, 10.0.0.2"}, "10.0.0.3"},
		{"trusted IPv6 peer", "[2001:db8:ffff::5]:443", []string{"203.0.113.7"}, "203.0.113.7"},
		{"mapped trusted peer", "[::ffff:10.0.0.1]:443", []string{"203.0.113.7"}, "203.0.113.7"},
		{"unparsable peer", "@", []string{"203.0.113.7"}, ""},
		{"empty peer", "", nil, ""},
		{"bracketed IPv4 is garbage", "10.0.0.1:1234", []string{"[203.0.113.7]"}, "10.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := clientaddr.From(tc.peer, tc.xff, trusted)
			if tc.want == "" {
				if got.IsValid() {
					t.Fatalf("From(%q, %q) = %v, want unknown", tc.peer, tc.xff, got)
				}
				return
			}
			if got != netip.MustParseAddr(tc.want) {
				t.Fatalf("From(%q, %q) = %v, want %s", tc.peer, tc.xff, got, tc.want)
			}
			r := &http.Request{RemoteAddr: tc.peer, Header: http.Header{}}
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if g := clientaddr.FromRequest(r, trusted); g != got {
				t.Fatalf("FromRequest = %v, From = %v", g, got)
			}
		})
	}
}

func TestPeerTrusted(t *testing.T) {
	for peer, want := range map[string]bool{
		"10.1.2.3:80": true, "[::ffff:10.1.2.3]:80": true, "[2001:db8:ffff::1]:80": true,
		"198.51.100.1:80": false, "garbage": false, "": false,
	} {
		if got := clientaddr.PeerTrusted(peer, trusted); got != want {
			t.Errorf("PeerTrusted(%q) = %v, want %v", peer, got, want)
		}
	}
}

// reference is the rule written as plainly as possible: the oracle of the
// fuzz test.
func reference(peer string, xff []string, trusted []netip.Prefix) netip.Addr {
	ip := clientaddr.Parse(peer)
	if !ip.IsValid() || !clientaddr.Trusted(ip, trusted) {
		return ip
	}
	var elems []string
	for _, line := range xff {
		for _, e := range strings.Split(line, ",") {
			if e = strings.Trim(e, " \t"); e != "" {
				elems = append(elems, e)
			}
		}
	}
	for i := len(elems) - 1; i >= 0; i-- {
		hop := clientaddr.Parse(elems[i])
		if !hop.IsValid() {
			return ip
		}
		ip = hop
		if !clientaddr.Trusted(ip, trusted) {
			return ip
		}
	}
	return ip
}

func FuzzFrom(f *testing.F) {
	for _, s := range [][3]string{
		{"10.0.0.1:1234", "203.0.113.7, ", ""},
		{"10.0.0.1:1234", "[2001:db8::1]", "10.0.0.2"},
		{"10.0.0.1:1234", "203.0.113.7, unknown, 10.0.0.2", ""},
		{"[2001:db8:ffff::5]:443", "fe80::1%eth0,::ffff:1.2.3.4", "[2001:db8::1]:80"},
		{"198.51.100.9:1", "1.2.3.4", ""},
		{"[::ffff:10.0.0.1]:443", ",,", "\t"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, peer, line1, line2 string) {
		xff := []string{line1, line2}
		got := clientaddr.From(peer, xff, trusted)
		if want := reference(peer, xff, trusted); got != want {
			t.Fatalf("From(%q, %q) = %v, reference %v", peer, xff, got, want)
		}
		p := clientaddr.Parse(peer)
		switch {
		case !p.IsValid():
			if got.IsValid() {
				t.Fatalf("unknown peer %q gave %v", peer, got)
			}
			return
		case !clientaddr.Trusted(p, trusted) && got != p:
			t.Fatalf("untrusted peer %q: got %v, want the peer", peer, got)
		}
		if !got.IsValid() || got.Zone() != "" || got.Is4In6() {
			t.Fatalf("From(%q, %q) = %#v: want a valid, unmapped address without zone", peer, xff, got)
		}
	})
}
