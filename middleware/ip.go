package middleware

import (
	"net/http"
	"net/netip"
	"strings"
)

// clientIP returns the address of the client of r: the peer, or, when the
// peer is a trusted proxy, the right-most X-Forwarded-For address that is
// not one. An invalid Addr means unknown.
func clientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := parseAddr(r.RemoteAddr)
	if !peer.IsValid() || !isTrusted(peer, trusted) {
		return peer
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	ip := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a := parseAddr(strings.TrimSpace(hops[i]))
		if !a.IsValid() {
			// Garbage in the chain: the last proxy we trust is the
			// best we know.
			break
		}
		ip = a
		if !isTrusted(a, trusted) {
			break
		}
	}
	return ip
}

// parseAddr reads "ip", "ip:port" or "[ip]:port".
func parseAddr(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
