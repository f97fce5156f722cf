package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

// TestSecretMeta sets secret metadata on an account and a key through the
// API and sees it returned by verify to root and to a keys:verify_secrets
// caller only, never by a read, a list, the audit log or a log line.
func TestSecretMeta(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const accountDSN = "postgres://acme:account-pw-7f3a@db.internal/acme"
	const keyDSN = "postgres://alice:key-pw-91bc@db.internal/alice"
	e.remember(accountDSN)
	e.remember(keyDSN)
	root := e.root

	r := e.do("POST", "/v1/accounts", root, `{"name":"acme","secret_meta":{"dsn":"`+accountDSN+`"}}`)
	if r.status != http.StatusCreated || bytes.Contains(r.body, []byte("account-pw")) {
		t.Fatalf("create account: %d %s", r.status, r.body)
	}
	var a keyward.Account
	r.decode(t, &a)
	if !a.HasSecretMeta {
		t.Errorf("created account: has_secret_meta is not set: %s", r.body)
	}
	u := e.mustUser(a.ID, "alice")
	r = e.do("POST", "/v1/keys", root, `{"account_id":"`+a.ID+`","user_id":"`+u.ID+`","role":"user","secret_meta":{"dsn":"`+keyDSN+`","schema":"alice"}}`)
	if r.status != http.StatusCreated || bytes.Contains(r.body, []byte("key-pw")) {
		t.Fatalf("create key: %d %s", r.status, r.body)
	}
	var k keyward.CreatedKey
	r.decode(t, &k)
	e.remember(k.Secret)
	if !k.HasSecretMeta {
		t.Errorf("created key: has_secret_meta is not set: %s", r.body)
	}

	// Reads and lists say only that there is some.
	for _, path := range []string{"/v1/keys/" + k.ID, "/v1/keys", "/v1/keys?account_id=" + a.ID, "/v1/accounts/" + a.ID, "/v1/accounts", "/v1/audit"} {
		r := e.do("GET", path, root, "")
		if r.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, r.status, r.body)
		}
		if bytes.Contains(r.body, []byte("-pw-")) || bytes.Contains(r.body, []byte(`"dsn"`)) {
			t.Errorf("GET %s reveals secret metadata: %s", path, r.body)
		}
		if path != "/v1/audit" && !bytes.Contains(r.body, []byte(`"has_secret_meta":true`)) {
			t.Errorf("GET %s: no has_secret_meta: %s", path, r.body)
		}
	}
	audit, err := e.client(root).AuditEntries(t.Context(), keyward.AuditFilter{TargetID: k.ID}, keyward.Page{})
	if err != nil || len(audit.Items) != 1 || !strings.Contains(string(audit.Items[0].Details), `"secret_meta":"set"`) {
		t.Fatalf("audit of key.create = %+v, %v; want details saying secret_meta was set", audit, err)
	}

	plainVerifier := e.mustKey(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin, Permissions: []string{"keys:verify"}})
	secretsVerifier := e.mustKey(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin, Permissions: []string{"keys:verify_secrets"}})
	verify := func(as keyward.Secret, key string) *keyward.VerifyResult {
		t.Helper()
		res, err := e.client(as).VerifyKey(t.Context(), keyward.VerifyRequest{Key: key})
		if err != nil || !res.Valid {
			t.Fatalf("verify: %+v, %v", res, err)
		}
		return res
	}
	wantSecrets := func(res *keyward.VerifyResult, key, account string) {
		t.Helper()
		if got := compact(t, res.SecretMeta); got != key {
			t.Errorf("secret_meta = %s, want %s", got, key)
		}
		if got := compact(t, res.AccountSecretMeta); got != account {
			t.Errorf("account_secret_meta = %s, want %s", got, account)
		}
	}
	keyJSON := `{"dsn":"` + keyDSN + `","schema":"alice"}`
	accountJSON := `{"dsn":"` + accountDSN + `"}`
	wantSecrets(verify(root, k.Secret), keyJSON, accountJSON)
	wantSecrets(verify(keyward.Secret(secretsVerifier.Secret), k.Secret), keyJSON, accountJSON)
	wantSecrets(verify(keyward.Secret(plainVerifier.Secret), k.Secret), "", "")
	// A key without its own has its account's.
	wantSecrets(verify(root, secretsVerifier.Secret), "", accountJSON)
	// An invalid key gets nothing, even for root.
	if res, err := e.client(root).VerifyKey(t.Context(), keyward.VerifyRequest{Key: k.Secret, Permissions: []string{"missing"}}); err != nil || res.Valid || res.SecretMeta != nil || res.AccountSecretMeta != nil {
		t.Errorf("verify refused for permissions: %+v, %v", res, err)
	}

	// Only root and account admins set it.
	userCtl := e.mustKey(keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Role: keyward.RoleUser})
	if r := e.do("PATCH", "/v1/keys/"+userCtl.ID, keyward.Secret(userCtl.Secret), `{"secret_meta":{"dsn":"postgres://elsewhere"}}`); r.status != http.StatusForbidden {
		t.Errorf("a user key setting secret_meta: %d %s", r.status, r.body)
	}
	for _, body := range []string{`{"secret_meta":"dsn"}`, `{"secret_meta":[1]}`, `{"secret_meta":{"a":1},"clear_secret_meta":true}`,
		`{"secret_meta":{"big":"` + strings.Repeat("x", keyward.MaxSecretMetaBytes) + `"}}`} {
		if r := e.do("PATCH", "/v1/keys/"+k.ID, root, body); r.status != http.StatusBadRequest {
			t.Errorf("PATCH %.40s: %d %s", body, r.status, r.body)
		}
	}

	// Rotation carries it over, sealed for the replacement.
	var next keyward.CreatedKey
	r = e.do("POST", "/v1/keys/"+k.ID+"/rotate", root, `{}`)
	if r.status != http.StatusCreated {
		t.Fatalf("rotate: %d %s", r.status, r.body)
	}
	r.decode(t, &next)
	e.remember(next.Secret)
	wantSecrets(verify(keyward.Secret(secretsVerifier.Secret), next.Secret), keyJSON, accountJSON)

	// Updated, then removed; the account's removed too.
	if r := e.do("PATCH", "/v1/keys/"+next.ID, root, `{"secret_meta":{"schema":"alice2"}}`); r.status != http.StatusOK {
		t.Fatalf("PATCH secret_meta: %d %s", r.status, r.body)
	}
	wantSecrets(verify(root, next.Secret), `{"schema":"alice2"}`, accountJSON)
	if r := e.do("PATCH", "/v1/keys/"+next.ID, root, `{"clear_secret_meta":true}`); r.status != http.StatusOK || bytes.Contains(r.body, []byte("has_secret_meta")) {
		t.Fatalf("PATCH clear_secret_meta: %d %s", r.status, r.body)
	}
	if r := e.do("PATCH", "/v1/accounts/"+a.ID, root, `{"clear_secret_meta":true}`); r.status != http.StatusOK || bytes.Contains(r.body, []byte("has_secret_meta")) {
		t.Fatalf("PATCH account clear_secret_meta: %d %s", r.status, r.body)
	}
	wantSecrets(verify(root, next.Secret), "", "")
	audit, err = e.client(root).AuditEntries(t.Context(), keyward.AuditFilter{Action: "account.update"}, keyward.Page{})
	if err != nil || len(audit.Items) != 1 || !strings.Contains(string(audit.Items[0].Details), `"secret_meta":"removed"`) {
		t.Fatalf("audit of account.update = %+v, %v; want details saying secret_meta was removed", audit, err)
	}
	// No audit entry anywhere holds a secret in clear.
	all, err := e.client(root).AuditEntries(t.Context(), keyward.AuditFilter{}, keyward.Page{Limit: keyward.MaxPageLimit})
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range all.Items {
		if bytes.Contains(en.Details, []byte("-pw-")) || bytes.Contains(en.Details, []byte("alice2")) {
			t.Errorf("audit entry %d (%s) holds secret metadata: %s", en.Seq, en.Action, en.Details)
		}
	}
}

func compact(t *testing.T, m json.RawMessage) string {
	t.Helper()
	if len(m) == 0 {
		return ""
	}
	var b bytes.Buffer
	if err := json.Compact(&b, m); err != nil {
		t.Fatalf("compact %s: %v", m, err)
	}
	return b.String()
}
