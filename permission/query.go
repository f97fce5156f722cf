package permission

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode"
	"unicode/utf8"
)

// Bounds of a query.
const (
	// MaxQueryLen bounds a query, in bytes.
	MaxQueryLen = 1024
	// MaxTerms bounds the permissions a query names, repeats included.
	MaxTerms = 64
	// MaxDepth bounds the nesting of parentheses.
	MaxDepth = 16
)

// Query is a parsed permission query: permissions joined by AND and OR,
// AND binding tighter, with parentheses ("memories:read AND (search:run OR
// admin:*)"). A Query is immutable and safe for concurrent use; evaluating
// it allocates nothing.
type Query struct {
	terms []string // distinct, in order of first appearance
	nodes []node   // the expression tree in prefix order (see node)
	// id tells this parse from every other in the process (from 1), so a
	// Set can remember its answer (Eval).
	id uint64
}

// queryIDs numbers the queries Parse returns.
var queryIDs atomic.Uint64

// node is one node of a Query's tree. The nodes of a subtree are
// consecutive, its root first; end is the index after its last node, so
// the children of an operator at i start at i+1 and each at the end of the
// one before.
type node struct {
	op   op
	term int32 // opTerm: index in terms
	end  int32
}

type op uint8

const (
	opTerm op = iota
	opAnd
	opOr
)

// SyntaxError is a query that does not parse: what is wrong, and where.
type SyntaxError struct {
	// Pos is the 1-based byte position of the problem in the query;
	// len(query)+1 for its end.
	Pos int
	// Msg says what is wrong and what was expected.
	Msg string
}

func (e *SyntaxError) Error() string {
	return "permission query: " + e.Msg + " at position " + strconv.Itoa(e.Pos)
}

// tree is a parsed subexpression before flattening.
type tree struct {
	op       op
	term     string
	children []*tree
}

// token is one token of a query: "(", ")", or a word (an operator or a
// permission).
type token struct {
	text string
	pos  int // 1-based byte position
}

// parser reads a query's tokens.
type parser struct {
	src   string
	toks  []token
	i     int
	terms int
}

// Parse parses a query. A plain permission is a query of one term; AND and
// OR, in any case, join terms, AND binding tighter than OR; parentheses
// group. Each term must pass Check. It returns a *SyntaxError naming the
// position of the first problem.
func Parse(s string) (*Query, error) {
	if len(s) > MaxQueryLen {
		return nil, &SyntaxError{Pos: MaxQueryLen + 1, Msg: fmt.Sprintf("the query is longer than %d bytes", MaxQueryLen)}
	}
	p := &parser{src: s, toks: tokenize(s)}
	if len(p.toks) == 0 {
		return nil, &SyntaxError{Pos: 1, Msg: "the query is empty: name a permission, e.g. memories:read"}
	}
	t, err := p.or(0)
	if err != nil {
		return nil, err
	}
	if p.i < len(p.toks) {
		tk := p.toks[p.i]
		if tk.text == ")" {
			return nil, &SyntaxError{Pos: tk.pos, Msg: "')' closes no '('"}
		}
		return nil, &SyntaxError{Pos: tk.pos, Msg: fmt.Sprintf("expected AND, OR or the end, got %s", describe(tk.text))}
	}
	q := &Query{id: queryIDs.Add(1)}
	q.flatten(t)
	return q, nil
}

// tokenize splits s into tokens at spaces and around parentheses.
func tokenize(s string) []token {
	var toks []token
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case unicode.IsSpace(r):
			i += n
		case r == '(' || r == ')':
			toks = append(toks, token{text: s[i : i+1], pos: i + 1})
			i++
		default:
			j := i
			for j < len(s) {
				r, n := utf8.DecodeRuneInString(s[j:])
				if unicode.IsSpace(r) || r == '(' || r == ')' {
					break
				}
				j += n
			}
			toks = append(toks, token{text: s[i:j], pos: i + 1})
			i = j
		}
	}
	return toks
}

// peek returns the next token, or one with empty text at the end.
func (p *parser) peek() token {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return token{pos: len(p.src) + 1}
}

// isOp reports whether t is the operator name (in any case).
func isOp(t token, name string) bool { return strings.EqualFold(t.text, name) }

// or parses and { OR and }.
func (p *parser) or(depth int) (*tree, error) {
	return p.list(opOr, "OR", depth, p.and)
}

// and parses primary { AND primary }.
func (p *parser) and(depth int) (*tree, error) {
	return p.list(opAnd, "AND", depth, p.primary)
}

// list parses operands joined by the operator name, merging operands of
// the same operator, so that (a AND b) AND c is a AND b AND c.
func (p *parser) list(o op, name string, depth int, operand func(int) (*tree, error)) (*tree, error) {
	t, err := operand(depth)
	if err != nil {
		return nil, err
	}
	if !isOp(p.peek(), name) {
		return t, nil
	}
	joined := &tree{op: o}
	joined.add(t)
	for isOp(p.peek(), name) {
		p.i++
		t, err := operand(depth)
		if err != nil {
			return nil, err
		}
		joined.add(t)
	}
	return joined, nil
}

// add appends c to t's children, or c's children when c has t's operator.
func (t *tree) add(c *tree) {
	if c.op == t.op {
		t.children = append(t.children, c.children...)
	} else {
		t.children = append(t.children, c)
	}
}

