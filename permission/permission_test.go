package permission_test

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/keyward/keyward/permission"
)

func TestCheck(t *testing.T) {
	for _, p := range []string{"memories:read", "billing.invoices:export", "*", "memories:*", "memories:*:read", "a", "x(y)"} {
		if err := permission.Check(p); err != nil {
			t.Errorf("Check(%q) = %v, want nil", p, err)
		}
	}
	for _, p := range []string{"", "mem*", "memories:re*", "**", "a b", "a\tb", "a\x00", strings.Repeat("a", permission.MaxLen+1), "\xff"} {
		if err := permission.Check(p); err == nil {
			t.Errorf("Check(%q) = nil, want an error", p)
		}
	}
}

func TestCovers(t *testing.T) {
	for _, c := range coverCases(t) {
		if got := permission.Covers(c.Held, c.Wanted); got != c.Covers {
			t.Errorf("Covers(%q, %q) = %v, want %v", c.Held, c.Wanted, got, c.Covers)
		}
	}
}

// coverCases reads testdata/covers.json, the cases of Covers that the
// Python and TypeScript SDKs check their own matching against too.
func coverCases(t *testing.T) []struct {
	Held, Wanted string
	Covers       bool
} {
	t.Helper()
	b, err := os.ReadFile("testdata/covers.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Held, Wanted string
		Covers       bool
	}
	if err := json.Unmarshal(b, &cases); err != nil || len(cases) == 0 {
		t.Fatalf("testdata/covers.json: %v (%d cases)", err, len(cases))
	}
	return cases
}

// TestSetAgreesWithHoldsAll checks that a Set answers as the plain list
// does, for exact permissions and patterns.
func TestSetAgreesWithHoldsAll(t *testing.T) {
	held := []string{"memories:*", "search:run", "admin:keys:read", "billing.*", "z:*:y"}
	s := permission.NewSet(held)
	for _, g := range []string{"memories:read", "memories:*", "search:run", "search:*", "admin:keys:read", "admin:keys", "billing.x", "billing:x", "z:q:y", "z:q:w", "*", "other"} {
		if a, b := s.Holds(g), permission.HoldsAll(held, []string{g}); a != b {
			t.Errorf("%q: Set.Holds = %v, HoldsAll = %v", g, a, b)
		}
	}
	if !reflect.DeepEqual(s.List(), held) {
		t.Errorf("List = %v, want %v", s.List(), held)
	}
	q, err := permission.Parse("other OR (y AND search:run)")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Missing([]string{"search:run", "other", "x", "other"}, q); !reflect.DeepEqual(got, []string{"other", "x", "y"}) {
		t.Errorf("Missing = %v", got)
	}
	if !permission.NewSet([]string{"*"}).HoldsAll([]string{"a", "b:*"}) {
		t.Error("* does not hold everything")
	}
	if permission.NewSet(nil).Holds("a") {
		t.Error("an empty set holds a")
	}
}

func TestParse(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"memories:read", "memories:read"},
		{"memories:read AND (search:run OR admin:*)", "memories:read AND (search:run OR admin:*)"},
		{"a and b or c", "a AND b OR c"},
		{"a Or b AnD c", "a OR b AND c"},
		{"(a OR b) AND c", "(a OR b) AND c"},
		{"((a))", "a"},
		{"(a AND b) AND (c AND d)", "a AND b AND c AND d"},
		{"a OR (b OR c)", "a OR b OR c"},
		{"  a\tAND\nb  ", "a AND b"},
		{"(a)AND(b)", "a AND b"},
		{"a AND a", "a AND a"},
	} {
		q, err := permission.Parse(c.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if got := q.String(); got != c.want {
			t.Errorf("Parse(%q).String() = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct {
		in   string
		pos  int
		want string
	}{
		{"", 1, "empty"},
		{"   ", 1, "empty"},
		{"a AND", 6, "got the end"},
		{"AND a", 1, "got AND"},
		{"a b", 3, `expected AND, OR or the end, got "b"`},
		{"(a OR b", 8, "expected ')' to close the '(' at position 1"},
		{"a)", 2, "')' closes no '('"},
		{"a AND ()", 8, `got ")"`},
		{"memories:read AND mem*", 19, "within a segment"},
		{"a OR or", 6, "got OR"},
		{strings.Repeat("(", permission.MaxDepth+1) + "a" + strings.Repeat(")", permission.MaxDepth+1), permission.MaxDepth + 1, "nest deeper"},
		{strings.Repeat("a OR ", permission.MaxTerms) + "a", 5*permission.MaxTerms + 1, "more than"},
		{strings.Repeat("a", permission.MaxQueryLen+1), permission.MaxQueryLen + 1, "longer than"},
	} {
		_, err := permission.Parse(c.in)
		var se *permission.SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Parse(%q) = %v, want a *SyntaxError", c.in, err)
			continue
		}
		if se.Pos != c.pos || !strings.Contains(se.Msg, c.want) {
			t.Errorf("Parse(%q): position %d %q, want position %d and %q", c.in, se.Pos, se.Msg, c.pos, c.want)
		}
		if !strings.Contains(err.Error(), "at position") {
			t.Errorf("Parse(%q): error %q names no position", c.in, err)
		}
	}
}

func TestEvalAndMissing(t *testing.T) {
	s := permission.NewSet([]string{"memories:read", "admin:*", "notes:*"})
	for _, c := range []struct {
		q       string
		ok      bool
		missing []string
	}{
		{"memories:read AND (search:run OR admin:*)", true, nil},
		{"memories:read AND (search:run OR admin:keys)", true, nil},
		{"memories:write AND (search:run OR admin:*)", false, []string{"memories:write"}},
		{"memories:read AND (search:run OR billing:*)", false, []string{"search:run", "billing:*"}},
		{"memories:write OR search:run", false, []string{"memories:write", "search:run"}},
		{"(a AND memories:read) OR (b AND notes:x) OR a", false, []string{"a", "b"}},
		{"notes:x.y AND memories:read", true, nil},
		{"*", false, []string{"*"}},
	} {
		q, err := permission.Parse(c.q)
		if err != nil {
			t.Fatal(err)
		}
		if got := q.Eval(s); got != c.ok {
			t.Errorf("%q: Eval = %v, want %v", c.q, got, c.ok)
		}
		if got := q.Missing(s); !reflect.DeepEqual(got, c.missing) {
			t.Errorf("%q: Missing = %q, want %q", c.q, got, c.missing)
		}
	}
}

func TestEvalAllocatesNothing(t *testing.T) {
	s := permission.NewSet([]string{"memories:read", "admin:*", "notes:*", "search:run"})
	q, err := permission.Parse("memories:read AND (search:run OR admin:*) AND notes:x AND (z OR search:run)")
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if !q.Eval(s) {
			t.Fatal("query refused")
		}
	}); n != 0 {
		t.Errorf("Eval allocates %v times", n)
	}
}

func TestCache(t *testing.T) {
	var c permission.Cache
	a, err := c.Parse("a AND b")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.Parse("a AND b")
	if a != b {
		t.Error("the same query was parsed twice")
	}
	if _, err := c.Parse("a AND"); err == nil {
		t.Error("a bad query parsed")
	}
	for i := range permission.MaxCached + 10 {
		q, err := c.Parse("p:" + strconv.Itoa(i) + " OR q")
		if err != nil || q == nil {
			t.Fatalf("query %d: %v", i, err)
		}
	}
	if q, err := c.Parse("a AND b"); err != nil || q.String() != "a AND b" {
		t.Errorf("after filling: %v, %v", q, err)
	}
}
