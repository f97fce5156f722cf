package admin_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

func raw(s string) *json.RawMessage { m := json.RawMessage(s); return &m }
func str(s string) *string          { return &s }

// sameJSON reports whether got holds the JSON value of want (PostgreSQL's
// jsonb spaces and orders objects its own way); both empty are the same.
func sameJSON(got json.RawMessage, want string) bool {
	if len(got) == 0 || want == "" {
		return len(got) == 0 && want == ""
	}
	var g, w any
	return json.Unmarshal(got, &g) == nil && json.Unmarshal([]byte(want), &w) == nil && reflect.DeepEqual(g, w)
}

// TestUserIdentity: a user's external id and meta reach verify through
// every key of the user, a key's own fields winning, and survive the user
// minting and rotating keys.
func TestUserIdentity(t *testing.T) {
	onEachStore(t, func(t *testing.T, e *env) {
		a := must(e.svc.Tenancy.CreateAccount(e.root, keyward.AccountCreate{Name: "acme"}))
		u := must(e.svc.Tenancy.CreateUser(e.root, a.ID, keyward.UserCreate{Name: "alice", ExternalID: "auth0|alice",
			Meta: json.RawMessage(`{"plan":"pro","region":"eu"}`), SecretMeta: json.RawMessage(`{"dsn":"postgres://alice@db/alice"}`)}))
		if !u.HasSecretMeta || !sameJSON(u.Meta, `{"plan":"pro","region":"eu"}`) {
			t.Fatalf("CreateUser = %+v", u)
		}
		plain := must(e.svc.Keys.CreateKey(e.root, keyward.KeyCreate{AccountID: a.ID, UserID: u.ID}))
		own := must(e.svc.Keys.CreateKey(e.root, keyward.KeyCreate{AccountID: a.ID, UserID: u.ID,
			Meta: json.RawMessage(`{"plan":"free"}`), SecretMeta: json.RawMessage(`{"schema":"alice_ci"}`)}))

		res := must(e.svc.Keys.VerifyKey(e.root, keyward.VerifyRequest{Key: plain.Secret}))
		if !res.Valid || res.Identity.ExternalID != "auth0|alice" || !sameJSON(res.Meta, `{"plan":"pro","region":"eu"}`) ||
			!sameJSON(res.SecretMeta, `{"dsn":"postgres://alice@db/alice"}`) {
			t.Fatalf("verify of a key without meta = %+v, identity %+v", res, res.Identity)
		}
		res = must(e.svc.Keys.VerifyKey(e.root, keyward.VerifyRequest{Key: own.Secret}))
		if !sameJSON(res.Meta, `{"plan":"free","region":"eu"}`) || !sameJSON(res.SecretMeta, `{"dsn":"postgres://alice@db/alice","schema":"alice_ci"}`) {
			t.Fatalf("verify of a key with its own meta = meta %s, secret meta %s", res.Meta, res.SecretMeta)
		}
		// The user mints a key of its own and rotates it: both inherit.
		minted := must(e.svc.Keys.CreateKey(as(t, &plain.Key), keyward.KeyCreate{AccountID: a.ID, UserID: u.ID}))
		inherits := func(k *keyward.CreatedKey) {
			t.Helper()
			res := must(e.svc.Keys.VerifyKey(e.root, keyward.VerifyRequest{Key: k.Secret}))
			if !res.Valid || !sameJSON(res.SecretMeta, `{"dsn":"postgres://alice@db/alice"}`) || res.Identity.ExternalID != "auth0|alice" {
				t.Fatalf("verify of %s = %+v", k.ID, res)
			}
		}
		inherits(minted)
		inherits(must(e.svc.Keys.RotateKey(as(t, &minted.Key), minted.ID, keyward.KeyRotate{})))
		// A verifier with keys:verify alone gets the meta but no secret.
		verifier := must(e.svc.Keys.CreateKey(e.root, keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin, Permissions: []string{"keys:verify"}}))
		res = must(e.svc.Keys.VerifyKey(as(t, &verifier.Key), keyward.VerifyRequest{Key: plain.Secret}))
		if res.SecretMeta != nil || res.AccountSecretMeta != nil || !sameJSON(res.Meta, `{"plan":"pro","region":"eu"}`) {
			t.Fatalf("verify without keys:verify_secrets = %+v", res)
		}
		// Reads never return the secret.
		got := must(e.svc.Tenancy.User(e.root, a.ID, u.ID))
		b, _ := json.Marshal(got)
		if strings.Contains(string(b), "postgres://") || !strings.Contains(string(b), `"has_secret_meta":true`) {
			t.Fatalf("user as JSON = %s", b)
		}
	})
}

