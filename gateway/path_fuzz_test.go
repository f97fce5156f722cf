package gateway

import (
	"context"
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

// FuzzParsePath checks that a path parsePath and the router accept is one
// that no looser reading of the forwarded bytes routes elsewhere: decoding
// until nothing is left to decode, cutting ";params", taking '\' for '/',
// resolving dot segments and repeated slashes, and folding case onto a
// case-insensitive route. It also checks that the forwarded form decodes
// to the checked path, is what the proxy sends, and parses to itself.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{
		"/", "/docs", "/%64ocs", "/ADMIN", "/%41dmin/x", "/admin;x", "/admin%3bx/users", "/admin%5cx",
		"/x/..;/admin/users", "/x/%2e%2e/admin", "/%2561dmin", "/%25%36%31dmin", "/admin%00", "/x%C0%AFadmin",
		"/files/a%20b/%C3%A9t%C3%A9", "/files/%7euser", "/jsession/x;jsessionid=1", "/jsession/a%5Cb",
		"/jsession;x/../admin", "/;/admin", "/x;/admin", `/jsession\..\admin`, "/files/a!$&'()*+,=:@b", "/%C3%A9",
		"/jsession/x%3b/admin", "/jsession\\/admin", "/ADMIN%2F", "/K",
	} {
		f.Add(s)
	}
	routes := []Route{
		{PathPrefix: "/", Exempt: []string{"/docs"}, AllowSemicolon: true},
		{PathPrefix: "/admin", CaseInsensitive: true},
		{PathPrefix: "/admin/kelvin", CaseInsensitive: true},
		{PathPrefix: "/files"},
		{PathPrefix: "/jsession", AllowSemicolon: true, AllowBackslash: true},
	}
	if err := Validate(Config{Verifier: nopVerifier{}, Routes: routes}, false); err != nil {
		f.Fatal(err)
	}
	rt := newRouter(routes)
	f.Fuzz(func(t *testing.T, escaped string) { checkCanonical(t, rt, escaped) })
}

// checkCanonical fails t if escaped, once parsed and routed by rt, could
// be routed elsewhere by a looser reading.
func checkCanonical(t *testing.T, rt *router, escaped string) {
	t.Helper()
	p, err := parsePath(escaped)
	if err != nil {
		return
	}
	r, err := rt.resolve("", p)
	if err != nil || r == nil {
		return
	}
	if dec, err := url.PathUnescape(p.raw); err != nil || dec != p.path {
		t.Fatalf("%q: forwarded %q decodes to %q (%v), checked %q", escaped, p.raw, dec, err, p.path)
	}
	if sent := (&url.URL{Path: p.path, RawPath: p.raw}).EscapedPath(); sent != p.raw {
		t.Fatalf("%q: the proxy would send %q, not %q", escaped, sent, p.raw)
	}
	if again, err := parsePath(p.raw); err != nil || again != p {
		t.Fatalf("%q: the forwarded %q parses to %+v (%v), not %+v", escaped, p.raw, again, err, p)
	}
	for _, l := range looserReadings(p.raw) {
		if lr := rt.match("", l); lr != r {
			t.Fatalf("%q: checked as %q on route %s, an upstream reading %q routes it to %s", escaped, p.path, r.name, l, name(lr))
		}
		if r.exempt[p.path] && l != p.path {
			t.Fatalf("%q: exempt %q is read as %q", escaped, p.path, l)
		}
		if fr := rt.match("", strings.ToLower(l)); fr != nil && fr.CaseInsensitive && fr != r {
			t.Fatalf("%q: checked on route %s, %q folds onto case-insensitive route %s", escaped, r.name, l, fr.name)
		}
	}
}

// looserReadings returns how upstreams may read the escaped path raw.
func looserReadings(raw string) []string {
	d := raw
	for {
		next, err := url.PathUnescape(d)
		if err != nil || next == d {
			break
		}
		d = next
	}
	bs := func(s string) string { return strings.ReplaceAll(s, `\`, "/") }
	var out []string
	for _, s := range []string{d, bs(d), stripParams(d), bs(stripParams(d)), stripParams(bs(d))} {
		out = append(out, s, cleanDots(s))
	}
	return out
}

// cleanDots resolves dot segments and repeated slashes, keeping a
// trailing slash.
func cleanDots(s string) string {
	c := path.Clean(s)
	if strings.HasSuffix(s, "/") && c != "/" {
		c += "/"
	}
	return c
}

func name(r *route) string {
	if r == nil {
		return "(none)"
	}
	return r.name
}

// nopVerifier lets Validate accept a Config; nothing here verifies keys.
type nopVerifier struct{}

func (nopVerifier) VerifyKey(context.Context, keyward.VerifyRequest) (*keyward.VerifyResult, error) {
	return nil, nil
}
