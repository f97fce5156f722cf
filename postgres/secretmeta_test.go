package postgres_test

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/admin"
	"github.com/keyward/keyward/keywardtest"
)

// TestSecretMetaNotInClear sets secret metadata on an account and a key
// through the admin service, then reads every row of the tables that could
// hold it, as text, straight from PostgreSQL: the values appear nowhere.
func TestSecretMetaNotInClear(t *testing.T) {
	t.Parallel()
	dbURL := keywardtest.PostgresURL(t)
	schema := keywardtest.NewPostgresSchema(t, dbURL)
	s := open(t, dbURL, schema)
	svc := admin.New(admin.Config{Store: s, Hasher: keywardtest.NewHasher(t), Sealer: keywardtest.NewKeyring(t), Logger: slog.New(slog.DiscardHandler)})
	_, rootKey, err := svc.Keys.Bootstrap(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	root := keyward.NewContextWithIdentity(t.Context(), keyward.IdentityOf(rootKey, ""))
	const accountDSN, keyDSN = "postgres://acme:account-pw-5e1d@db.internal/acme", "postgres://alice:key-pw-c0ff@db.internal/alice"
	acc, err := svc.Tenancy.CreateAccount(root, keyward.AccountCreate{Name: "acme", SecretMeta: json.RawMessage(`{"dsn":"` + accountDSN + `"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Keys.CreateKey(root, keyward.KeyCreate{AccountID: acc.ID, Role: keyward.RoleAccountAdmin,
		SecretMeta: json.RawMessage(`{"dsn":"` + keyDSN + `"}`)}); err != nil {
		t.Fatal(err)
	}
	conn := rawConn(t, dbURL)
	for _, table := range []string{"accounts", "keys", "audit_log", "webhook_events"} {
		rows, err := conn.Query(t.Context(), "SELECT t::text FROM "+schema+"."+table+" t")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			var row string
			if err := rows.Scan(&row); err != nil {
				t.Fatal(err)
			}
			n++
			for _, secret := range []string{"account-pw-5e1d", "key-pw-c0ff", "db.internal"} {
				if strings.Contains(row, secret) {
					t.Errorf("%s holds %q in clear: %s", table, secret, row)
				}
			}
		}
		rows.Close()
		if table != "webhook_events" && n == 0 {
			t.Errorf("%s has no rows: the test reads the wrong schema", table)
		}
	}
}
