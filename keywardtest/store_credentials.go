package keywardtest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// newConnection returns a gitea connection of account named name, with
// made-up sealed bytes for its password.
func newConnection(accountID, name string) *keyward.ProviderConnection {
	return &keyward.ProviderConnection{
		ID: apikey.NewID("pvc"), AccountID: accountID, Kind: "gitea", Name: name, BaseURL: "https://git.example.com",
		Username: "admin", SealedPassword: []byte("sealed"), PasswordVersion: 1, Timeout: keyward.Duration(5 * time.Second),
		CreatedBy: "key_x", CreatedAt: fixedTime, UpdatedAt: fixedTime,
	}
}

// newCredential returns an active credential created through conn, with
// the provider's id externalID, expiring 30 days after fixedTime.
func newCredential(conn *keyward.ProviderConnection, externalID string) *keyward.ManagedCredential {
	return &keyward.ManagedCredential{
		ID: apikey.NewID("crd"), ProviderID: conn.ID, Kind: conn.Kind, AccountID: conn.AccountID,
		ExternalID: externalID, ExternalUser: "alice", Name: "ci-" + externalID, Scopes: []string{"read:repository"},
		Hint: "abcd1234", ExpiresAt: ptr(fixedTime.Add(30 * 24 * time.Hour)), Status: keyward.CredentialActive,
		CreatedBy: "key_x", CreatedAt: fixedTime, UpdatedAt: fixedTime,
	}
}

func (f *fixture) connection(accountID, name string) *keyward.ProviderConnection {
	f.t.Helper()
	c := newConnection(accountID, name)
	must(f.t, f.s.CreateProviderConnection(f.ctx, keyward.Change{}, c))
	return c
}

func (f *fixture) credential(conn *keyward.ProviderConnection, externalID string, status keyward.CredentialStatus) *keyward.ManagedCredential {
	f.t.Helper()
	c := newCredential(conn, externalID)
	c.Status = status
	must(f.t, f.s.CreateCredential(f.ctx, keyward.Change{}, c))
	return c
}

func wantConnection(t testing.TB, got, want *keyward.ProviderConnection) {
	t.Helper()
	if got.ID != want.ID || got.AccountID != want.AccountID || got.Kind != want.Kind || got.Name != want.Name ||
		got.BaseURL != want.BaseURL || got.Username != want.Username || string(got.SealedPassword) != string(want.SealedPassword) ||
		got.PasswordVersion != want.PasswordVersion || got.Timeout != want.Timeout || got.CreatedBy != want.CreatedBy ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Fatalf("provider connection = %+v, want %+v", got, want)
	}
	isUTC(t, "CreatedAt", got.CreatedAt)
	isUTC(t, "UpdatedAt", got.UpdatedAt)
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b) && a.Location() == time.UTC
}

func wantCredential(t testing.TB, got, want *keyward.ManagedCredential) {
	t.Helper()
	if got.ID != want.ID || got.ProviderID != want.ProviderID || got.Kind != want.Kind || got.AccountID != want.AccountID ||
		got.ExternalID != want.ExternalID || got.ExternalUser != want.ExternalUser || got.Name != want.Name ||
		!slices.Equal(got.Scopes, want.Scopes) || got.Hint != want.Hint || !sameTime(got.ExpiresAt, want.ExpiresAt) ||
		got.Status != want.Status || got.RotatedFrom != want.RotatedFrom || got.ReplacedBy != want.ReplacedBy ||
		!sameTime(got.GraceUntil, want.GraceUntil) || !sameTime(got.RevokedAt, want.RevokedAt) ||
		got.CreatedBy != want.CreatedBy || !got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Fatalf("credential = %+v, want %+v", got, want)
	}
	isUTC(t, "CreatedAt", got.CreatedAt)
	isUTC(t, "UpdatedAt", got.UpdatedAt)
}

func providerID(c *keyward.ProviderConnection) string  { return c.ID }
func credentialID(c *keyward.ManagedCredential) string { return c.ID }

