package permission_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/keyward/keyward/permission"
)

// BenchmarkCheck compares the permission check of a verification alone:
// "contains" is the exact-match check keyward made before wildcards (5
// permissions against a list of 20, slices.Contains), "list" the same
// request against a Set, "query" a 5-term query against 20 permissions
// with 4 wildcards, three terms held through one.
func BenchmarkCheck(b *testing.B) {
	exact := make([]string, 20)
	for i := range exact {
		exact[i] = fmt.Sprintf("service%02d:read", i)
	}
	want := []string{"service10:read", "service03:read", "service17:read", "service15:read", "service06:read"}
	wild := permission.NewSet(append([]string{"memories:*", "admin:*", "billing.*", "search:*:run"}, exact[4:]...))
	q, err := permission.Parse("service10:read AND (memories:read OR x:y) AND admin:keys.list AND service15:read AND search:docs:run")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("contains", func(b *testing.B) {
		for b.Loop() {
			for _, p := range want {
				if !slices.Contains(exact, p) {
					b.Fatal("refused")
				}
			}
		}
	})
	set := permission.NewSet(exact)
	b.Run("list", func(b *testing.B) {
		for b.Loop() {
			if !set.HoldsAll(want) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("query", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !q.Eval(wild) {
				b.Fatal("refused")
			}
		}
	})
}
