package admin_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keywardtest"
)

func TestReportLeaksRevokesFoundKeys(t *testing.T) {
	e := newEnv(t)
	a, _, _, userA := e.tenant(t, "a", "memories:read")
	unknown := must(apikey.Generate("kw_user")).Reveal()
	report := keyward.LeakReport{Tokens: []keyward.LeakedToken{
		{Token: userA.Secret, Source: "github", URL: "https://github.com/acme/app/blob/main/.env"},
		{Token: unknown, Source: "github"},
		{Token: keywardtest.BreakChecksum(userA.Secret)},
		{Token: "not a key at all"},
		{Token: userA.Secret, Source: "pastebin"}, // reported twice: still revoked
	}}
	res := must(e.svc.Abuse.ReportLeaks(e.root, report))
	want := []keyward.LeakResult{
		{Status: keyward.LeakRevoked, KeyID: userA.ID},
		{Status: keyward.LeakNotFound},
		{Status: keyward.LeakNotFound},
		{Status: keyward.LeakNotFound},
		{Status: keyward.LeakRevoked, KeyID: userA.ID},
	}
	if !slices.Equal(res.Results, want) {
		t.Fatalf("results = %+v, want %+v", res.Results, want)
	}
	if v := must(e.svc.Keys.VerifyKey(e.root, keyward.VerifyRequest{Key: userA.Secret})); v.Valid || v.Code != keyward.DecisionRevoked {
		t.Fatalf("verify after the report = %+v, want REVOKED", v)
	}
	if k := must(e.svc.Keys.Key(e.root, userA.ID)); k.RevokedAt == nil || !k.RevokedAt.Equal(e.now) {
		t.Errorf("revoked_at = %v, want %v", k.RevokedAt, e.now)
	}

	// One audit entry per report of the key, with where it was found and
	// never the token.
	l := must(e.svc.Audit.AuditEntries(e.root, keyward.AuditFilter{Action: "key.leaked"}, keyward.Page{}))
	if len(l.Items) != 2 {
		t.Fatalf("key.leaked entries = %d, want 2", len(l.Items))
	}
	for i, en := range l.Items {
		if en.TargetID != userA.ID || en.AccountID != a.ID || en.Actor.Role != keyward.RoleRoot {
			t.Errorf("entry %d = %+v", i, en)
		}
		if strings.Contains(string(en.Details), userA.Secret[len(userA.Start):]) {
			t.Errorf("entry %d details hold the token: %s", i, en.Details)
		}
	}
	var d struct{ Source, URL string }
	if err := json.Unmarshal(l.Items[0].Details, &d); err != nil || d.Source != "github" || d.URL != report.Tokens[0].URL {
		t.Errorf("details = %s (%v), want the source and url", l.Items[0].Details, err)
	}

	// The observer dropped the cached key; both reports were announced.
	if !slices.Contains(e.obs.changed, userA.ID) {
		t.Errorf("observer was not told of the revocation: %v", e.obs.changed)
	}
	var sources []string
	for _, ev := range e.announced(t) {
		if ev.Type != keyward.EventKeyLeaked {
			continue
		}
		var data struct {
			KeyID     string `json:"key_id"`
			AccountID string `json:"account_id"`
			Source    string `json:"source"`
		}
		if err := json.Unmarshal(ev.Data, &data); err != nil || data.KeyID != userA.ID || data.AccountID != a.ID || ev.AccountID != a.ID {
			t.Errorf("key.leaked event data = %s (%v)", ev.Data, err)
		}
		if strings.Contains(string(ev.Data), userA.Secret[len(userA.Start):]) {
			t.Errorf("key.leaked event holds the token: %s", ev.Data)
		}
		sources = append(sources, data.Source)
	}
	if !slices.Equal(sources, []string{"github", "pastebin"}) {
		t.Errorf("key.leaked events from sources %v, want github and pastebin", sources)
	}
}

