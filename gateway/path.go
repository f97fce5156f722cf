package gateway

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/keyward/keyward"
)

// Refusals of request paths and methods that an upstream could read
// differently from the route rules. All are 400 invalid.
var (
	errPathNotClean = keyward.Errorf(keyward.EINVALID, "the request path is not canonical: remove . and .. segments and repeated slashes")
	errPathEncoding = keyward.Errorf(keyward.EINVALID, "the request path holds an encoded /, . or %%, a control character or bytes that are not UTF-8: upstreams decode such paths differently")
	errPathSplit    = keyward.Errorf(keyward.EINVALID, "the request path holds ; or \\ (or %%3B, %%5C), which upstreams read as a path parameter or a separator: remove them")
	errMethodCase   = keyward.Errorf(keyward.EINVALID, "the request method must be upper case: send POST, not post")
)

// reqPath is the path of a request in the one form the route rules check
// and the gateway forwards.
type reqPath struct {
	// path is decoded: what route prefixes and exempt paths are compared
	// with.
	path string
	// raw is what the upstream receives: path escaped, so that decoding it
	// once gives path exactly.
	raw string
	// semicolon and backslash report a ';' or '\' in path (sent raw or
	// encoded): upstreams that cut ";params" off a segment, or take '\'
	// for '/', read another path. Only routes that opt in take them.
	semicolon, backslash bool
}

// parsePath returns the canonical form of escaped, a request path as the
// client sent it (percent-encoded). Encoded unreserved characters
// (letters, digits, '-', '_', '~') are decoded, other encoded octets keep
// their encoding with upper-case hex digits, '\' and bytes outside RFC
// 3986's pchar are encoded. It refuses what upstreams decode differently:
// an encoded '/', '.' or control character, a decoded path holding a
// "%XX" escape (double encoding) or bytes that are not UTF-8, and "." and
// ".." segments or an empty segment except a trailing one.
func parsePath(escaped string) (reqPath, error) {
	if escaped == "" || escaped[0] != '/' {
		return reqPath{}, errPathNotClean
	}
	var p reqPath
	var path, raw strings.Builder
	plain := true // escaped needs no change: path == raw == escaped
	for i := 0; i < len(escaped); i++ {
		c := escaped[i]
		if c == '%' || c == '\\' || !isPathChar(c) {
			plain = false
			break
		}
	}
	if plain {
		p.path, p.raw = escaped, escaped
		p.semicolon = strings.IndexByte(escaped, ';') >= 0
	} else {
		path.Grow(len(escaped))
		raw.Grow(len(escaped) + 8)
		for i := 0; i < len(escaped); i++ {
			c := escaped[i]
			if c != '%' {
				if c < 0x20 || c == 0x7f {
					return reqPath{}, errPathEncoding
				}
				path.WriteByte(c)
				if isPathChar(c) {
					raw.WriteByte(c)
				} else {
					writeEscape(&raw, c)
				}
				p.semicolon = p.semicolon || c == ';'
				p.backslash = p.backslash || c == '\\'
				continue
			}
			if i+2 >= len(escaped) || !isHex(escaped[i+1]) || !isHex(escaped[i+2]) {
				return reqPath{}, errPathEncoding
			}
			c = unhex(escaped[i+1])<<4 | unhex(escaped[i+2])
			i += 2
			switch {
			case c == '/' || c == '.' || c < 0x20 || c == 0x7f:
				return reqPath{}, errPathEncoding
			case isUnreserved(c):
				raw.WriteByte(c)
			default:
				writeEscape(&raw, c)
			}
			path.WriteByte(c)
			p.semicolon = p.semicolon || c == ';'
			p.backslash = p.backslash || c == '\\'
		}
		p.path, p.raw = path.String(), raw.String()
	}
	if !canonicalPath(p.path) {
		return reqPath{}, errPathNotClean
	}
	if !utf8.ValidString(p.path) || hasEscape(p.path) {
		return reqPath{}, errPathEncoding
	}
	return p, nil
}

// variants returns the paths upstreams that cut ";params" off segments,
// take '\' for '/', or both (in either order) read p as; none when p holds
// neither.
func (p reqPath) variants() []string {
	var out []string
	if p.semicolon {
		out = append(out, stripParams(p.path))
	}
	if p.backslash {
		bs := strings.ReplaceAll(p.path, `\`, "/")
		out = append(out, bs)
		if p.semicolon {
			out = append(out, stripParams(bs), strings.ReplaceAll(stripParams(p.path), `\`, "/"))
		}
	}
	return out
}

// stripParams cuts every segment of path at its first ';', as servlet
// containers do ("/a;x/b;y" is "/a/b").
func stripParams(path string) string {
	var b strings.Builder
	for seg := range strings.SplitSeq(path, "/") {
		seg, _, _ = strings.Cut(seg, ";")
		b.WriteString(seg)
		b.WriteByte('/')
	}
	s := b.String()
	return s[:len(s)-1]
}

// isPathChar reports whether c may appear unencoded in a forwarded path:
// RFC 3986 unreserved, sub-delims, ':', '@' and '/'.
func isPathChar(c byte) bool {
	if isUnreserved(c) || c == '.' {
		return true
	}
	return strings.IndexByte("!$&'()*+,;=:@/", c) >= 0
}

// isUnreserved reports whether c is an RFC 3986 unreserved character other
// than '.', which is decoded when it arrives encoded.
func isUnreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '~'
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

func writeEscape(b *strings.Builder, c byte) {
	const hex = "0123456789ABCDEF"
	b.WriteByte('%')
	b.WriteByte(hex[c>>4])
	b.WriteByte(hex[c&15])
}

// hasEscape reports whether s holds '%' and two hex digits: a decoded path
// that an upstream decoding twice would read differently.
func hasEscape(s string) bool {
	for i := strings.IndexByte(s, '%'); i >= 0 && i+2 < len(s); {
		if isHex(s[i+1]) && isHex(s[i+2]) {
			return true
		}
		j := strings.IndexByte(s[i+1:], '%')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}

// validMethod reports whether m is a method as a configuration names it:
// upper-case letters only, e.g. GET.
func validMethod(m string) bool {
	for i := 0; i < len(m); i++ {
		if c := m[i]; c < 'A' || c > 'Z' {
			return false
		}
	}
	return m != ""
}

// canonicalMethod reports whether m is written as methods are registered:
// no lower-case letters. Upstreams that upper-case methods would read
// "post" as POST, which the gateway's body stamping must not miss.
func canonicalMethod(m string) bool {
	for i := 0; i < len(m); i++ {
		if c := m[i]; c >= 'a' && c <= 'z' {
			return false
		}
	}
	return true
}

// hasPrefixFold reports whether s starts with prefix ignoring case
// (Unicode simple folding), and how many bytes of s the prefix covers.
func hasPrefixFold(s, prefix string) (int, bool) {
	n := 0
	for prefix != "" {
		if s == "" {
			return 0, false
		}
		pr, ps := utf8.DecodeRuneInString(prefix)
		sr, ss := utf8.DecodeRuneInString(s)
		if pr != sr && !equalFoldRune(pr, sr) {
			return 0, false
		}
		prefix, s, n = prefix[ps:], s[ss:], n+ss
	}
	return n, true
}

// equalFoldRune reports whether a and b are equal under simple folding.
func equalFoldRune(a, b rune) bool {
	for r := unicode.SimpleFold(a); r != a; r = unicode.SimpleFold(r) {
		if r == b {
			return true
		}
	}
	return false
}
