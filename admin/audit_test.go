package admin_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

func TestAuditRecordsChangesWithTheirActor(t *testing.T) {
	e := newEnv(t)
	ctx := keyward.NewContextWithRequestInfo(e.root, keyward.RequestInfo{IP: "192.0.2.7", UserAgent: "curl/8", RequestID: "req-1"})
	a := must(e.svc.Tenancy.CreateAccount(ctx, keyward.AccountCreate{Name: "acme"}))
	u := must(e.svc.Tenancy.CreateUser(ctx, a.ID, keyward.UserCreate{Name: "alice"}))
	k := must(e.svc.Keys.CreateKey(ctx, keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Name: "laptop-of-alice"}))
	must(e.svc.Keys.RevokeKey(ctx, k.ID))

	l := must(e.svc.Audit.AuditEntries(e.root, keyward.AuditFilter{}, keyward.Page{}))
	var actions []string
	for _, en := range l.Items {
		actions = append(actions, en.Action)
	}
	want := []string{"key.bootstrap", "account.create", "user.create", "key.create", "key.revoke"}
	if strings.Join(actions, " ") != strings.Join(want, " ") {
		t.Fatalf("actions = %v, want %v", actions, want)
	}
	create := l.Items[3]
	if create.Actor.KeyID == "" || create.Actor.Role != keyward.RoleRoot || create.Actor.IP != "192.0.2.7" ||
		create.Actor.UserAgent != "curl/8" || create.Actor.RequestID != "req-1" ||
		create.TargetID != k.ID || create.AccountID != a.ID || create.Outcome != keyward.AuditSuccess {
		t.Errorf("key.create entry = %+v", create)
	}
	var details struct{ Name string }
	if err := json.Unmarshal(create.Details, &details); err != nil || details.Name != "laptop-of-alice" {
		t.Errorf("key.create details = %s (%v), want the key's name", create.Details, err)
	}
	if l.Items[0].Actor.System != "keyward" {
		t.Errorf("bootstrap actor = %+v, want keyward itself", l.Items[0].Actor)
	}

	// At rest the details are sealed: the store holds no clear text.
	raw, _, err := e.store.AuditEntries(t.Context(), keyward.AuditFilter{TargetID: k.ID, Action: "key.create"}, keyward.Page{})
	if err != nil || len(raw) != 1 {
		t.Fatalf("raw entries: %v, %v", raw, err)
	}
	if len(raw[0].Sealed) == 0 || bytes.Contains(raw[0].Sealed, []byte("laptop-of-alice")) || raw[0].Details != nil {
		t.Errorf("stored entry is not sealed: %+v", raw[0])
	}

	v := must(e.svc.Audit.VerifyAudit(e.root, nil))
	if !v.OK || v.Entries != 5 {
		t.Errorf("verify = %+v, want ok over 5 entries", v)
	}
}

func TestAuditIsScopedAndDeniedActionsAreRecorded(t *testing.T) {
	e := newEnv(t)
	a, _, adminKey, userKey := e.tenant(t, "acme", "p")
	b, _, otherAdmin, _ := e.tenant(t, "other", "p")
	asAdmin := as(t, &adminKey.Key)

	l := must(e.svc.Audit.AuditEntries(asAdmin, keyward.AuditFilter{}, keyward.Page{}))
	if len(l.Items) == 0 {
		t.Fatal("an account admin sees none of its account's entries")
	}
	for _, en := range l.Items {
		if en.AccountID != a.ID {
			t.Errorf("account admin of %s sees an entry of %q: %+v", a.ID, en.AccountID, en)
		}
	}
	_, err := e.svc.Audit.AuditEntries(as(t, &otherAdmin.Key), keyward.AuditFilter{AccountID: a.ID}, keyward.Page{})
	wantCode(t, err, keyward.ENOTFOUND)
	_, err = e.svc.Audit.AuditEntries(as(t, &userKey.Key), keyward.AuditFilter{}, keyward.Page{})
	wantCode(t, err, keyward.EFORBIDDEN)
	_, err = e.svc.Audit.VerifyAudit(asAdmin, nil)
	wantCode(t, err, keyward.EFORBIDDEN)
	_, err = e.svc.Audit.AuditEntries(e.root, keyward.AuditFilter{}, keyward.Page{After: "x"})
	wantCode(t, err, keyward.EINVALID)

	e.svc.Audit.AuditDenied(asAdmin, "DELETE /v1/accounts/{id}", errors.New("only a root key may delete accounts"))
	d := must(e.svc.Audit.AuditEntries(e.root, keyward.AuditFilter{Action: "auth.denied"}, keyward.Page{}))
	if len(d.Items) != 1 || d.Items[0].Outcome != keyward.AuditDenied || d.Items[0].Actor.KeyID != adminKey.ID || d.Items[0].AccountID != a.ID {
		t.Fatalf("denied entries = %+v", d.Items)
	}
	_ = b
}