func TestReportLeaksNeedsPermission(t *testing.T) {
	e := newEnv(t)
	a, _, adminA, userA := e.tenant(t, "a")
	_, _, _, userB := e.tenant(t, "b")
	report := keyward.LeakReport{Tokens: []keyward.LeakedToken{{Token: userB.Secret}}}

	// An account admin, even of the key's account, may not report.
	for _, k := range []*keyward.Key{&adminA.Key, &userA.Key} {
		_, err := e.svc.Abuse.ReportLeaks(as(t, k), report)
		wantCode(t, err, keyward.EFORBIDDEN)
	}
	// (Not verified here: this env's observer is a recorder, so a cached
	// answer would outlive the revocation below.)
	if k := must(e.svc.Keys.Key(e.root, userB.ID)); k.RevokedAt != nil {
		t.Fatalf("a refused report revoked the key: %v", k.RevokedAt)
	}

	// A scanner's key reports keys of any account; it learns the status
	// only, not the key's id.
	scanner := must(e.svc.Keys.CreateKey(e.root, keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin, Permissions: []string{keyward.PermissionReportLeak}}))
	res := must(e.svc.Abuse.ReportLeaks(as(t, &scanner.Key), report))
	if len(res.Results) != 1 || res.Results[0] != (keyward.LeakResult{Status: keyward.LeakRevoked}) {
		t.Fatalf("scanner's results = %+v, want revoked without a key id", res.Results)
	}
	if v := must(e.svc.Keys.VerifyKey(e.root, keyward.VerifyRequest{Key: userB.Secret})); v.Code != keyward.DecisionRevoked {
		t.Fatalf("verify after the scanner's report = %+v, want REVOKED", v)
	}
	l := must(e.svc.Audit.AuditEntries(e.root, keyward.AuditFilter{Action: "key.leaked"}, keyward.Page{}))
	if len(l.Items) != 1 || l.Items[0].Actor.KeyID != scanner.ID || l.Items[0].TargetID != userB.ID {
		t.Errorf("key.leaked entries = %+v", l.Items)
	}
}

func TestReportLeaksBounds(t *testing.T) {
	e := newEnv(t)
	token := func(n int) keyward.LeakedToken { return keyward.LeakedToken{Token: strings.Repeat("k", n)} }
	many := make([]keyward.LeakedToken, keyward.MaxLeakTokens+1)
	for i := range many {
		many[i] = token(10)
	}
	for name, r := range map[string]keyward.LeakReport{
		"no tokens":        {},
		"too many tokens":  {Tokens: many},
		"empty token":      {Tokens: []keyward.LeakedToken{token(0)}},
		"long token":       {Tokens: []keyward.LeakedToken{token(keyward.MaxLeakTokenLen + 1)}},
		"control in url":   {Tokens: []keyward.LeakedToken{{Token: "x", URL: "https://a\n"}}},
		"long source":      {Tokens: []keyward.LeakedToken{{Token: "x", Source: strings.Repeat("s", keyward.MaxLeakSourceLen+1)}}},
		"invalid utf8 url": {Tokens: []keyward.LeakedToken{{Token: "x", URL: "\xff"}}},
	} {
		_, err := e.svc.Abuse.ReportLeaks(e.root, r)
		if keyward.ErrorCode(err) != keyward.EINVALID {
			t.Errorf("%s: error %v, want EINVALID", name, err)
		}
		if strings.Contains(keyward.ErrorMessage(err), "kkkkkkkk") {
			t.Errorf("%s: the error quotes the token: %v", name, err)
		}
	}
	// The bounds themselves are fine.
	ok := make([]keyward.LeakedToken, keyward.MaxLeakTokens)
	for i := range ok {
		ok[i] = token(keyward.MaxLeakTokenLen)
	}
	res := must(e.svc.Abuse.ReportLeaks(e.root, keyward.LeakReport{Tokens: ok}))
	if len(res.Results) != keyward.MaxLeakTokens || res.Results[0].Status != keyward.LeakNotFound {
		t.Errorf("results = %d, first %+v", len(res.Results), res.Results[0])
	}
}
