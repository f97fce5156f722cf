// Package clientaddr finds the address of the client of an HTTP request,
// believing X-Forwarded-For only from trusted proxies. It is the one rule
// the admin API, the gateway, forward-auth and the middleware share, so
// the IP rules and brute-force blocking see the same client wherever a
// request arrives. It depends on the standard library only.
//
// # The rule
//
//  1. The peer is the request's RemoteAddr: "ip:port", "[ipv6]:port", a
//     bare address or "[ipv6]". If it is none of these the client is
//     unknown (the zero netip.Addr) and X-Forwarded-For is ignored.
//  2. A peer that is not a trusted proxy is the client: its
//     X-Forwarded-For, which anyone can send, is ignored.
//  3. From a trusted proxy, the X-Forwarded-For elements (every line of
//     the header in order, split at commas) are walked from the right.
//     Elements empty after trimming spaces and tabs are skipped. The
//     first element that is not a trusted proxy is the client. An element
//     that is not an address (garbage, "unknown", an obfuscated
//     identifier) ends the walk: the client is then the last trusted hop
//     read, the address to its right, since nothing left of it can be
//     believed.
//  4. A chain made only of trusted proxies (or none at all) gives the
//     left-most trusted hop: the proxy's own address. Abuse detection
//     never counts nor blocks a trusted proxy, so such requests cannot
//     get the proxy blocked for everyone behind it.
//
// An element is an address as in rule 1, and may also carry a port
// ("203.0.113.7:41234"). Every address is returned unmapped (an
// IPv4-mapped IPv6 address as IPv4) and without its zone, and trust is
// decided on that form.
package clientaddr

import (
	"net/http"
	"net/netip"
	"strings"
)

// HeaderForwardedFor is the header From reads.
const HeaderForwardedFor = "X-Forwarded-For"

// FromRequest returns the client address of r under the package's rule,
// trusting the X-Forwarded-For of peers in trusted; the zero Addr when it is
// unknown.
func FromRequest(r *http.Request, trusted []netip.Prefix) netip.Addr {
	return From(r.RemoteAddr, r.Header[HeaderForwardedFor], trusted)
}

// From returns the client address of a request from peer remoteAddr with the
// X-Forwarded-For header lines xff, trusting the header of peers in
// trusted; the zero Addr when it is unknown. See the package documentation
// for the rule.
func From(remoteAddr string, xff []string, trusted []netip.Prefix) netip.Addr {
	ip := Parse(remoteAddr)
	if !ip.IsValid() || !Trusted(ip, trusted) {
		return ip
	}
	for i := len(xff) - 1; i >= 0; i-- {
		line := xff[i]
		for line != "" {
			var elem string
			if j := strings.LastIndexByte(line, ','); j >= 0 {
				line, elem = line[:j], line[j+1:]
			} else {
				line, elem = "", line
			}
			elem = strings.Trim(elem, " \t")
			if elem == "" {
				continue
			}
			hop := Parse(elem)
			if !hop.IsValid() {
				return ip
			}
			ip = hop
			if !Trusted(ip, trusted) {
				return ip
			}
		}
	}
	return ip
}

// Parse reads one address: "ip", "ip:port", "[ipv6]" or "[ipv6]:port",
// unmapped and without its zone; the zero Addr if s is none of these.
func Parse(s string) netip.Addr {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone("")
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Is6() {
			return a.Unmap().WithZone("")
		}
	}
	return netip.Addr{}
}

// Trusted reports whether a, a valid address, lies in one of the trusted
// proxies' networks.
func Trusted(a netip.Addr, trusted []netip.Prefix) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// PeerTrusted reports whether the peer remoteAddr is a trusted proxy: only
// then may its forwarding headers (X-Forwarded-Host, -Proto, -For) be
// believed.
func PeerTrusted(remoteAddr string, trusted []netip.Prefix) bool {
	return Trusted(Parse(remoteAddr), trusted)
}

// HTTPS reports whether the client reached keyward over https: TLS ends
// here, or a trusted proxy says so in X-Forwarded-Proto.
func HTTPS(r *http.Request, trusted []netip.Prefix) bool {
	if r.TLS != nil {
		return true
	}
	return PeerTrusted(r.RemoteAddr, trusted) && r.Header.Get("X-Forwarded-Proto") == "https"
}
