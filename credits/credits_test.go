package credits_test

import (
	"sync/atomic"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/credits"
	"github.com/keyward/keyward/credits/creditstest"
	"github.com/keyward/keyward/keywardtest"
)

func TestStoreLedger(t *testing.T) {
	creditstest.Run(t, func(t *testing.T) (keyward.Store, keyward.CreditLedger) {
		s := keywardtest.NewSQLiteStore(t)
		return s, credits.NewStoreLedger(s)
	})
}

// TestStoreLedgerInstances: two ledgers on one store, standing for two
// instances, admit exactly the credits between them.
func TestStoreLedgerInstances(t *testing.T) {
	s := keywardtest.NewSQLiteStore(t)
	k := creditstest.NewKey(t, s, creditstest.Credits(500, 0, 0))
	admitted := creditstest.SpendConcurrently(t, k, 1000, credits.NewStoreLedger(s), credits.NewStoreLedger(s))
	creditstest.WantExactly(t, admitted, 500)
}

func BenchmarkStoreLedgerSpend(b *testing.B) {
	s := keywardtest.NewSQLiteStore(b)
	l := credits.NewStoreLedger(s)
	keys := make([]*keyward.Key, 64)
	for i := range keys {
		keys[i] = creditstest.NewKey(b, s, creditstest.Credits(keyward.MaxCredits, 0, 0))
	}
	b.Run("serial", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, ok, err := l.Spend(b.Context(), keys[i%len(keys)], 1, creditstest.Epoch); err != nil || !ok {
				b.Fatalf("Spend = %v, %v", ok, err)
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			i := int(n.Add(1))
			for pb.Next() {
				if _, ok, err := l.Spend(b.Context(), keys[i%len(keys)], 1, creditstest.Epoch); err != nil || !ok {
					b.Errorf("Spend = %v, %v", ok, err)
					return
				}
				i++
			}
		})
	})
}
