package keyward_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

func TestParsePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.0/8":      "10.0.0.0/8",
		"10.1.2.3/8":      "10.0.0.0/8", // masked
		"192.0.2.7":       "192.0.2.7/32",
		"2001:db8::/32":   "2001:db8::/32",
		"2001:db8::1":     "2001:db8::1/128",
		"2001:DB8::1/64":  "2001:db8::/64",
		"0.0.0.0/0":       "0.0.0.0/0",
		"::/0":            "::/0",
		"203.0.113.255/0": "0.0.0.0/0",
	} {
		p, err := keyward.ParsePrefix(in)
		if err != nil || p.String() != want {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, in := range []string{"", "10.0.0.0/33", "10.0.0/8", "::ffff:10.0.0.1", "::ffff:10.0.0.0/104",
		"fe80::1%eth0", "fe80::1%eth0/64", "10.0.0.1/", "/8", "10.0.0.0/-1", " 10.0.0.0/8", "host.example"} {
		_, err := keyward.ParsePrefix(in)
		if keyward.ErrorCode(err) != keyward.EINVALID || !strings.Contains(err.Error(), "invalid CIDR") {
			t.Errorf("ParsePrefix(%q) = %v, want an invalid error", in, err)
		}
	}
	ps, err := keyward.ParsePrefixes([]string{"10.0.0.1/8", "2001:db8::/32", "10.0.0.0/8", "1.2.3.4"})
	if err != nil || len(ps) != 3 || ps[0].String() != "1.2.3.4/32" {
		t.Errorf("ParsePrefixes = %v, %v", ps, err)
	}
}

// FuzzParsePrefix: any input either fails with EINVALID naming at most a
// bounded echo of it, or gives a valid, masked prefix that reads back to
// itself and is never IPv4-mapped or zoned.
func FuzzParsePrefix(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::ffff:1.2.3.4", "fe80::1%lo", "1.2.3.4/33", "", "::/0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := keyward.ParsePrefix(s)
		if err != nil {
			if keyward.ErrorCode(err) != keyward.EINVALID {
				t.Fatalf("ParsePrefix(%q): error code %q", s, keyward.ErrorCode(err))
			}
			if len(keyward.ErrorMessage(err)) > 512 {
				t.Fatalf("ParsePrefix(%q): message of %d bytes", s, len(keyward.ErrorMessage(err)))
			}
			return
		}
		if !p.IsValid() || p != p.Masked() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
			t.Fatalf("ParsePrefix(%q) = %v: not a valid masked prefix", s, p)
		}
		again, err := keyward.ParsePrefix(p.String())
		if err != nil || again != p {
			t.Fatalf("ParsePrefix(%q) = %v, which reads back as %v, %v", s, p, again, err)
		}
		r := keyward.IPRule{ID: "ipr_x", Action: keyward.IPBlock, CIDR: p}
		if err := r.Validate(); err != nil {
			t.Fatalf("a parsed prefix %v fails Validate: %v", p, err)
		}
		if !keyward.PrefixesContain([]netip.Prefix{p}, p.Addr()) {
			t.Fatalf("%v does not contain its own address", p)
		}
	})
}
