package gateway

import (
	"net/http"
	"strings"
	"testing"
)

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
