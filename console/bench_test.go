package console_test

import (
	"fmt"
	"net/http"
	"strings"
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
// other pages; and the portal's pages of a customer whose user holds
// 10,000 keys. The target is under 50 ms a page (docs/console.md).
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
	// A customer of the portal whose user holds 10,000 of its own keys.
	customer, err := e.svc.Tenancy.CreateUser(e.rootCtx(), a.ID, keyward.UserCreate{Name: "customer", ExternalID: "cust-bench"})
	if err != nil {
		b.Fatal(err)
	}
	for batch := 0; batch < 10; batch++ {
		keys := make([]*keyward.Key, 1000)
		for i := range keys {
			id := apikey.NewID("key")
			keys[i] = &keyward.Key{ID: id, Hash: hasher.Hash(id), PepperVersion: hasher.Current(), Prefix: "kw_user", Start: "kw_user_" + id[4:8],
				Environment: "live", Name: fmt.Sprintf("ckey-%d-%d", batch, i), Role: keyward.RoleUser, AccountID: a.ID, UserID: customer.ID, CreatedAt: now, UpdatedAt: now}
		}
		if err := e.store.CreateKeys(b.Context(), keyward.Change{}, keys); err != nil {
			b.Fatal(err)
		}
	}
	link, err := e.svc.Portal.CreatePortalSession(e.rootCtx(), keyward.PortalSessionCreate{AccountID: a.ID, ExternalID: "cust-bench", ReturnURL: "https://shop.example/"})
	if err != nil {
		b.Fatal(err)
	}
	portal := e.browser()
	if pg := portal.get(link.URL); pg.status != http.StatusSeeOther {
		b.Fatalf("portal link: %d", pg.status)
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
		{"usage_user_30d", "/console/usage?period=30d&user=" + customer.ID},
		{"portal_branding", "/console/accounts/" + a.ID + "/portal"},
		{"portal_keys", "/portal/keys"},
		{"portal_keys_page", "/portal/keys?after=" + middle},
		{"portal_usage_30d", "/portal/usage?period=30d"},
	} {
		client := br
		if strings.HasPrefix(p.path, "/portal/") {
			client = portal
		}
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				if pg := client.get(p.path); pg.status != http.StatusOK {
					b.Fatalf("%s: %d", p.path, pg.status)
				}
			}
		})
	}
}