func testCredentials(t *testing.T, open func(*testing.T) keyward.Store) {
	t.Run("connections are created, read and listed", func(t *testing.T) {
		f := newFixture(t, open)
		a, b := f.account("acme"), f.account("globex")
		ca := newConnection(a.ID, "git")
		must(t, f.s.CreateProviderConnection(f.ctx, keyward.Change{}, ca))
		got, err := f.s.ProviderConnection(f.ctx, ca.ID)
		must(t, err)
		wantConnection(t, got, ca)

		n8n := newConnection(a.ID, "automation")
		n8n.Kind, n8n.SealedPassword, n8n.PasswordVersion, n8n.Timeout = "n8n", nil, 0, 0
		must(t, f.s.CreateProviderConnection(f.ctx, keyward.Change{}, n8n))
		got, err = f.s.ProviderConnection(f.ctx, n8n.ID)
		must(t, err)
		wantConnection(t, got, n8n)

		wantCode(t, f.s.CreateProviderConnection(f.ctx, keyward.Change{}, ca), keyward.ECONFLICT)
		wantCode(t, f.s.CreateProviderConnection(f.ctx, keyward.Change{}, newConnection(a.ID, "git")), keyward.ECONFLICT)
		wantCode(t, f.s.CreateProviderConnection(f.ctx, keyward.Change{}, newConnection("acc_missing", "git")), keyward.ENOTFOUND)
		unsealed := newConnection(a.ID, "plain")
		unsealed.PasswordVersion = 0
		wantCode(t, f.s.CreateProviderConnection(f.ctx, keyward.Change{}, unsealed), keyward.EINVALID)
		cb := f.connection(b.ID, "git") // the same name in another account
		_, err = f.s.ProviderConnection(f.ctx, "pvc_missing")
		wantCode(t, err, keyward.ENOTFOUND)

		list, next, err := f.s.ProviderConnections(f.ctx, a.ID, keyward.Page{})
		must(t, err)
		if next != "" || len(list) != 2 {
			t.Fatalf("connections of %s = %d, next %q; want 2", a.ID, len(list), next)
		}
		byID := map[string]*keyward.ProviderConnection{ca.ID: ca, n8n.ID: n8n}
		for _, c := range list {
			wantConnection(t, c, byID[c.ID])
		}
		var more []string
		for range 3 {
			more = append(more, f.connection(b.ID, apikey.NewID("name")).ID)
		}
		ofB := pageWalk(t, 2, func(p keyward.Page) ([]*keyward.ProviderConnection, string, error) {
			return f.s.ProviderConnections(f.ctx, b.ID, p)
		}, providerID)
		wantIDs(t, ofB, append(more, cb.ID)...)
		all := pageWalk(t, 2, func(p keyward.Page) ([]*keyward.ProviderConnection, string, error) {
			return f.s.ProviderConnections(f.ctx, "", p)
		}, providerID)
		wantIDs(t, all, append(more, cb.ID, ca.ID, n8n.ID)...)
	})

	t.Run("connections are updated; id, account and kind never change", func(t *testing.T) {
		f := newFixture(t, open)
		a, b := f.account("acme"), f.account("globex")
		c, other := f.connection(a.ID, "git"), f.connection(a.ID, "git2")
		later := fixedTime.Add(time.Hour)
		want := *c
		want.Name, want.BaseURL, want.Username, want.SealedPassword, want.PasswordVersion, want.Timeout, want.UpdatedAt =
			"forge", "https://forge.example.com", "root", []byte("resealed"), 2, keyward.Duration(30*time.Second), later
		up, err := f.s.UpdateProviderConnection(f.ctx, keyward.Change{}, c.ID, func(got *keyward.ProviderConnection) error {
			wantConnection(t, got, c)
			got.Name, got.BaseURL, got.Username, got.SealedPassword, got.PasswordVersion, got.Timeout, got.UpdatedAt =
				want.Name, want.BaseURL, want.Username, want.SealedPassword, want.PasswordVersion, want.Timeout, want.UpdatedAt
			return nil
		})
		must(t, err)
		wantConnection(t, up, &want)
		got, err := f.s.ProviderConnection(f.ctx, c.ID)
		must(t, err)
		wantConnection(t, got, &want)

		for name, change := range map[string]func(*keyward.ProviderConnection){
			"id":      func(c *keyward.ProviderConnection) { c.ID = apikey.NewID("pvc") },
			"account": func(c *keyward.ProviderConnection) { c.AccountID = b.ID },
			"kind":    func(c *keyward.ProviderConnection) { c.Kind = "n8n" },
		} {
			_, err := f.s.UpdateProviderConnection(f.ctx, keyward.Change{}, c.ID, func(c *keyward.ProviderConnection) error {
				c.Name = "changed"
				change(c)
				return nil
			})
			if keyward.ErrorCode(err) != keyward.EINVALID {
				t.Errorf("changing the %s: error %v, want invalid", name, err)
			}
		}
		_, err = f.s.UpdateProviderConnection(f.ctx, keyward.Change{}, c.ID, func(c *keyward.ProviderConnection) error { c.Name = other.Name; return nil })
		wantCode(t, err, keyward.ECONFLICT)
		_, err = f.s.UpdateProviderConnection(f.ctx, keyward.Change{}, c.ID, func(c *keyward.ProviderConnection) error { c.Name = "changed"; return errAbort })
		if !errors.Is(err, errAbort) {
			t.Fatalf("UpdateProviderConnection error = %v, want fn's error", err)
		}
		got, err = f.s.ProviderConnection(f.ctx, c.ID)
		must(t, err)
		wantConnection(t, got, &want)
		_, err = f.s.UpdateProviderConnection(f.ctx, keyward.Change{}, "pvc_missing", func(*keyward.ProviderConnection) error {
			t.Error("fn called for a missing connection")
			return nil
		})
		wantCode(t, err, keyward.ENOTFOUND)
	})

	t.Run("a connection is deleted only when its credentials are finished", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		c := f.connection(a.ID, "git")
		done := []*keyward.ManagedCredential{
			f.credential(c, "1", keyward.CredentialRevoked),
			f.credential(c, "2", keyward.CredentialExpired),
			f.credential(c, "3", keyward.CredentialVanished),
		}
		live := f.credential(c, "4", keyward.CredentialActive)
		for _, st := range []keyward.CredentialStatus{keyward.CredentialActive, keyward.CredentialRotated, keyward.CredentialOrphaned} {
			_, err := f.s.UpdateCredential(f.ctx, keyward.Change{}, live.ID, func(c *keyward.ManagedCredential) error { c.Status = st; return nil })
			must(t, err)
			_, err = f.s.DeleteProviderConnection(f.ctx, keyward.Change{}, c.ID)
			if keyward.ErrorCode(err) != keyward.ECONFLICT {
				t.Fatalf("deleting a connection with a credential %s: error %v, want conflict", st, err)
			}
		}
		_, err := f.s.ProviderConnection(f.ctx, c.ID)
		must(t, err)
		_, err = f.s.UpdateCredential(f.ctx, keyward.Change{}, live.ID, func(c *keyward.ManagedCredential) error {
			c.Status, c.RevokedAt = keyward.CredentialRevoked, ptr(fixedTime)
			return nil
		})
		must(t, err)
		del, err := f.s.DeleteProviderConnection(f.ctx, keyward.Change{}, c.ID)
		must(t, err)
		wantConnection(t, del, c)
		_, err = f.s.ProviderConnection(f.ctx, c.ID)
		wantCode(t, err, keyward.ENOTFOUND)
		for _, cr := range append(done, live) {
			_, err = f.s.Credential(f.ctx, cr.ID)
			wantCode(t, err, keyward.ENOTFOUND)
		}
		_, err = f.s.DeleteProviderConnection(f.ctx, keyward.Change{}, c.ID)
		wantCode(t, err, keyward.ENOTFOUND)
		f.connection(a.ID, "git") // the name is free again
	})

	t.Run("deleting the account deletes its connections and credentials", func(t *testing.T) {
		f := newFixture(t, open)
		a, b := f.account("acme"), f.account("globex")
		ca, cb := f.connection(a.ID, "git"), f.connection(b.ID, "git")
		cra, crb := f.credential(ca, "1", keyward.CredentialActive), f.credential(cb, "1", keyward.CredentialActive)
		_, err := f.s.DeleteAccount(f.ctx, keyward.Change{}, a.ID)
		must(t, err)
		_, err = f.s.ProviderConnection(f.ctx, ca.ID)
		wantCode(t, err, keyward.ENOTFOUND)
		_, err = f.s.Credential(f.ctx, cra.ID)
		wantCode(t, err, keyward.ENOTFOUND)
		_, err = f.s.ProviderConnection(f.ctx, cb.ID)
		must(t, err)
		_, err = f.s.Credential(f.ctx, crb.ID)
		must(t, err)
	})

	t.Run("credentials are created, read and listed", func(t *testing.T) {
		f := newFixture(t, open)
		a, b := f.account("acme"), f.account("globex")
		ca, ca2, cb := f.connection(a.ID, "git"), f.connection(a.ID, "git2"), f.connection(b.ID, "git")

		full := newCredential(ca, "17")
		full.Scopes, full.RotatedFrom, full.ReplacedBy = []string{"read:repository", "write:issue"}, "crd_before", "crd_after"
		full.GraceUntil, full.RevokedAt, full.Status = ptr(fixedTime.Add(time.Hour)), ptr(fixedTime.Add(2*time.Hour)), keyward.CredentialRotated
		must(t, f.s.CreateCredential(f.ctx, keyward.Change{}, full))
		got, err := f.s.Credential(f.ctx, full.ID)
		must(t, err)
		wantCredential(t, got, full)

		bare := newCredential(ca, "18")
		bare.ExternalUser, bare.Scopes, bare.Hint, bare.ExpiresAt, bare.CreatedBy = "", nil, "", nil, ""
		must(t, f.s.CreateCredential(f.ctx, keyward.Change{}, bare))
		got, err = f.s.Credential(f.ctx, bare.ID)
		must(t, err)
		wantCredential(t, got, bare)
		if got.Scopes == nil {
			t.Error("Scopes of a credential without scopes = nil, want []: the JSON must show an empty list")
		}

		wantCode(t, f.s.CreateCredential(f.ctx, keyward.Change{}, full), keyward.ECONFLICT)
		wantCode(t, f.s.CreateCredential(f.ctx, keyward.Change{}, newCredential(ca, "17")), keyward.ECONFLICT)
		missing := newCredential(ca, "19")
		missing.ProviderID = "pvc_missing"
		wantCode(t, f.s.CreateCredential(f.ctx, keyward.Change{}, missing), keyward.ENOTFOUND)
		elsewhere := newCredential(ca, "19")
		elsewhere.AccountID = b.ID
		wantCode(t, f.s.CreateCredential(f.ctx, keyward.Change{}, elsewhere), keyward.EINVALID)
		unknown := newCredential(ca, "19")
		unknown.Status = "lost"
		wantCode(t, f.s.CreateCredential(f.ctx, keyward.Change{}, unknown), keyward.EINVALID)
		_, err = f.s.Credential(f.ctx, "crd_missing")
		wantCode(t, err, keyward.ENOTFOUND)

		// The same external id through another connection is another
		// token.
		same := f.credential(ca2, "17", keyward.CredentialActive)
		ofB := f.credential(cb, "17", keyward.CredentialRevoked)
		revokedA := f.credential(ca2, "20", keyward.CredentialRevoked)

		for _, c := range []struct {
			name string
			f    keyward.CredentialFilter
			want []string
		}{
			{"all", keyward.CredentialFilter{}, []string{full.ID, bare.ID, same.ID, ofB.ID, revokedA.ID}},
			{"account", keyward.CredentialFilter{AccountID: a.ID}, []string{full.ID, bare.ID, same.ID, revokedA.ID}},
			{"connection", keyward.CredentialFilter{ProviderID: ca.ID}, []string{full.ID, bare.ID}},
			{"status", keyward.CredentialFilter{Status: keyward.CredentialRevoked}, []string{ofB.ID, revokedA.ID}},
			{"account and status", keyward.CredentialFilter{AccountID: a.ID, Status: keyward.CredentialRevoked}, []string{revokedA.ID}},
			{"connection and status", keyward.CredentialFilter{ProviderID: ca2.ID, Status: keyward.CredentialActive}, []string{same.ID}},
			{"nothing", keyward.CredentialFilter{ProviderID: cb.ID, Status: keyward.CredentialActive}, nil},
		} {
			got := pageWalk(t, 2, func(p keyward.Page) ([]*keyward.ManagedCredential, string, error) {
				return f.s.Credentials(f.ctx, c.f, p)
			}, credentialID)
			if want := sorted(c.want...); !slices.Equal(got, want) {
				t.Errorf("credentials by %s = %v, want %v", c.name, got, want)
			}
		}
		list, _, err := f.s.Credentials(f.ctx, keyward.CredentialFilter{ProviderID: ca.ID}, keyward.Page{})
		must(t, err)
		byID := map[string]*keyward.ManagedCredential{full.ID: full, bare.ID: bare}
		for _, c := range list {
			wantCredential(t, c, byID[c.ID])
		}
	})

	t.Run("credentials are updated; id, connection, account and external id never change", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		c, c2 := f.connection(a.ID, "git"), f.connection(a.ID, "git2")
		cr := f.credential(c, "1", keyward.CredentialActive)
		b := f.account("globex")
		later := fixedTime.Add(time.Hour)
		want := *cr
		want.Status, want.RevokedAt, want.Name, want.Scopes, want.Hint, want.ExpiresAt, want.UpdatedAt =
			keyward.CredentialRevoked, ptr(later), "renamed", []string{"write:repository"}, "zzzz9999", nil, later
		up, err := f.s.UpdateCredential(f.ctx, keyward.Change{}, cr.ID, func(got *keyward.ManagedCredential) error {
			wantCredential(t, got, cr)
			got.Status, got.RevokedAt, got.Name, got.Scopes, got.Hint, got.ExpiresAt, got.UpdatedAt =
				want.Status, want.RevokedAt, want.Name, want.Scopes, want.Hint, want.ExpiresAt, want.UpdatedAt
			return nil
		})
		must(t, err)
		wantCredential(t, up, &want)
		got, err := f.s.Credential(f.ctx, cr.ID)
		must(t, err)
		wantCredential(t, got, &want)

		for name, change := range map[string]func(*keyward.ManagedCredential){
			"id":          func(c *keyward.ManagedCredential) { c.ID = apikey.NewID("crd") },
			"connection":  func(c *keyward.ManagedCredential) { c.ProviderID = c2.ID },
			"account":     func(c *keyward.ManagedCredential) { c.AccountID = b.ID },
			"external id": func(c *keyward.ManagedCredential) { c.ExternalID = "2" },
			"status":      func(c *keyward.ManagedCredential) { c.Status = "lost" },
		} {
			_, err := f.s.UpdateCredential(f.ctx, keyward.Change{}, cr.ID, func(c *keyward.ManagedCredential) error {
				c.Name = "changed"
				change(c)
				return nil
			})
			if keyward.ErrorCode(err) != keyward.EINVALID {
				t.Errorf("changing the %s: error %v, want invalid", name, err)
			}
		}
		_, err = f.s.UpdateCredential(f.ctx, keyward.Change{}, cr.ID, func(c *keyward.ManagedCredential) error { c.Name = "changed"; return errAbort })
		if !errors.Is(err, errAbort) {
			t.Fatalf("UpdateCredential error = %v, want fn's error", err)
		}
		got, err = f.s.Credential(f.ctx, cr.ID)
		must(t, err)
		wantCredential(t, got, &want)
		_, err = f.s.UpdateCredential(f.ctx, keyward.Change{}, "crd_missing", func(*keyward.ManagedCredential) error {
			t.Error("fn called for a missing credential")
			return nil
		})
		wantCode(t, err, keyward.ENOTFOUND)
	})

	t.Run("rotation saves both credentials in one transaction", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		c := f.connection(a.ID, "git")
		cr := f.credential(c, "1", keyward.CredentialActive)
		taken := f.credential(c, "2", keyward.CredentialActive)
		later, grace := fixedTime.Add(time.Hour), fixedTime.Add(25*time.Hour)
		rotate := func(externalID string, fail error) (*keyward.ManagedCredential, *keyward.ManagedCredential, *keyward.ManagedCredential, error) {
			n := newCredential(c, externalID)
			n.RotatedFrom, n.CreatedAt, n.UpdatedAt = cr.ID, later, later
			old, next, err := f.s.RotateCredential(f.ctx, keyward.Change{}, cr.ID, func(old *keyward.ManagedCredential) (*keyward.ManagedCredential, error) {
				old.Status, old.ReplacedBy, old.GraceUntil, old.UpdatedAt = keyward.CredentialRotated, n.ID, ptr(grace), later
				return n, fail
			})
			return n, old, next, err
		}
		unchanged := func() {
			t.Helper()
			got, err := f.s.Credential(f.ctx, cr.ID)
			must(t, err)
			wantCredential(t, got, cr)
			list, _, err := f.s.Credentials(f.ctx, keyward.CredentialFilter{}, keyward.Page{})
			must(t, err)
			if len(list) != 2 {
				t.Fatalf("%d credentials after a failed rotation, want the 2 from before", len(list))
			}
		}

		n, _, _, err := rotate("3", errAbort)
		if !errors.Is(err, errAbort) {
			t.Fatalf("RotateCredential error = %v, want fn's error", err)
		}
		unchanged()
		_, err = f.s.Credential(f.ctx, n.ID)
		wantCode(t, err, keyward.ENOTFOUND)
		_, _, _, err = rotate(taken.ExternalID, nil)
		wantCode(t, err, keyward.ECONFLICT)
		unchanged()
		_, _, err = f.s.RotateCredential(f.ctx, keyward.Change{}, cr.ID, func(*keyward.ManagedCredential) (*keyward.ManagedCredential, error) { return nil, nil })
		wantCode(t, err, keyward.EINVALID)
		unchanged()
		_, _, err = f.s.RotateCredential(f.ctx, keyward.Change{}, "crd_missing", func(*keyward.ManagedCredential) (*keyward.ManagedCredential, error) {
			t.Error("fn called for a missing credential")
			return nil, nil
		})
		wantCode(t, err, keyward.ENOTFOUND)

		n, old, next, err := rotate("3", nil)
		must(t, err)
		wantOld := *cr
		wantOld.Status, wantOld.ReplacedBy, wantOld.GraceUntil, wantOld.UpdatedAt = keyward.CredentialRotated, n.ID, ptr(grace), later
		wantCredential(t, old, &wantOld)
		wantCredential(t, next, n)
		got, err := f.s.Credential(f.ctx, cr.ID)
		must(t, err)
		wantCredential(t, got, &wantOld)
		got, err = f.s.Credential(f.ctx, n.ID)
		must(t, err)
		wantCredential(t, got, n)
	})

	t.Run("CredentialsDue lists expired active and rotated past grace, by id", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		c := f.connection(a.ID, "git")
		now := fixedTime.Add(24 * time.Hour)
		i := 0
		add := func(st keyward.CredentialStatus, expires, grace *time.Time) string {
			i++
			cr := newCredential(c, fmt.Sprint(i))
			cr.Status, cr.ExpiresAt, cr.GraceUntil = st, expires, grace
			must(t, f.s.CreateCredential(f.ctx, keyward.Change{}, cr))
			return cr.ID
		}
		past, future := ptr(now.Add(-time.Hour)), ptr(now.Add(time.Microsecond))
		var due []string
		for range 2 {
			due = append(due,
				add(keyward.CredentialActive, past, nil),
				add(keyward.CredentialActive, ptr(now), nil),
				add(keyward.CredentialRotated, future, past),
				add(keyward.CredentialRotated, nil, ptr(now)),
			)
		}
		add(keyward.CredentialActive, future, nil)
		add(keyward.CredentialActive, nil, past)
		add(keyward.CredentialRotated, past, future)
		add(keyward.CredentialRotated, past, nil)
		for _, st := range []keyward.CredentialStatus{keyward.CredentialRevoked, keyward.CredentialExpired,
			keyward.CredentialOrphaned, keyward.CredentialVanished} {
			add(st, past, past)
		}

		var got []string
		after := ""
		for range 100 {
			page, err := f.s.CredentialsDue(f.ctx, now, after, 3)
			must(t, err)
			for _, cr := range page {
				if n := len(got); n > 0 && cr.ID <= got[n-1] {
					t.Fatalf("CredentialsDue listed %s after %s: ids must ascend", cr.ID, got[n-1])
				}
				got = append(got, cr.ID)
			}
			if len(page) < 3 {
				break
			}
			after = page[len(page)-1].ID
		}
		wantIDs(t, got, due...)
		early, err := f.s.CredentialsDue(f.ctx, now.Add(-2*time.Hour), "", 100)
		must(t, err)
		if len(early) != 0 {
			t.Fatalf("CredentialsDue two hours earlier = %d, want none", len(early))
		}
	})

	t.Run("audit entries and events commit with their change and only with it", func(t *testing.T) {
		f := newFixture(t, open)
		ep := newEndpoint("")
		must(t, f.s.CreateWebhookEndpoint(f.ctx, keyward.Change{}, ep))
		a := f.account("acme")
		var committed []string
		changed := func(action, event string) (keyward.Change, string) {
			ev := newEvent(event, a.ID)
			return keyward.Change{Audit: NewAuditEntry(action, apikey.NewID("key"), a.ID, ""), Events: []*keyward.Event{ev}}, ev.ID
		}
		ok := func(action, event string) keyward.Change {
			ch, id := changed(action, event)
			committed = append(committed, id)
			return ch
		}
		failed := func(action, event string) keyward.Change {
			ch, _ := changed(action, event)
			return ch
		}

		c := newConnection(a.ID, "git")
		must(t, f.s.CreateProviderConnection(f.ctx, ok("provider.add", keyward.EventKeyCreated), c))
		wantCode(t, f.s.CreateProviderConnection(f.ctx, failed("provider.add", keyward.EventKeyCreated), newConnection(a.ID, "git")), keyward.ECONFLICT)
		_, err := f.s.UpdateProviderConnection(f.ctx, ok("provider.update", keyward.EventKeyUpdated), c.ID, func(c *keyward.ProviderConnection) error {
			c.BaseURL = "https://forge.example.com"
			return nil
		})
		must(t, err)

		cr := newCredential(c, "1")
		must(t, f.s.CreateCredential(f.ctx, ok("credential.create", keyward.EventCredentialCreated), cr))
		wantCode(t, f.s.CreateCredential(f.ctx, failed("credential.create", keyward.EventCredentialCreated), newCredential(c, "1")), keyward.ECONFLICT)
		_, err = f.s.UpdateCredential(f.ctx, failed("credential.revoke", keyward.EventCredentialRevoked), cr.ID, func(*keyward.ManagedCredential) error { return errAbort })
		if !errors.Is(err, errAbort) {
			t.Fatalf("UpdateCredential error = %v, want fn's error", err)
		}
		_, err = f.s.DeleteProviderConnection(f.ctx, failed("provider.remove", keyward.EventKeyRevoked), c.ID)
		wantCode(t, err, keyward.ECONFLICT)
		n := newCredential(c, "2")
		_, _, err = f.s.RotateCredential(f.ctx, ok("credential.rotate", keyward.EventCredentialRotated), cr.ID, func(old *keyward.ManagedCredential) (*keyward.ManagedCredential, error) {
			old.Status, old.ReplacedBy, old.GraceUntil = keyward.CredentialRotated, n.ID, ptr(fixedTime)
			return n, nil
		})
		must(t, err)
		_, _, err = f.s.RotateCredential(f.ctx, failed("credential.rotate", keyward.EventCredentialRotated), n.ID, func(*keyward.ManagedCredential) (*keyward.ManagedCredential, error) {
			return nil, errAbort
		})
		if !errors.Is(err, errAbort) {
			t.Fatalf("RotateCredential error = %v, want fn's error", err)
		}
		for _, id := range []string{cr.ID, n.ID} {
			_, err = f.s.UpdateCredential(f.ctx, ok("credential.revoke", keyward.EventCredentialRevoked), id, func(c *keyward.ManagedCredential) error {
				c.Status, c.RevokedAt = keyward.CredentialRevoked, ptr(fixedTime)
				return nil
			})
			must(t, err)
		}
		_, err = f.s.DeleteProviderConnection(f.ctx, ok("provider.remove", keyward.EventKeyRevoked), c.ID)
		must(t, err)

		want := []string{"provider.add", "provider.update", "credential.create", "credential.rotate", "credential.revoke", "credential.revoke", "provider.remove"}
		var actions []string
		for _, e := range AuditLog(t, f.s) {
			actions = append(actions, e.Action)
		}
		if !slices.Equal(actions, want) {
			t.Fatalf("audit log = %v, want %v", actions, want)
		}
		f.wantAuditChain(len(want))
		if _, err := f.s.DispatchEvents(f.ctx, fixedTime, 100); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, d := range deliveries(t, f, ep.ID) {
			got = append(got, d.EventID)
		}
		wantIDs(t, sorted(got...), committed...)
	})
}
