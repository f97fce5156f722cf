package permission

import (
	"fmt"
	"sync"
	"testing"
)

// TestEvalRemembersPerSetAndQuery: the answer a Set remembers is the
// answer of that query on that set, whatever was evaluated before, on it
// or on other sets, with more queries than it has slots, concurrently.
func TestEvalRemembersPerSetAndQuery(t *testing.T) {
	sets := []*Set{
		NewSet([]string{"memories:read", "search:*"}),
		NewSet([]string{"memories:*"}),
		NewSet([]string{"billing.invoices:export", "search:*:run"}),
		NewSet(nil),
		NewSet([]string{"*"}),
	}
	var queries []*Query
	for _, src := range []string{
		"memories:read", "memories:write", "search:docs", "search:docs:run",
		"memories:read AND search:docs", "memories:read OR billing.invoices:export",
		"memories:* AND (search:x OR billing.invoices:export)", "x:y OR memories:notes",
		"search:*:run AND billing.invoices:export", "a OR b OR c OR memories:read",
	} {
		q, err := Parse(src)
		if err != nil {
			t.Fatal(err)
		}
		queries = append(queries, q)
	}
	// A second parse of the same text is another query, with its own id.
	again, _ := Parse("memories:read")
	queries = append(queries, again)
	if again.id == queries[0].id {
		t.Fatalf("two parses share id %d", again.id)
	}

	check := func(t *testing.T, round int) {
		for i, s := range sets {
			for j := range queries {
				q := queries[(j+i+round)%len(queries)] // a different order each round
				if got, want := q.Eval(s), q.eval(s, 0); got != want {
					t.Errorf("round %d: set %d, %q: Eval = %t, want %t", round, i, q, got, want)
				}
			}
		}
	}
	for round := range 3 {
		check(t, round)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for round := range 50 {
				check(t, g*50+round)
			}
		})
	}
	wg.Wait()

	// Missing goes through the remembered answer too.
	q := queries[4] // memories:read AND search:docs
	if m := q.Missing(sets[1]); fmt.Sprint(m) != "[search:docs]" {
		t.Errorf("Missing = %v, want [search:docs]", m)
	}
	if m := q.Missing(sets[0]); m != nil {
		t.Errorf("Missing = %v, want nil", m)
	}
}
