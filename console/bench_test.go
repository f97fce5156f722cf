package console_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keywardtest"
)

// benchKeys is how many keys the page benchmarks hold in the store.
const benchKeys = 100_000

// BenchmarkPages renders the console's pages, signed in as root, with
// benchKeys keys in one account (SQLite): the first and a middle page of
// keys, a page filtered by a status no key has (the console reads its
// most, 1,000 keys), a search, a key, an account with its users, and the
// other pages. The target is under 50 ms a page (docs/console.md).
func BenchmarkPages(b *testing.B) {
	e := newEnv(b)
	a := e.account("bench")
	for range 60 {
		e.user(a.ID, fmt.Sprintf("user-%s", apikey.NewID("u")))
	}
	hasher := keywardtest.NewHasher(b)
	now := keywardtest.Now()
	var middle string
	for batch := 0; batch < benchKeys/1000; batch++ {
		keys := make([]*keyward.Key, 1000)
		for i := range keys {
			id := apikey.NewID("key")
			keys[i] = &keyward.Key{ID: id, Hash: hasher.Hash(id), PepperVersion: hasher.Current(), Prefix: "kw_acct", Start: "kw_acct_" + id[4:8],
				Environment: "live", Name: fmt.Sprintf("key-%d-%d", batch, i), Role: keyward.RoleAccountAdmin, AccountID: a.ID, CreatedAt: now, UpdatedAt: now}
		}
		if err := e.store.CreateKeys(b.Context(), keyward.Change{}, keys); err != nil {
			b.Fatal(err)
		}
		if batch == benchKeys/2000 {
			middle = keys[0].ID
		}
	}
	br := e.browser()
	br.signIn(e.root)
	for _, p := range []struct{ name, path string }{
		{"keys", "/console/keys"},
		{"keys_middle_page", "/console/keys?account=" + a.ID + "&after=" + middle},
		{"keys_status_scan", "/console/keys?status=revoked"},
		{"keys_search", "/console/keys?q=key-77-5"},
		{"key", "/console/keys/" + middle},
		{"account", "/console/accounts/" + a.ID},
		{"accounts", "/console/accounts"},
		{"roles", "/console/accounts/" + a.ID + "/roles"},
		{"ip_rules", "/console/ip-rules"},
		{"anomalies", "/console/anomalies"},
		{"webhooks", "/console/webhooks"},
		{"usage_30d", "/console/usage?period=30d"},
		{"audit", "/console/audit"},
	} {
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				if pg := br.get(p.path); pg.status != http.StatusOK {
					b.Fatalf("%s: %d", p.path, pg.status)
				}
			}
		})
	}
}
