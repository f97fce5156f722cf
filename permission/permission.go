// Package permission is keyward's permission language: what a permission
// is, how a held permission with wildcards covers another, and queries
// such as "memories:read AND (search:run OR admin:*)" over the permissions
// a key holds. It imports nothing of keyward's, so the domain, the
// verification engine, the gateway and the middleware share one
// definition (docs/permissions.md).
//
// A permission is 1 to MaxLen bytes of printable text without spaces. It
// is read as segments separated by ':' or '.': "memories:read",
// "billing.invoices:export". A segment that is exactly "*" is a wildcard:
// inside a permission it stands for any one segment ("memories:*:read"),
// as the last segment for any rest, one segment or more
// ("memories:*" covers "memories:read" and "memories:notes.read", not
// "memories"); "*" alone covers every permission. A '*' within a segment
// ("mem*") is refused by Check.
//
// A held permission h covers a permission g when every permission g
// matches, h matches too: "memories:*" covers "memories:read" and
// "memories:*:read", not "*". A key holds g when one of its permissions
// covers g; a query term with a wildcard therefore asks for the wildcard
// itself ("admin:*" needs a key holding admin:* or *, not any one admin
// permission).
package permission

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"unicode"
	"unicode/utf8"
)

// MaxLen bounds a permission, in bytes.
const MaxLen = 128

// Wildcard is the segment that stands for any segment.
const Wildcard = "*"

// Check returns an error unless p is a permission keyward accepts: 1 to
// MaxLen bytes of valid UTF-8 without spaces or control characters, in
// which '*' appears only as a whole segment. The message names p and says
// what to change.
func Check(p string) error {
	if p == "" || len(p) > MaxLen || !utf8.ValidString(p) || strings.ContainsFunc(p, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}) {
		return fmt.Errorf("permission %q must be 1-%d characters without spaces", p, MaxLen)
	}
	for rest := p; ; {
		seg, next, sep := cut(rest)
		if seg != Wildcard && strings.Contains(seg, Wildcard) {
			return fmt.Errorf("permission %q holds '*' within a segment: a wildcard is a whole segment between ':' or '.', as in memories:*", p)
		}
		if sep == 0 {
			return nil
		}
		rest = next
	}
}

// IsPattern reports whether p holds a wildcard segment.
func IsPattern(p string) bool {
	for rest := p; ; {
		seg, next, sep := cut(rest)
		if seg == Wildcard {
			return true
		}
		if sep == 0 {
			return false
		}
		rest = next
	}
}

// Covers reports whether the held permission h covers g: every permission
// g matches, h matches too. Segments compare exactly, separators too: a
// wildcard segment of h covers any one segment of g (a wildcard too), and
// a final wildcard of h any rest. A final wildcard of g is covered only by
// a final wildcard of h. Without wildcards, h covers g when they are equal.
func Covers(h, g string) bool {
	for {
		hs, hrest, hsep := cut(h)
		gs, grest, gsep := cut(g)
		switch {
		case hs == Wildcard && hsep == 0:
			return true
		case gs == Wildcard && gsep == 0:
			return false
		case hs != Wildcard && hs != gs, hsep != gsep:
			return false
		case hsep == 0:
			return true
		}
		h, g = hrest, grest
	}
}

// isSep reports whether c separates segments.
func isSep(c byte) bool { return c == ':' || c == '.' }

// cut returns the first segment of p, what follows its separator, and the
// separator (0 when the segment is the last).
func cut(p string) (seg, rest string, sep byte) {
	for i := 0; i < len(p); i++ {
		if isSep(p[i]) {
			return p[:i], p[i+1:], p[i]
		}
	}
	return p, "", 0
}

// HoldsAll reports whether held covers every permission of want (see
// Covers). It allocates nothing; Set answers the same faster.
func HoldsAll(held, want []string) bool {
	for _, g := range want {
		if !Holds(held, g) {
			return false
		}
	}
	return true
}

// Holds reports whether a permission of held covers g. It allocates
// nothing.
func Holds(held []string, g string) bool {
	for _, h := range held {
		if Covers(h, g) {
			return true
		}
	}
	return false
}

// Set is a list of held permissions prepared for matching: the exact ones
// sorted for a binary search, the patterns apart. Build it once per list
// (a verification cache builds it when it loads a key); it does not change,
// is safe for concurrent use, and must not be copied (it remembers the
// answers of recent queries).
type Set struct {
	list   []string
	sorted []string
	// prefixes are the patterns whose one wildcard is their last segment,
	// without it: such a pattern covers exactly the permissions that start
	// with its prefix ("memories:*" those starting "memories:").
	prefixes []string
	patterns []string // the other patterns
	all      bool     // holds "*"
	// results remembers whether s satisfies the queries evaluated on it
	// last, by query id (Query.Eval): a set and a parsed query never
	// change, so neither does the answer, and a key checked against its
	// route's query on every request evaluates it once. Each slot holds
	// id<<1 | satisfied, 0 when empty; a query takes slot id%len.
	results [resultSlots]atomic.Uint64
}

// resultSlots is how many queries' answers a Set remembers; queries whose
// ids share a slot replace each other's answer.
const resultSlots = 4

// NewSet returns the set of held, which it keeps (List returns it): nobody
// may modify held afterwards.
func NewSet(held []string) *Set {
	s := &Set{list: held, sorted: slices.Clone(held)}
	slices.Sort(s.sorted)
	s.sorted = slices.Compact(s.sorted)
	for _, h := range s.sorted {
		switch prefix, final := strings.CutSuffix(h, Wildcard); {
		case h == Wildcard:
			s.all = true
		case final && len(prefix) > 0 && isSep(prefix[len(prefix)-1]) && !IsPattern(prefix[:len(prefix)-1]):
			s.prefixes = append(s.prefixes, prefix)
		case IsPattern(h):
			s.patterns = append(s.patterns, h)
		}
	}
	return s
}

// List returns the permissions the set was built from. Read-only.
func (s *Set) List() []string { return s.list }

// Holds reports whether a permission of s covers g. It allocates nothing.
func (s *Set) Holds(g string) bool {
	if s.all {
		return true
	}
	if _, ok := slices.BinarySearch(s.sorted, g); ok {
		return true
	}
	for _, p := range s.prefixes {
		if strings.HasPrefix(g, p) {
			return true
		}
	}
	for _, h := range s.patterns {
		if Covers(h, g) {
			return true
		}
	}
	return false
}

// HoldsAll reports whether s holds every permission of want. It allocates
// nothing.
func (s *Set) HoldsAll(want []string) bool {
	for _, g := range want {
		if !s.Holds(g) {
			return false
		}
	}
	return true
}

// Missing returns what keeps s from holding every permission of want and
// satisfying q (nil: no query): the permissions of want it does not hold,
// in their order, then those of q.Missing; without duplicates, nil when
// nothing is missing.
func (s *Set) Missing(want []string, q *Query) []string {
	var out []string
	for _, g := range want {
		if !s.Holds(g) && !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	if q != nil {
		for _, g := range q.Missing(s) {
			if !slices.Contains(out, g) {
				out = append(out, g)
			}
		}
	}
	return out
}