// TestUpdateUser: the fields change, a taken external id changes nothing,
// the user's cached keys are replaced at once, and the audit entry names
// the change without the secret.
func TestUpdateUser(t *testing.T) {
	onEachStore(t, func(t *testing.T, e *env) {
		a, u, _, userKey := e.tenant(t, "acme")
		other := must(e.svc.Tenancy.CreateUser(e.root, a.ID, keyward.UserCreate{Name: "bob", ExternalID: "ext-bob"}))
		e.obs.changed = nil

		got := must(e.svc.Tenancy.UpdateUser(e.root, a.ID, u.ID, keyward.UserUpdate{Name: str("Alice"), ExternalID: str("ext-alice"),
			Meta: raw(`{"tier": "gold"}`), SecretMeta: raw(`{"dsn": "postgres://alice"}`)}))
		if got.Name != "Alice" || got.ExternalID != "ext-alice" || !sameJSON(got.Meta, `{"tier":"gold"}`) || !got.HasSecretMeta || !got.UpdatedAt.Equal(e.now.UTC().Truncate(time.Microsecond)) {
			t.Fatalf("UpdateUser = %+v", got)
		}
		if !slices.Contains(e.obs.changed, userKey.ID) {
			t.Fatalf("observer heard of keys %v, want the user's key %s", e.obs.changed, userKey.ID)
		}
		// (That the observer's notice reaches the caches of every
		// instance is bustest's TestTwoInstances.)
		res := must(e.svc.Keys.VerifyKey(e.root, keyward.VerifyRequest{Key: userKey.Secret}))
		if res.Identity.ExternalID != "ext-alice" || !sameJSON(res.Meta, `{"tier":"gold"}`) || !sameJSON(res.SecretMeta, `{"dsn":"postgres://alice"}`) {
			t.Fatalf("after: %+v", res)
		}
		if found := must(e.svc.Tenancy.UserByExternalID(e.root, a.ID, "ext-alice")); found.ID != u.ID {
			t.Fatalf("lookup = %+v", found)
		}

		// Taken by bob: conflict, nothing changed.
		_, err := e.svc.Tenancy.UpdateUser(e.root, a.ID, u.ID, keyward.UserUpdate{Name: str("Mallory"), ExternalID: str(other.ExternalID)})
		wantCode(t, err, keyward.ECONFLICT)
		if now := must(e.svc.Tenancy.User(e.root, a.ID, u.ID)); now.Name != "Alice" || now.ExternalID != "ext-alice" {
			t.Fatalf("a refused update changed the user: %+v", now)
		}

		// Clearing: meta {} and clear_secret_meta.
		e.obs.changed = nil
		got = must(e.svc.Tenancy.UpdateUser(e.root, a.ID, u.ID, keyward.UserUpdate{Meta: raw(`{}`), ClearSecretMeta: true}))
		if got.Meta != nil || got.HasSecretMeta {
			t.Fatalf("after clearing = %+v", got)
		}
		e.engine.KeyChanged(must(e.store.Key(t.Context(), userKey.ID))) // as the observer of a server would
		res = must(e.svc.Keys.VerifyKey(e.root, keyward.VerifyRequest{Key: userKey.Secret}))
		if res.Meta != nil || res.SecretMeta != nil || res.Identity.ExternalID != "ext-alice" {
			t.Fatalf("verify after clearing = %+v", res)
		}
		// A rename alone changes nothing keys inherit: no cache churn.
		e.obs.changed = nil
		must(e.svc.Tenancy.UpdateUser(e.root, a.ID, u.ID, keyward.UserUpdate{Name: str("Alice L.")}))
		if len(e.obs.changed) != 0 {
			t.Errorf("a rename replaced cached keys %v", e.obs.changed)
		}

		// Audited, the secret as "set", never its value.
		l := must(e.svc.Audit.AuditEntries(e.root, keyward.AuditFilter{Action: "user.update", TargetID: u.ID}, keyward.Page{}))
		if len(l.Items) != 3 {
			t.Fatalf("user.update entries = %d, want 3 (the refused one is not a change)", len(l.Items))
		}
		var details map[string]any
		if err := json.Unmarshal(l.Items[0].Details, &details); err != nil {
			t.Fatal(err)
		}
		if details["secret_meta"] != "set" || details["external_id"] != "ext-alice" || strings.Contains(string(l.Items[0].Details), "postgres://") {
			t.Fatalf("audit details = %s", l.Items[0].Details)
		}

		// Bad input.
		for _, in := range []keyward.UserUpdate{
			{Name: str("")},
			{ExternalID: str(strings.Repeat("x", 300))},
			{Meta: raw(`[1]`)},
			{SecretMeta: raw(`"dsn"`)},
			{SecretMeta: raw(`{"a":1}`), ClearSecretMeta: true},
			{SecretMeta: raw(`{"a":"` + strings.Repeat("x", keyward.MaxSecretMetaBytes) + `"}`)},
		} {
			_, err := e.svc.Tenancy.UpdateUser(e.root, a.ID, u.ID, in)
			wantCode(t, err, keyward.EINVALID)
		}
		_, err = e.svc.Tenancy.UserByExternalID(e.root, a.ID, "")
		wantCode(t, err, keyward.EINVALID)
		_, err = e.svc.Tenancy.UserByExternalID(e.root, a.ID, "ext-nobody")
		wantCode(t, err, keyward.ENOTFOUND)
	})
}

