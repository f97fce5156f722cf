package keywardtest

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keyring"
)

// Master keys of the secret metadata tests: version 1, then 2.
var (
	masterKey1 = keyward.Secret("hex:" + strings.Repeat("ab", 32))
	masterKey2 = keyward.Secret("hex:" + strings.Repeat("cd", 32))
)

// NewKeyrings returns a keyring holding master key 1 only (NewKeyring's),
// one holding keys 1 and 2 (2 current), and one holding key 2 only: the
// three stages of a master key rotation.
func NewKeyrings(t testing.TB) (v1, both, v2 *keyring.Keyring) {
	t.Helper()
	var err error
	if v1, err = keyring.New(map[int]keyward.Secret{1: masterKey1}); err == nil {
		if both, err = keyring.New(map[int]keyward.Secret{1: masterKey1, 2: masterKey2}); err == nil {
			v2, err = keyring.New(map[int]keyward.Secret{2: masterKey2})
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return v1, both, v2
}

// seal seals plain with kr for ad, failing the test on error.
func seal(t testing.TB, kr *keyring.Keyring, plain string, ad []byte) *keyward.Sealed {
	t.Helper()
	v, b, err := kr.Seal([]byte(plain), ad)
	if err != nil {
		t.Fatal(err)
	}
	return &keyward.Sealed{Version: v, Data: b}
}

// openSealed opens s with kr for ad, failing the test on error.
func openSealed(t testing.TB, kr *keyring.Keyring, s *keyward.Sealed, ad []byte) string {
	t.Helper()
	if s == nil {
		t.Fatalf("no sealed value")
	}
	b, err := kr.Open(s.Version, s.Data, ad)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return string(b)
}

func sameSealed(a, b *keyward.Sealed) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Version == b.Version && bytes.Equal(a.Data, b.Data)
}

func testSecretMeta(t *testing.T, open func(t *testing.T) keyward.Store) {
	t.Run("stored sealed and read back on every read of the key", func(t *testing.T) {
		f := newFixture(t, open)
		kr, _, _ := NewKeyrings(t)
		a := &keyward.Account{ID: apikey.NewID("acc"), Name: "tenant", CreatedAt: fixedTime, UpdatedAt: fixedTime}
		a.SecretMeta = seal(t, kr, `{"dsn":"postgres://tenant-a"}`, keyward.AccountSecretMetaAD(a.ID))
		must(t, f.s.CreateAccount(f.ctx, keyward.Change{}, a))
		got, err := f.s.Account(f.ctx, a.ID)
		must(t, err)
		if !sameSealed(got.SecretMeta, a.SecretMeta) || !got.HasSecretMeta {
			t.Fatalf("Account: secret meta %+v (has %v), want %+v", got.SecretMeta, got.HasSecretMeta, a.SecretMeta)
		}
		accounts, _, err := f.s.Accounts(f.ctx, keyward.Page{})
		must(t, err)
		if len(accounts) != 1 || !accounts[0].HasSecretMeta {
			t.Fatalf("Accounts: %+v, want the account with secret meta", accounts)
		}

		k := keyward.Key{ID: apikey.NewID("key"), Role: keyward.RoleAccountAdmin, AccountID: a.ID}
		k.SecretMeta = seal(t, kr, `{"schema":"a1"}`, keyward.KeySecretMetaAD(k.ID))
		created := NewKey(t, f.s, f.h, k)
		byHash, err := f.s.KeyByHash(f.ctx, created.Hash)
		must(t, err)
		list, _, err := f.s.Keys(f.ctx, keyward.KeyFilter{AccountID: a.ID}, keyward.Page{})
		must(t, err)
		if len(list) != 1 {
			t.Fatalf("Keys = %d keys, want 1", len(list))
		}
		for name, got := range map[string]*keyward.Key{"Key": &created.Key, "KeyByHash": byHash, "Keys": list[0]} {
			if !sameSealed(got.SecretMeta, k.SecretMeta) || !got.HasSecretMeta || !sameSealed(got.AccountSecretMeta, a.SecretMeta) {
				t.Errorf("%s: secret meta %+v (has %v), account's %+v; want %+v and %+v", name, got.SecretMeta, got.HasSecretMeta, got.AccountSecretMeta, k.SecretMeta, a.SecretMeta)
			}
		}
		if s := openSealed(t, kr, byHash.SecretMeta, keyward.KeySecretMetaAD(k.ID)); s != `{"schema":"a1"}` {
			t.Errorf("opened secret meta = %s", s)
		}

		// A key without: nil, and its account's is still filled.
		plain := NewAdminKey(t, f.s, f.h, a.ID)
		if plain.SecretMeta != nil || plain.HasSecretMeta || !sameSealed(plain.AccountSecretMeta, a.SecretMeta) {
			t.Errorf("key without secret meta: %+v, %v, account's %+v", plain.SecretMeta, plain.HasSecretMeta, plain.AccountSecretMeta)
		}
		// CreateKey fills the account's, like AccountDisabled.
		fresh := &keyward.Key{ID: apikey.NewID("key"), Role: keyward.RoleAccountAdmin, AccountID: a.ID, Hash: keyward.KeyHash{1}, PepperVersion: 1,
			Start: "kw_acct_abcd", Prefix: "kw_acct", Permissions: []string{}, CreatedAt: fixedTime, UpdatedAt: fixedTime}
		must(t, f.s.CreateKey(f.ctx, keyward.Change{}, fresh))
		if !sameSealed(fresh.AccountSecretMeta, a.SecretMeta) {
			t.Errorf("CreateKey left AccountSecretMeta %+v, want the account's", fresh.AccountSecretMeta)
		}
	})

	t.Run("updated and removed", func(t *testing.T) {
		f := newFixture(t, open)
		kr, _, _ := NewKeyrings(t)
		a := f.account("tenant")
		k := f.adminKey(a.ID)
		next := seal(t, kr, `{"dsn":"x"}`, keyward.KeySecretMetaAD(k.ID))
		got, err := f.s.UpdateKey(f.ctx, keyward.Change{}, k.ID, func(k *keyward.Key) error { k.SecretMeta = next; return nil })
		must(t, err)
		if !sameSealed(got.SecretMeta, next) || !got.HasSecretMeta {
			t.Fatalf("UpdateKey set: %+v", got.SecretMeta)
		}
		am := seal(t, kr, `{"dsn":"y"}`, keyward.AccountSecretMetaAD(a.ID))
		ga, err := f.s.UpdateAccount(f.ctx, keyward.Change{}, a.ID, func(a *keyward.Account) error { a.SecretMeta = am; return nil })
		must(t, err)
		if !sameSealed(ga.SecretMeta, am) || !ga.HasSecretMeta {
			t.Fatalf("UpdateAccount set: %+v", ga.SecretMeta)
		}
		gk, err := f.s.Key(f.ctx, k.ID)
		must(t, err)
		if !sameSealed(gk.AccountSecretMeta, am) {
			t.Errorf("key read after the account's update: account secret meta %+v, want %+v", gk.AccountSecretMeta, am)
		}
		// Changing something else keeps it.
		got, err = f.s.UpdateKey(f.ctx, keyward.Change{}, k.ID, func(k *keyward.Key) error { k.Name = "renamed"; return nil })
		must(t, err)
		if !sameSealed(got.SecretMeta, next) {
			t.Errorf("UpdateKey of the name lost the secret meta")
		}
		got, err = f.s.UpdateKey(f.ctx, keyward.Change{}, k.ID, func(k *keyward.Key) error { k.SecretMeta = nil; return nil })
		must(t, err)
		ga, err = f.s.UpdateAccount(f.ctx, keyward.Change{}, a.ID, func(a *keyward.Account) error { a.SecretMeta = nil; return nil })
		must(t, err)
		gk, err = f.s.Key(f.ctx, k.ID)
		must(t, err)
		if got.SecretMeta != nil || got.HasSecretMeta || ga.SecretMeta != nil || ga.HasSecretMeta || gk.AccountSecretMeta != nil {
			t.Errorf("after removal: key %+v, account %+v", got.SecretMeta, ga.SecretMeta)
		}
		// A value that is not sealed is refused.
		_, err = f.s.UpdateKey(f.ctx, keyward.Change{}, k.ID, func(k *keyward.Key) error { k.SecretMeta = &keyward.Sealed{Data: []byte("{}")}; return nil })
		wantCode(t, err, keyward.EINVALID)
		_, err = f.s.UpdateAccount(f.ctx, keyward.Change{}, a.ID, func(a *keyward.Account) error { a.SecretMeta = &keyward.Sealed{Version: 1}; return nil })
		wantCode(t, err, keyward.EINVALID)
	})

	t.Run("Reseal re-encrypts every kind under the new version, in batches, once", func(t *testing.T) {
		f := newFixture(t, open)
		v1, both, v2 := NewKeyrings(t)

		// An audit entry sealed directly under version 1, as written
		// before envelopes; then enveloped ones.
		legacy := NewAuditEntry("legacy.action", "key_x", "", "key_y")
		legacy.KeyVersion, legacy.Sealed, _ = v1.Seal([]byte(`{"old":true}`), legacy.DetailsAD())
		must(t, f.s.AppendAudit(f.ctx, legacy))

		a := &keyward.Account{ID: apikey.NewID("acc"), Name: "tenant", CreatedAt: fixedTime, UpdatedAt: fixedTime}
		a.SecretMeta = seal(t, v1, `{"dsn":"account"}`, keyward.AccountSecretMetaAD(a.ID))
		must(t, f.s.CreateAccount(f.ctx, keyward.Change{}, a))
		u := &keyward.User{ID: apikey.NewID("usr"), AccountID: a.ID, Name: "alice", CreatedAt: fixedTime}
		u.SecretMeta = seal(t, v1, `{"dsn":"user"}`, keyward.UserSecretMetaAD(u.ID))
		must(t, f.s.CreateUser(f.ctx, keyward.Change{}, u))
		n := keyward.ResealBatch*2 + 7
		keys := make([]*keyward.Key, n)
		for i := range keys {
			id := apikey.NewID("key")
			keys[i] = &keyward.Key{ID: id, Role: keyward.RoleAccountAdmin, AccountID: a.ID, Hash: f.h.Hash("kw_acct_" + id),
				PepperVersion: 1, Start: "kw_acct_" + strconv.Itoa(i), Prefix: "kw_acct", Permissions: []string{},
				SecretMeta: seal(t, v1, fmt.Sprintf(`{"n":%d}`, i), keyward.KeySecretMetaAD(id)), CreatedAt: fixedTime, UpdatedAt: fixedTime}
		}
		must(t, f.s.CreateKeys(f.ctx, keyward.Change{}, keys))
		ep := newEndpoint(a.ID)
		ep.SecretVersion, ep.SealedSecret, _ = v1.Seal([]byte("whsec_test"), keyward.WebhookSecretAD(ep.ID))
		must(t, f.s.CreateWebhookEndpoint(f.ctx, keyward.Change{}, ep))
		conn := newConnection(a.ID, "git")
		// A password sealed before passwords were bound to their kind,
		// base URL and user name: the rekey binds it.
		conn.PasswordVersion, conn.SealedPassword, _ = v1.Seal([]byte("gitea-pw"), keyward.LegacyProviderPasswordAD(conn.ID))
		must(t, f.s.CreateProviderConnection(f.ctx, keyward.Change{}, conn))
		nopw := newConnection(a.ID, "n8n")
		nopw.SealedPassword, nopw.PasswordVersion = nil, 0
		must(t, f.s.CreateProviderConnection(f.ctx, keyward.Change{}, nopw))
		for i := range 3 {
			e := NewAuditEntry(fmt.Sprintf("enveloped.%d", i), "key_x", a.ID, keys[i].ID)
			e.KeyVersion, e.WrappedKey, e.Sealed, _ = v1.SealEnvelope([]byte(fmt.Sprintf(`{"i":%d}`, i)), e.DetailsAD())
			must(t, f.s.AppendAudit(f.ctx, e))
		}
		before := AuditLog(t, f.s)

		wantCounts := func(want string) {
			t.Helper()
			counts, err := f.s.SealedCounts(f.ctx)
			must(t, err)
			var got []string
			for _, c := range counts {
				got = append(got, fmt.Sprintf("%s/%d=%d", c.Kind, c.Version, c.Count))
			}
			if strings.Join(got, " ") != want {
				t.Errorf("SealedCounts = %s, want %s", strings.Join(got, " "), want)
			}
		}
		wantCounts(fmt.Sprintf("key_secret_meta/1=%d account_secret_meta/1=1 user_secret_meta/1=1 webhook_secret/1=1 provider_password/1=1 audit_key/1=3 audit_details/1=1", n))

		_, err := f.s.Reseal(f.ctx, keyward.SealedAuditDetails, 2, nil)
		wantCode(t, err, keyward.EINVALID)

		report, err := both.Rekey(f.ctx, f.s)
		must(t, err)
		var got []string
		for _, c := range report.Resealed {
			got = append(got, fmt.Sprintf("%s=%d", c.Kind, c.Count))
		}
		if want := fmt.Sprintf("key_secret_meta=%d account_secret_meta=1 user_secret_meta=1 webhook_secret=1 provider_password=1 audit_key=3", n); strings.Join(got, " ") != want {
			t.Errorf("Rekey resealed %s, want %s", strings.Join(got, " "), want)
		}
		if len(report.Left) != 1 || report.Left[0].Kind != keyward.SealedAuditDetails || report.Left[0].Version != 1 || report.Left[0].Count != 1 {
			t.Errorf("Rekey left %+v, want the one legacy audit entry under version 1", report.Left)
		}
		wantCounts(fmt.Sprintf("key_secret_meta/2=%d account_secret_meta/2=1 user_secret_meta/2=1 webhook_secret/2=1 provider_password/2=1 audit_key/2=3 audit_details/1=1", n))

		// Everything but the legacy entry opens with version 2 alone.
		for i, k := range keys {
			got, err := f.s.Key(f.ctx, k.ID)
			must(t, err)
			if s := openSealed(t, v2, got.SecretMeta, keyward.KeySecretMetaAD(k.ID)); s != fmt.Sprintf(`{"n":%d}`, i) {
				t.Fatalf("key %d: secret meta %s", i, s)
			}
			if i == 0 && openSealed(t, v2, got.AccountSecretMeta, keyward.AccountSecretMetaAD(a.ID)) != `{"dsn":"account"}` {
				t.Fatalf("account secret meta after rekey")
			}
		}
		gu, err := f.s.User(f.ctx, u.ID)
		must(t, err)
		if s := openSealed(t, v2, gu.SecretMeta, keyward.UserSecretMetaAD(u.ID)); s != `{"dsn":"user"}` {
			t.Errorf("user secret meta after rekey = %q", s)
		}
		gep, err := f.s.WebhookEndpoint(f.ctx, ep.ID)
		must(t, err)
		if s := openSealed(t, v2, &keyward.Sealed{Version: gep.SecretVersion, Data: gep.SealedSecret}, keyward.WebhookSecretAD(ep.ID)); s != "whsec_test" {
			t.Errorf("webhook secret after rekey = %q", s)
		}
		gconn, err := f.s.ProviderConnection(f.ctx, conn.ID)
		must(t, err)
		if s := openSealed(t, v2, &keyward.Sealed{Version: gconn.PasswordVersion, Data: gconn.SealedPassword}, gconn.PasswordAD()); s != "gitea-pw" || !gconn.PasswordBound {
			t.Errorf("provider password after rekey = %q, bound %v", s, gconn.PasswordBound)
		}
		if gnopw, err := f.s.ProviderConnection(f.ctx, nopw.ID); err != nil || gnopw.SealedPassword != nil || gnopw.PasswordVersion != 0 {
			t.Errorf("connection without a password after rekey = %+v, %v; want it untouched", gnopw, err)
		}
		after := AuditLog(t, f.s)
		var chain keyward.AuditChain
		if !chain.Check(after) {
			t.Fatalf("audit chain after rekey: %+v", chain.Result())
		}
		for i, e := range after {
			if !bytes.Equal(e.Sealed, before[i].Sealed) || !bytes.Equal(e.Hash, before[i].Hash) {
				t.Errorf("entry %d: sealed details or hash changed by the rekey", e.Seq)
			}
			if len(e.WrappedKey) == 0 {
				continue
			}
			if e.KeyVersion != 2 || bytes.Equal(e.WrappedKey, before[i].WrappedKey) {
				t.Errorf("entry %d: key version %d, wrapped key unchanged: %v", e.Seq, e.KeyVersion, bytes.Equal(e.WrappedKey, before[i].WrappedKey))
			}
			if _, err := v2.OpenEnvelope(e.KeyVersion, e.WrappedKey, e.Sealed, e.DetailsAD()); err != nil {
				t.Errorf("entry %d after rekey: %v", e.Seq, err)
			}
		}

		// A second run has nothing to do.
		report, err = both.Rekey(f.ctx, f.s)
		must(t, err)
		for _, c := range report.Resealed {
			if c.Count != 0 {
				t.Errorf("second Rekey resealed %d of %s", c.Count, c.Kind)
			}
		}
	})

	t.Run("Provider passwords are bound to their kind, base URL and user name", func(t *testing.T) {
		f := newFixture(t, open)
		kr := NewKeyring(t)
		a := f.account("tenant")
		// Sealed by a keyward before the binding: the id only.
		legacy := newConnection(a.ID, "old")
		legacy.PasswordVersion, legacy.SealedPassword, _ = kr.Seal([]byte("old-pw"), keyward.LegacyProviderPasswordAD(legacy.ID))
		must(t, f.s.CreateProviderConnection(f.ctx, keyward.Change{}, legacy))
		bound := newConnection(a.ID, "new")
		bound.PasswordBound = true
		bound.PasswordVersion, bound.SealedPassword, _ = kr.Seal([]byte("new-pw"), bound.PasswordAD())
		must(t, f.s.CreateProviderConnection(f.ctx, keyward.Change{}, bound))

		// The legacy one is re-sealed under the same version, bound; the
		// bound one is left alone; a second pass does nothing.
		n, err := kr.ResealKind(f.ctx, f.s, keyward.SealedProviderPassword)
		if err != nil || n != 1 {
			t.Fatalf("ResealKind = %d, %v; want the one legacy password", n, err)
		}
		got, err := f.s.ProviderConnection(f.ctx, legacy.ID)
		must(t, err)
		if s := openSealed(t, kr, &keyward.Sealed{Version: got.PasswordVersion, Data: got.SealedPassword}, got.PasswordAD()); s != "old-pw" || !got.PasswordBound {
			t.Fatalf("legacy password after the reseal = %q, bound %v", s, got.PasswordBound)
		}
		if n, err := kr.ResealKind(f.ctx, f.s, keyward.SealedProviderPassword); err != nil || n != 0 {
			t.Fatalf("second ResealKind = %d, %v; want nothing to do", n, err)
		}

		// A base URL changed behind keyward's back: the password no
		// longer opens, and marking it unbound to have it re-sealed with
		// the new URL fails, naming the connection.
		_, err = f.s.UpdateProviderConnection(f.ctx, keyward.Change{}, bound.ID, func(c *keyward.ProviderConnection) error {
			c.BaseURL = "https://attacker.example"
			return nil
		})
		must(t, err)
		got, err = f.s.ProviderConnection(f.ctx, bound.ID)
		must(t, err)
		if _, err := kr.Open(got.PasswordVersion, got.SealedPassword, got.PasswordAD()); err == nil {
			t.Fatal("a password opened after its base URL was changed")
		}
		_, err = f.s.UpdateProviderConnection(f.ctx, keyward.Change{}, bound.ID, func(c *keyward.ProviderConnection) error {
			c.PasswordBound = false
			return nil
		})
		must(t, err)
		if _, err := kr.ResealKind(f.ctx, f.s, keyward.SealedProviderPassword); err == nil || !strings.Contains(err.Error(), bound.ID) {
			t.Fatalf("ResealKind of a redirected password = %v, want an error naming %s", err, bound.ID)
		}
	})
}
