package permission_test

import (
	"errors"
	"testing"

	"github.com/keyward/keyward/permission"
)

// FuzzParse checks that Parse never panics, that a syntax error points
// inside the query (or just past its end), and that a parsed query prints
// to a canonical form that parses back to the same query.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"memories:read", "memories:read AND (search:run OR admin:*)", "a and b or c", "((a))",
		"a AND", "(a OR b", "a)", "mem*", "a b", "", "(", "*", "a:*:b OR (c.d AND e)", "é AND ü",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := permission.Parse(s)
		if err != nil {
			var se *permission.SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q): %v is not a *SyntaxError", s, err)
			}
			if se.Pos < 1 || se.Pos > len(s)+1 {
				t.Fatalf("Parse(%q): position %d outside 1..%d", s, se.Pos, len(s)+1)
			}
			return
		}
		printed := q.String()
		again, err := permission.Parse(printed)
		if err != nil {
			t.Fatalf("Parse(%q) printed %q, which does not parse: %v", s, printed, err)
		}
		if again.String() != printed {
			t.Fatalf("Parse(%q) printed %q, then %q", s, printed, again.String())
		}
		set := permission.NewSet(q.Terms())
		if !q.Eval(set) || q.Missing(set) != nil {
			t.Fatalf("%q is not satisfied by its own terms", s)
		}
		if len(q.Terms()) > 0 && q.Eval(permission.NewSet(nil)) {
			t.Fatalf("%q is satisfied by no permissions", s)
		}
	})
}
