package httpapi_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keystore"
	"github.com/keyward/keyward/keywardtest"
)

func TestReportLeaks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.mustAccount("acme")
	u := e.mustUser(a.ID, "alice")
	leaked := e.mustKey(keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Role: keyward.RoleUser})
	other := e.mustKey(keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Role: keyward.RoleUser})
	scanner := e.mustKey(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin, Permissions: []string{keyward.PermissionReportLeak}})
	unknown, _ := apikey.Generate("kw_user")
	malformed := keywardtest.BreakChecksum(leaked.Secret)
	e.remember(unknown.Reveal())
	e.remember(malformed)

	// The leaked key works until it is reported.
	if r := e.do("GET", "/v1/whoami", keyward.Secret(leaked.Secret), ""); r.status != http.StatusOK {
		t.Fatalf("whoami before the report: %d", r.status)
	}
	res, err := e.client(e.root).ReportLeaks(t.Context(), keyward.LeakReport{Tokens: []keyward.LeakedToken{
		{Token: leaked.Secret, Source: "github", URL: "https://github.com/acme/app/commit/1"},
		{Token: unknown.Reveal(), Source: "github"},
		{Token: malformed},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := []keyward.LeakResult{{Status: keyward.LeakRevoked, KeyID: leaked.ID}, {Status: keyward.LeakNotFound}, {Status: keyward.LeakNotFound}}
	if !slices.Equal(res.Results, want) {
		t.Fatalf("results = %+v, want %+v", res.Results, want)
	}
	// Revoked at once: the cached key stops authenticating and verifies
	// as REVOKED.
	if r := e.do("GET", "/v1/whoami", keyward.Secret(leaked.Secret), ""); r.status != http.StatusUnauthorized {
		t.Errorf("whoami with the leaked key: %d, want 401", r.status)
	}
	v, err := e.client(e.root).VerifyKey(t.Context(), keyward.VerifyRequest{Key: leaked.Secret})
	if err != nil || v.Code != keyward.DecisionRevoked {
		t.Errorf("verify the leaked key = %+v, %v; want REVOKED", v, err)
	}

	// A scanner reports; it learns the status, never the key id.
	res, err = e.client(keyward.Secret(scanner.Secret)).ReportLeaks(t.Context(), keyward.LeakReport{Tokens: []keyward.LeakedToken{
		{Token: other.Secret, Source: "pastebin"}, {Token: leaked.Secret}, {Token: unknown.Reveal()},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want = []keyward.LeakResult{{Status: keyward.LeakRevoked}, {Status: keyward.LeakRevoked}, {Status: keyward.LeakNotFound}}
	if !slices.Equal(res.Results, want) {
		t.Fatalf("scanner's results = %+v, want %+v", res.Results, want)
	}
	if strings.Contains(string(e.rec.exchanges()[len(e.rec.exchanges())-1].body), "key_") {
		t.Errorf("the scanner's answer holds a key id")
	}

	// A key without the permission is refused.
	_, err = e.client(keyward.Secret(other.Secret)).ReportLeaks(t.Context(), keyward.LeakReport{Tokens: []keyward.LeakedToken{{Token: leaked.Secret}}})
	if keyward.ErrorCode(err) != keyward.EUNAUTHORIZED { // other is revoked by now
		t.Errorf("report with a revoked key: %v", err)
	}

	// The audit log names where each key was found.
	l, err := e.client(e.root).AuditEntries(t.Context(), keyward.AuditFilter{Action: "key.leaked"}, keyward.Page{})
	if err != nil || len(l.Items) != 3 {
		t.Fatalf("key.leaked entries = %+v, %v; want 3", l, err)
	}
}

func TestReportLeaksBounds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tokens := func(n, size int) string {
		var b strings.Builder
		b.WriteString(`{"tokens":[`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"token":%q}`, strings.Repeat("k", size))
		}
		b.WriteString(`]}`)
		return b.String()
	}
	for name, c := range map[string]struct {
		body string
		want int
	}{
		"no tokens":       {`{"tokens":[]}`, 400},
		"no field":        {`{}`, 400},
		"unknown field":   {`{"tokens":[{"token":"x","where":"github"}]}`, 400},
		"too many":        {tokens(keyward.MaxLeakTokens+1, 10), 400},
		"too long":        {tokens(1, keyward.MaxLeakTokenLen+1), 400},
		"at the bounds":   {tokens(keyward.MaxLeakTokens, keyward.MaxLeakTokenLen), 200},
		"a bad url":       {`{"tokens":[{"token":"x","url":"a\u0000b"}]}`, 400},
		"one short token": {tokens(1, 1), 200},
	} {
		r := e.do("POST", "/v1/leaks", e.root, c.body)
		if r.status != c.want {
			t.Errorf("%s: status %d, want %d: %s", name, r.status, c.want, r.body)
		}
		if r.status == 400 && strings.Contains(string(r.body), "kkkkkkkk") {
			t.Errorf("%s: the problem quotes the token: %s", name, r.body)
		}
	}
}

// A token imported as a SHA-256 digest, of any format, is found by a leak
// report as verification finds it, whether it waits for its first use or
// was adopted by one, and is revoked: it verifies REVOKED afterwards.
func TestReportLeaksRevokesImportedKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.mustAccount("acme")
	pending, adopted, native := "legacy-token-pending-0123456789", "sk_live_adopted_0123456789", "ghp_never_imported_0123456789"
	for _, tok := range []string{pending, adopted, native} {
		e.remember(tok)
	}
	_, err := e.client(e.root).ImportKeys(t.Context(), keyward.KeyImportRequest{Keys: []keyward.KeyImportEntry{
		{SHA256: keystore.Digest(pending), Name: "pending", Role: keyward.RoleAccountAdmin, Account: a.ID},
		{SHA256: keystore.Digest(adopted), Name: "adopted", Role: keyward.RoleAccountAdmin, Account: a.ID},
	}})
	if err != nil {
		t.Fatal(err)
	}
	verifyAs := func(tok string) keyward.Decision {
		t.Helper()
		v, err := e.client(e.root).VerifyKey(t.Context(), keyward.VerifyRequest{Key: tok})
		if err != nil {
			t.Fatal(err)
		}
		return v.Code
	}
	// One is used (adopted: re-hashed with the pepper), the other not.
	if d := verifyAs(adopted); d != keyward.DecisionValid {
		t.Fatalf("imported key before the report: %s, want VALID", d)
	}
	if c, err := e.store.KeyImportCounts(t.Context()); err != nil || c.Pending != 1 || c.Adopted != 1 {
		t.Fatalf("import counts = %+v, %v; want 1 pending, 1 adopted", c, err)
	}

	res, err := e.client(e.root).ReportLeaks(t.Context(), keyward.LeakReport{Tokens: []keyward.LeakedToken{
		{Token: pending, Source: "github"}, {Token: adopted, Source: "github"}, {Token: native},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []keyward.LeakStatus{keyward.LeakRevoked, keyward.LeakRevoked, keyward.LeakNotFound} {
		if res.Results[i].Status != want || (want == keyward.LeakRevoked) != (res.Results[i].KeyID != "") {
			t.Errorf("result %d = %+v, want %s", i, res.Results[i], want)
		}
	}
	for _, tok := range []string{pending, adopted} {
		if d := verifyAs(tok); d != keyward.DecisionRevoked {
			t.Errorf("imported key after the report: %s, want REVOKED", d)
		}
		if r := e.do("GET", "/v1/whoami", keyward.Secret(tok), ""); r.status != http.StatusUnauthorized {
			t.Errorf("whoami with a reported imported key: %d, want 401", r.status)
		}
	}
	// What verification does not know, a report does not find either.
	if d := verifyAs(native); d != keyward.DecisionNotFound && d != keyward.DecisionMalformed {
		t.Errorf("unknown token verifies %s", d)
	}
}