// primary parses a permission or a parenthesised query.
func (p *parser) primary(depth int) (*tree, error) {
	tk := p.peek()
	switch {
	case tk.text == "":
		return nil, &SyntaxError{Pos: tk.pos, Msg: "expected a permission or '(', got the end of the query"}
	case tk.text == "(":
		if depth >= MaxDepth {
			return nil, &SyntaxError{Pos: tk.pos, Msg: fmt.Sprintf("parentheses nest deeper than %d", MaxDepth)}
		}
		p.i++
		t, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		if end := p.peek(); end.text != ")" {
			return nil, &SyntaxError{Pos: end.pos, Msg: fmt.Sprintf("expected ')' to close the '(' at position %d, got %s", tk.pos, describe(end.text))}
		}
		p.i++
		return t, nil
	case tk.text == ")", isOp(tk, "AND"), isOp(tk, "OR"):
		return nil, &SyntaxError{Pos: tk.pos, Msg: fmt.Sprintf("expected a permission or '(', got %s", describe(tk.text))}
	}
	if err := Check(tk.text); err != nil {
		return nil, &SyntaxError{Pos: tk.pos, Msg: err.Error()}
	}
	if p.terms++; p.terms > MaxTerms {
		return nil, &SyntaxError{Pos: tk.pos, Msg: fmt.Sprintf("the query names more than %d permissions", MaxTerms)}
	}
	p.i++
	return &tree{op: opTerm, term: tk.text}, nil
}

// describe names a token in a message.
func describe(text string) string {
	switch {
	case text == "":
		return "the end of the query"
	case strings.EqualFold(text, "AND") || strings.EqualFold(text, "OR"):
		return strings.ToUpper(text)
	}
	return strconv.Quote(text)
}

// flatten appends t's nodes to q in prefix order.
func (q *Query) flatten(t *tree) {
	i := len(q.nodes)
	q.nodes = append(q.nodes, node{op: t.op})
	if t.op == opTerm {
		ti := -1
		for j, s := range q.terms {
			if s == t.term {
				ti = j
			}
		}
		if ti < 0 {
			ti = len(q.terms)
			q.terms = append(q.terms, t.term)
		}
		q.nodes[i].term = int32(ti)
	}
	for _, c := range t.children {
		q.flatten(c)
	}
	q.nodes[i].end = int32(len(q.nodes))
}

// Terms returns the distinct permissions q names, in order of first
// appearance. Read-only.
func (q *Query) Terms() []string { return q.terms }

// String returns q in canonical form: operators in upper case, single
// spaces, parentheses only around an OR inside an AND. Parse gives the
// same query back.
func (q *Query) String() string {
	var b strings.Builder
	q.write(&b, 0)
	return b.String()
}

func (q *Query) write(b *strings.Builder, i int32) {
	n := q.nodes[i]
	if n.op == opTerm {
		b.WriteString(q.terms[n.term])
		return
	}
	sep := " OR "
	if n.op == opAnd {
		sep = " AND "
	}
	for j := i + 1; j < n.end; j = q.nodes[j].end {
		if j > i+1 {
			b.WriteString(sep)
		}
		if n.op == opAnd && q.nodes[j].op == opOr {
			b.WriteByte('(')
			q.write(b, j)
			b.WriteByte(')')
		} else {
			q.write(b, j)
		}
	}
}

// Eval reports whether s satisfies q. It allocates nothing. The answer is
// remembered in s, so evaluating the same parsed query on the same set
// again costs a load and a comparison.
func (q *Query) Eval(s *Set) bool {
	if q.id == 0 || q.id >= 1<<63 {
		return q.eval(s, 0)
	}
	slot := &s.results[q.id%resultSlots]
	if v := slot.Load(); v>>1 == q.id {
		return v&1 == 1
	}
	ok := q.eval(s, 0)
	v := q.id << 1
	if ok {
		v |= 1
	}
	slot.Store(v)
	return ok
}

func (q *Query) eval(s *Set, i int32) bool {
	n := &q.nodes[i]
	switch n.op {
	case opTerm:
		return s.Holds(q.terms[n.term])
	case opAnd:
		for j := i + 1; j < n.end; j = q.nodes[j].end {
			if !q.eval(s, j) {
				return false
			}
		}
		return true
	}
	for j := i + 1; j < n.end; j = q.nodes[j].end {
		if q.eval(s, j) {
			return true
		}
	}
	return false
}

// Missing returns the permissions that keep s from satisfying q, without
// duplicates, nil when it does: each missing permission of a failed AND,
// every missing permission of a failed OR (any one of them would do).
func (q *Query) Missing(s *Set) []string {
	if q.Eval(s) {
		return nil
	}
	var out []string
	q.missing(s, 0, &out)
	return out
}

// missing appends the missing permissions of the subtree at i, which s
// does not satisfy.
func (q *Query) missing(s *Set, i int32, out *[]string) {
	n := &q.nodes[i]
	if n.op == opTerm {
		t := q.terms[n.term]
		for _, m := range *out {
			if m == t {
				return
			}
		}
		*out = append(*out, t)
		return
	}
	for j := i + 1; j < n.end; j = q.nodes[j].end {
		if n.op == opOr || !q.eval(s, j) {
			q.missing(s, j, out)
		}
	}
}
