package webhook

import (
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"

	"github.com/keyward/keyward"
)

// Guard keeps webhook deliveries off internal networks (server-side request
// forgery): a target that is, or resolves to, a loopback, private,
// link-local, multicast or otherwise non-public address is refused unless
// one of Allow contains it. The check runs on the address actually dialled,
// so a name that resolves to an internal address (DNS rebinding included)
// is refused as well.
type Guard struct {
	// Allow lists the internal networks deliveries may reach (for
	// example 127.0.0.0/8 for a receiver on the same machine).
	Allow []netip.Prefix
}

// nonPublic lists special-purpose ranges (RFC 6890 and successors) that
// netip's predicates do not cover.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and broadcast
	netip.MustParsePrefix("192.88.99.0/24"),  // 6to4 relay anycast
	netip.MustParsePrefix("::/96"),           // IPv4-compatible: reaches IPv4 inside
	netip.MustParsePrefix("2002::/16"),       // 6to4: reaches IPv4 inside
	netip.MustParsePrefix("2001::/32"),       // Teredo: reaches IPv4 inside
	netip.MustParsePrefix("fec0::/10"),       // deprecated site-local
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64: reaches IPv4 inside
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local NAT64
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
}

// CheckAddr returns EINVALID if deliveries may not reach ip.
func (g Guard) CheckAddr(ip netip.Addr) error {
	ip = ip.Unmap()
	for _, p := range g.Allow {
		if p.Contains(ip) {
			return nil
		}
	}
	internal := !ip.IsGlobalUnicast() || ip.IsPrivate()
	for _, p := range nonPublic {
		internal = internal || p.Contains(ip)
	}
	if internal {
		return keyward.Errorf(keyward.EINVALID, "webhook target address %s is on an internal network: use a public address, or allow the network with webhooks.allow_networks", ip)
	}
	return nil
}

// CheckURL returns EINVALID unless raw is an absolute http or https URL
// without credentials whose host, when it is an address or localhost, may
// be reached. Names are checked again, resolved, when dialled.
func (g Guard) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return keyward.Errorf(keyward.EINVALID, "webhook url %q is not an absolute URL: write https://host/path", raw)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return keyward.Errorf(keyward.EINVALID, "webhook url scheme %q: use https (or http)", u.Scheme)
	}
	if u.User != nil {
		return keyward.Errorf(keyward.EINVALID, "webhook url carries credentials: remove them; receivers authenticate deliveries by their signature")
	}
	if u.Fragment != "" {
		return keyward.Errorf(keyward.EINVALID, "webhook url has a #fragment, which is never sent: remove it")
	}
	host := strings.ToLower(u.Hostname())
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		host = "127.0.0.1"
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return g.CheckAddr(ip)
	}
	return nil
}

// control is a net.Dialer Control function: it refuses a connection to an
// address CheckAddr refuses, after name resolution.
func (g Guard) control(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return err
	}
	return g.CheckAddr(ip)
}