// TestUpdateUserPermissions: root and the account's admins update users,
// admins not meta (only root sets what verifiers trust, as for keys); no
// user key may change its user, and another account's users are not found.
func TestUpdateUserPermissions(t *testing.T) {
	e := newEnv(t)
	a, u, adminA, userA := e.tenant(t, "a")
	b, ub, adminB, _ := e.tenant(t, "b")
	asAdmin, asUser := as(t, &adminA.Key), as(t, &userA.Key)

	// The account's admin: name, external id and secret meta.
	got := must(e.svc.Tenancy.UpdateUser(asAdmin, a.ID, u.ID, keyward.UserUpdate{ExternalID: str("ext-1"), SecretMeta: raw(`{"dsn":"x"}`)}))
	if got.ExternalID != "ext-1" || !got.HasSecretMeta {
		t.Fatalf("admin update = %+v", got)
	}
	must(e.svc.Tenancy.UserByExternalID(asAdmin, a.ID, "ext-1"))
	// ... but not meta, not even to clear it.
	for _, m := range []string{`{"plan":"enterprise"}`, `{}`} {
		_, err := e.svc.Tenancy.UpdateUser(asAdmin, a.ID, u.ID, keyward.UserUpdate{Meta: raw(m)})
		wantCode(t, err, keyward.EFORBIDDEN)
	}
	_, err := e.svc.Tenancy.CreateUser(asAdmin, a.ID, keyward.UserCreate{Name: "carol", Meta: json.RawMessage(`{"plan":"enterprise"}`)})
	wantCode(t, err, keyward.EFORBIDDEN)

	// A user key may change nothing of its user, nor look users up.
	for _, in := range []keyward.UserUpdate{{Name: str("me")}, {SecretMeta: raw(`{"dsn":"mine"}`)}, {Meta: raw(`{"plan":"x"}`)}} {
		_, err := e.svc.Tenancy.UpdateUser(asUser, a.ID, u.ID, in)
		wantCode(t, err, keyward.EFORBIDDEN)
	}
	_, err = e.svc.Tenancy.UserByExternalID(asUser, a.ID, "ext-1")
	wantCode(t, err, keyward.EFORBIDDEN)

	// Another account's admin: not found, by either path.
	_, err = e.svc.Tenancy.UpdateUser(as(t, &adminB.Key), a.ID, u.ID, keyward.UserUpdate{Name: str("x")})
	wantCode(t, err, keyward.ENOTFOUND)
	_, err = e.svc.Tenancy.UpdateUser(as(t, &adminB.Key), b.ID, u.ID, keyward.UserUpdate{Name: str("x")})
	wantCode(t, err, keyward.ENOTFOUND)
	_, err = e.svc.Tenancy.UserByExternalID(as(t, &adminB.Key), a.ID, "ext-1")
	wantCode(t, err, keyward.ENOTFOUND)
	// Nor through its own account's path with the other account's user.
	_, err = e.svc.Tenancy.UpdateUser(asAdmin, a.ID, ub.ID, keyward.UserUpdate{Name: str("x")})
	wantCode(t, err, keyward.ENOTFOUND)
	if now := must(e.svc.Tenancy.User(e.root, a.ID, u.ID)); now.Name != u.Name || now.ExternalID != "ext-1" {
		t.Fatalf("refused updates changed the user: %+v", now)
	}
	// Root sets meta.
	must(e.svc.Tenancy.UpdateUser(e.root, a.ID, u.ID, keyward.UserUpdate{Meta: raw(`{"plan":"enterprise"}`)}))
}
