package httpapi_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/provider"
)

// fakeProviders stands in for the systems whose tokens keyward manages: a
// fake system per base URL, which the test can take down or slow down, the
// faults a real Gitea cannot be made to show on demand.
type fakeProviders struct {
	mu      sync.Mutex
	systems map[string]*fakeSystem
}

func newFakeProviders() *fakeProviders { return &fakeProviders{systems: map[string]*fakeSystem{}} }

// open is the admin.ProviderFactory of the fakes.
func (f *fakeProviders) open(kind string, c provider.Connection) (provider.Provider, error) {
	if kind != provider.KindGitea && kind != provider.KindN8n {
		return nil, keyward.Errorf(keyward.EINVALID, "kind %q: use gitea or n8n", kind)
	}
	return &fakeProvider{kind: kind, conn: c, sys: f.system(c.BaseURL)}, nil
}

// system returns the fake system at base, created on first use.
func (f *fakeProviders) system(base string) *fakeSystem {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.systems[strings.TrimRight(base, "/")]
	if s == nil {
		s = &fakeSystem{tokens: map[string]*fakeToken{}}
		f.systems[strings.TrimRight(base, "/")] = s
	}
	return s
}

// fakeSystem is one fake Gitea or n8n: its tokens, the admin password it
// accepts ("" accepts any) and the fault every call meets, if any.
type fakeSystem struct {
	mu       sync.Mutex
	password string
	fault    error
	next     int
	tokens   map[string]*fakeToken // by external id
}

type fakeToken struct {
	provider.Token
	secret string
}

// fail makes every call fail with err (nil: heal).
func (s *fakeSystem) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = err
}

// add creates a token behind keyward's back and returns its external id.
func (s *fakeSystem) add(user, name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addLocked(user, name, nil).ExternalID
}

func (s *fakeSystem) addLocked(user, name string, scopes []string) *fakeToken {
	s.next++
	t := &fakeToken{Token: provider.Token{ExternalID: fmt.Sprint(s.next), Name: name, User: user, Scopes: scopes}, secret: "fake_" + rand.Text()}
	t.Hint = t.secret[len(t.secret)-8:]
	s.tokens[t.ExternalID] = t
	return t
}

// drop deletes a token behind keyward's back.
func (s *fakeSystem) drop(externalID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, externalID)
}

// fakeProvider is the provider.Provider of one connection to a fakeSystem.
type fakeProvider struct {
	kind string
	conn provider.Connection
	sys  *fakeSystem
}

// enter locks the system and returns the fault of a call, if any; the
// caller unlocks it.
func (p *fakeProvider) enter() error {
	p.sys.mu.Lock()
	return p.sys.fault
}

func (p *fakeProvider) owner(user string) string {
	if user == "" || p.kind == provider.KindN8n {
		return p.conn.Username
	}
	return user
}

func (p *fakeProvider) Kind() string { return p.kind }

func (p *fakeProvider) Check(context.Context) error {
	err := p.enter()
	defer p.sys.mu.Unlock()
	if err != nil {
		return err
	}
	if p.sys.password != "" && p.conn.Password.Reveal() != p.sys.password {
		return keyward.Errorf(keyward.EUNAUTHORIZED, "%s at %s refused the credentials of %s: check the user name and password", p.kind, p.conn.BaseURL, p.conn.Username)
	}
	return nil
}

func (p *fakeProvider) Create(_ context.Context, n provider.NewToken) (*provider.Created, error) {
	err := p.enter()
	defer p.sys.mu.Unlock()
	if err != nil {
		return nil, err
	}
	user := p.owner(n.User)
	for _, t := range p.sys.tokens {
		if t.User == user && t.Name == n.Name {
			return nil, keyward.Errorf(keyward.ECONFLICT, "%s user %s already has a token named %q", p.kind, user, n.Name)
		}
	}
	t := p.sys.addLocked(user, n.Name, n.Scopes)
	return &provider.Created{Token: t.Token, Secret: keyward.Secret(t.secret)}, nil
}

func (p *fakeProvider) List(_ context.Context, user string) ([]provider.Token, error) {
	err := p.enter()
	defer p.sys.mu.Unlock()
	if err != nil {
		return nil, err
	}
	var out []provider.Token
	for _, t := range p.sys.tokens {
		if t.User == p.owner(user) {
			out = append(out, t.Token)
		}
	}
	slices.SortFunc(out, func(a, b provider.Token) int { return strings.Compare(a.ExternalID, b.ExternalID) })
	return out, nil
}

func (p *fakeProvider) Revoke(_ context.Context, _, externalID string) error {
	err := p.enter()
	defer p.sys.mu.Unlock()
	if err != nil {
		return err
	}
	if p.sys.tokens[externalID] == nil {
		return keyward.Errorf(keyward.ENOTFOUND, "%s at %s has no token %s", p.kind, p.conn.BaseURL, externalID)
	}
	delete(p.sys.tokens, externalID)
	return nil
}

func (p *fakeProvider) Verify(_ context.Context, secret keyward.Secret) (*provider.Identity, error) {
	err := p.enter()
	defer p.sys.mu.Unlock()
	if err != nil {
		return nil, err
	}
	for _, t := range p.sys.tokens {
		if t.secret == secret.Reveal() {
			return &provider.Identity{User: t.User}, nil
		}
	}
	return nil, keyward.Errorf(keyward.EUNAUTHORIZED, "%s at %s refused the token", p.kind, p.conn.BaseURL)
}

// TestCredentials manages a provider connection and credentials through the
// API against a fake Gitea: the lifecycle, the scoping by role, a provider
// that is down (502) or slow (504), and that neither the connection's
// password nor a token is shown again or logged.
func TestCredentials(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := e.mustAccount("a"), e.mustAccount("b")
	adminA := keyward.Secret(e.mustKey(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin}).Secret)
	adminB := keyward.Secret(e.mustKey(keyward.KeyCreate{AccountID: b.ID, Role: keyward.RoleAccountAdmin}).Secret)
	usr := e.mustUser(a.ID, "alice")
	user := keyward.Secret(e.mustKey(keyward.KeyCreate{AccountID: a.ID, UserID: usr.ID, Role: keyward.RoleUser}).Secret)

	const base = "https://git.example.com"
	password := "Gitea-admin-" + rand.Text()
	e.remember(password)
	sys := e.providers.system(base)
	sys.password = password

	// A wrong password is refused by the provider; nothing is stored.
	// It is bad input (400), not a refusal of the caller's key (401).
	if r := e.do("POST", "/v1/providers", e.root, `{"account_id":"`+a.ID+`","kind":"gitea","name":"gitea","base_url":"`+base+`","username":"admin","password":"wrong-password-123"}`); r.status != http.StatusBadRequest || !strings.Contains(r.problem(t).Detail, "refused the credentials") {
		t.Fatalf("add with a wrong password: %d %s, want 400 naming the refusal", r.status, r.body)
	}
	if r := e.do("POST", "/v1/providers", e.root, `{"account_id":"`+a.ID+`","kind":"gitea","name":"gitea","base_url":"https://admin:pw@git.example.com","username":"admin","password":"x"}`); r.status != http.StatusBadRequest || strings.Contains(string(r.body), "pw@") {
		t.Fatalf("add with credentials in the URL: %d %s, want 400 without quoting them", r.status, r.body)
	}
	r := e.do("POST", "/v1/providers", e.root, `{"account_id":"`+a.ID+`","kind":"gitea","name":"gitea","base_url":"`+base+`/","username":"admin","password":"`+password+`","timeout":"5s"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("add as account admin: %d %s", r.status, r.body)
	}
	var conn keyward.ProviderConnection
	r.decode(t, &conn)
	if conn.AccountID != a.ID || conn.Kind != "gitea" || conn.BaseURL != base || conn.Timeout != keyward.Duration(5*time.Second) {
		t.Fatalf("connection = %+v, want a gitea connection of %s to %s", conn, a.ID, base)
	}
	if r := e.do("POST", "/v1/providers", e.root, `{"account_id":"`+a.ID+`","kind":"gitea","name":"gitea","base_url":"`+base+`","username":"admin","password":"`+password+`"}`); r.status != http.StatusConflict {
		t.Errorf("add a second connection named gitea: %d %s, want 409", r.status, r.body)
	}
	if r := e.do("POST", "/v1/providers/"+conn.ID+"/test", adminA, ""); r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != `{"ok":true}` {
		t.Fatalf("test: %d %s", r.status, r.body)
	}

	// A credential: its token is in the 201 body only.
	expires := time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339)
	r = e.do("POST", "/v1/credentials", adminA, `{"connection_id":"`+conn.ID+`","user":"alice","name":"ci","scopes":["read:repository"],"expires_at":"`+expires+`"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("create credential: %d %s", r.status, r.body)
	}
	var created keyward.CreatedCredential
	r.decode(t, &created)
	e.remember(created.Secret)
	cred := created.Credential
	if created.Secret == "" || cred.Status != keyward.CredentialActive || cred.ExternalUser != "alice" || cred.AccountID != a.ID || !slices.Equal(cred.Scopes, []string{"read:repository"}) {
		t.Fatalf("created = %+v (secret given: %v)", cred, created.Secret != "")
	}
	for _, path := range []string{"/v1/credentials/" + cred.ID, "/v1/credentials", "/v1/credentials?connection_id=" + conn.ID + "&status=active"} {
		r := e.do("GET", path, adminA, "")
		if r.status != http.StatusOK || strings.Contains(string(r.body), created.Secret) || !strings.Contains(string(r.body), cred.ID) {
			t.Fatalf("GET %s: %d, lists it: %v, token shown again: %v", path, r.status, strings.Contains(string(r.body), cred.ID), strings.Contains(string(r.body), created.Secret))
		}
	}
	if r := e.do("GET", "/v1/credentials?status=lost", adminA, ""); r.status != http.StatusBadRequest {
		t.Errorf("list with an unknown status: %d, want 400", r.status)
	}

	// Verify asks the provider; an unknown token is a verdict, not an error.
	r = e.do("POST", "/v1/credentials/verify", adminA, `{"connection_id":"`+conn.ID+`","token":"`+created.Secret+`"}`)
	var v keyward.CredentialVerification
	r.decode(t, &v)
	if r.status != http.StatusOK || !v.Valid || v.User != "alice" {
		t.Fatalf("verify: %d %+v", r.status, v)
	}
	r = e.do("POST", "/v1/credentials/verify", adminA, `{"connection_id":"`+conn.ID+`","token":"fake_notatokenofthisgitea"}`)
	v = keyward.CredentialVerification{}
	r.decode(t, &v)
	if r.status != http.StatusOK || v.Valid || v.Problem == "" {
		t.Fatalf("verify an unknown token: %d %+v", r.status, v)
	}

	// Scoping: another account's admin does not see them, a user may not.
	for _, c := range []struct {
		method, path, body string
		key                keyward.Secret
		status             int
	}{
		{"GET", "/v1/providers/" + conn.ID, "", adminB, 404},
		{"POST", "/v1/providers/" + conn.ID + "/test", "", adminB, 404},
		{"DELETE", "/v1/providers/" + conn.ID, "", adminB, 403},
		{"DELETE", "/v1/providers/" + conn.ID, "", adminA, 403},
		{"PATCH", "/v1/providers/" + conn.ID, `{"timeout":"3s"}`, adminA, 403},
		{"POST", "/v1/providers", `{"account_id":"` + a.ID + `","kind":"gitea","name":"mine","base_url":"http://169.254.169.254","username":"admin","password":"x"}`, adminA, 403},
		{"GET", "/v1/credentials/" + cred.ID, "", adminB, 404},
		{"POST", "/v1/credentials/" + cred.ID + "/revoke", "", adminB, 404},
		{"POST", "/v1/credentials", `{"connection_id":"` + conn.ID + `","name":"b"}`, adminB, 404},
		{"POST", "/v1/credentials/verify", `{"connection_id":"` + conn.ID + `","token":"x"}`, adminB, 404},
		{"GET", "/v1/providers", "", user, 403},
		{"GET", "/v1/credentials/" + cred.ID, "", user, 403},
		{"POST", "/v1/credentials", `{"connection_id":"` + conn.ID + `","name":"u"}`, user, 403},
		{"POST", "/v1/providers/" + conn.ID + "/reconcile", "", user, 403},
	} {
		r := e.do(c.method, c.path, c.key, c.body)
		if r.status != c.status {
			t.Errorf("%s %s: %d %s, want %d", c.method, c.path, r.status, r.body, c.status)
		}
	}
	if r := e.do("GET", "/v1/credentials", adminB, ""); r.status != http.StatusOK || strings.Contains(string(r.body), cred.ID) {
		t.Errorf("another account's admin lists: %d %s", r.status, r.body)
	}

	// Rotate with grace: the old one is rotated, the new one's token shown
	// once.
	r = e.do("POST", "/v1/credentials/"+cred.ID+"/rotate", adminA, `{"grace":"24h"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("rotate: %d %s", r.status, r.body)
	}
	var rotated keyward.CreatedCredential
	r.decode(t, &rotated)
	e.remember(rotated.Secret)
	if rotated.Secret == "" || rotated.Secret == created.Secret || rotated.Credential.RotatedFrom != cred.ID {
		t.Fatalf("rotated = %+v", rotated.Credential)
	}
	var old keyward.ManagedCredential
	e.do("GET", "/v1/credentials/"+cred.ID, adminA, "").decode(t, &old)
	if old.Status != keyward.CredentialRotated || old.ReplacedBy != rotated.Credential.ID || old.GraceUntil == nil {
		t.Fatalf("old after rotate = %+v", old)
	}
	if r := e.do("POST", "/v1/credentials/"+cred.ID+"/rotate", adminA, ""); r.status != http.StatusConflict {
		t.Errorf("rotate a rotated credential: %d, want 409", r.status)
	}

	// Reconcile: a token created behind keyward's back is unmanaged, a
	// managed one deleted at the provider vanished; nothing changes unless
	// asked.
	stray := sys.add("alice", "by-hand")
	sys.drop(rotated.Credential.ExternalID)
	var rep keyward.ReconcileReport
	r = e.do("POST", "/v1/providers/"+conn.ID+"/reconcile", adminA, `{"users":["alice"]}`)
	r.decode(t, &rep)
	if r.status != http.StatusOK || len(rep.Unmanaged) != 1 || rep.Unmanaged[0].ExternalID != stray || len(rep.Vanished) != 1 || rep.Vanished[0].ID != rotated.Credential.ID || len(rep.Revoked)+len(rep.Marked) != 0 {
		t.Fatalf("reconcile: %d %s", r.status, r.body)
	}
	rep = keyward.ReconcileReport{}
	r = e.do("POST", "/v1/providers/"+conn.ID+"/reconcile", adminA, `{"users":["alice"],"revoke_unmanaged":true,"mark_vanished":true}`)
	r.decode(t, &rep)
	if r.status != http.StatusOK || !slices.Equal(rep.Revoked, []string{stray}) || !slices.Equal(rep.Marked, []string{rotated.Credential.ID}) {
		t.Fatalf("reconcile and act: %d %s", r.status, r.body)
	}

	// Revoke the old one (its grace is not over): gone at the provider.
	r = e.do("POST", "/v1/credentials/"+cred.ID+"/revoke", adminA, "")
	var rev keyward.ManagedCredential
	r.decode(t, &rev)
	if r.status != http.StatusOK || rev.Status != keyward.CredentialRevoked || rev.RevokedAt == nil {
		t.Fatalf("revoke: %d %+v", r.status, rev)
	}
	v = keyward.CredentialVerification{}
	e.do("POST", "/v1/credentials/verify", adminA, `{"connection_id":"`+conn.ID+`","token":"`+created.Secret+`"}`).decode(t, &v)
	if v.Valid {
		t.Errorf("a revoked token still verifies")
	}

	// The provider down, then slow: 502 and 504 naming it; a connection
	// cannot be added meanwhile.
	for _, c := range []struct {
		fault  error
		status int
		code   string
	}{
		{keyward.Errorf(keyward.EUPSTREAM, "cannot reach gitea at %s: connection refused", base), http.StatusBadGateway, keyward.EUPSTREAM},
		{keyward.Errorf(keyward.EUPSTREAMTIMEOUT, "gitea at %s did not answer within 5s: check that it is up, or raise the connection's timeout", base), http.StatusGatewayTimeout, keyward.EUPSTREAMTIMEOUT},
	} {
		sys.fail(c.fault)
		for _, req := range []struct {
			method, path, body string
			key                keyward.Secret
		}{
			{"POST", "/v1/providers/" + conn.ID + "/test", "", adminA},
			{"POST", "/v1/credentials", `{"connection_id":"` + conn.ID + `","name":"while-down","scopes":["read:user"]}`, adminA},
			{"POST", "/v1/credentials/verify", `{"connection_id":"` + conn.ID + `","token":"` + rotated.Secret + `"}`, adminA},
			{"POST", "/v1/providers/" + conn.ID + "/reconcile", "", adminA},
			{"PATCH", "/v1/providers/" + conn.ID, `{"timeout":"4s"}`, e.root},
			{"POST", "/v1/providers", `{"account_id":"` + a.ID + `","kind":"gitea","name":"other","base_url":"` + base + `","username":"admin","password":"` + password + `"}`, e.root},
		} {
			r := e.do(req.method, req.path, req.key, req.body)
			if r.status != c.status {
				t.Errorf("%s %s with the provider failing: %d %s, want %d", req.method, req.path, r.status, r.body, c.status)
				continue
			}
			if p := r.problem(t); p.Code != c.code || !strings.Contains(p.Detail, "gitea at "+base) {
				t.Errorf("%s %s: problem %+v, want %s naming the provider", req.method, req.path, p, c.code)
			}
		}
	}
	sys.fail(nil)
	var creds keyward.CredentialList
	e.do("GET", "/v1/credentials?connection_id="+conn.ID, adminA, "").decode(t, &creds)
	if len(creds.Items) != 2 {
		t.Errorf("credentials after the outage: %d, want 2 (none half-created)", len(creds.Items))
	}

	// Removing a connection waits until its credentials are revoked.
	r = e.do("POST", "/v1/credentials", e.root, `{"connection_id":"`+conn.ID+`","name":"last","scopes":["read:user"]}`)
	if r.status != http.StatusCreated {
		t.Fatalf("create as root: %d %s", r.status, r.body)
	}
	var last keyward.CreatedCredential
	r.decode(t, &last)
	e.remember(last.Secret)
	if r := e.do("DELETE", "/v1/providers/"+conn.ID, e.root, ""); r.status != http.StatusConflict {
		t.Errorf("remove with an active credential: %d %s, want 409", r.status, r.body)
	}
	// Nor may the account go while a token works at a provider: its
	// records would go with it.
	if r := e.do("DELETE", "/v1/accounts/"+a.ID, e.root, ""); r.status != http.StatusConflict || !strings.Contains(r.problem(t).Detail, "revoke them first") {
		t.Errorf("delete an account with an active credential: %d %s, want 409", r.status, r.body)
	}
	r = e.do("POST", "/v1/credentials/"+last.Credential.ID+"/rotate", adminA, "")
	var again keyward.CreatedCredential
	r.decode(t, &again)
	e.remember(again.Secret)
	if r.status != http.StatusCreated {
		t.Fatalf("rotate without grace: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/credentials/"+again.Credential.ID+"/revoke", adminA, ""); r.status != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	if r := e.do("DELETE", "/v1/providers/"+conn.ID, e.root, ""); r.status != http.StatusNoContent {
		t.Fatalf("remove: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/v1/providers/"+conn.ID, adminA, ""); r.status != http.StatusNotFound {
		t.Errorf("get after remove: %d, want 404", r.status)
	}

	// The password never left keyward: no response holds it (the logs are
	// checked when the test ends).
	for _, x := range e.rec.exchanges() {
		if strings.Contains(string(x.body), password) {
			t.Errorf("%s %s: the connection's password is in the response", x.method, x.path)
		}
	}
}

// TestCredentialsProviderID: a credential names its provider connection
// provider_id, in requests, in the list's filter and in every answer;
// connection_id, its former name, is still accepted on input (the other
// tests send it), and giving both with different values is refused.
func TestCredentialsProviderID(t *testing.T) {
	e := newEnv(t)
	a := e.mustAccount("a")
	const base = "https://git.example.com"
	password := "Gitea-admin-" + rand.Text()
	e.remember(password)
	e.providers.system(base).password = password
	var conn keyward.ProviderConnection
	if r := e.do("POST", "/v1/providers", e.root, `{"account_id":"`+a.ID+`","kind":"gitea","name":"gitea","base_url":"`+base+`","username":"admin","password":"`+password+`"}`); r.status != http.StatusCreated {
		t.Fatalf("create provider: %d %s", r.status, r.body)
	} else {
		r.decode(t, &conn)
	}

	r := e.do("POST", "/v1/credentials", e.root, `{"provider_id":"`+conn.ID+`","user":"alice","name":"ci"}`)
	if r.status != http.StatusCreated || !strings.Contains(string(r.body), `"provider_id":"`+conn.ID+`"`) || strings.Contains(string(r.body), "connection_id") {
		t.Fatalf("create with provider_id: %d %s, want 201 naming provider_id only", r.status, r.body)
	}
	var created keyward.CreatedCredential
	r.decode(t, &created)
	e.remember(created.Secret)
	for _, q := range []string{"provider_id=" + conn.ID, "connection_id=" + conn.ID} {
		var l keyward.CredentialList
		e.do("GET", "/v1/credentials?"+q, e.root, "").decode(t, &l)
		if len(l.Items) != 1 || l.Items[0].ProviderID != conn.ID {
			t.Errorf("list ?%s: %+v, want the credential", q, l.Items)
		}
	}
	var none keyward.CredentialList
	e.do("GET", "/v1/credentials?provider_id=prv_other", e.root, "").decode(t, &none)
	if len(none.Items) != 0 {
		t.Errorf("list ?provider_id=prv_other: %d credentials, want none", len(none.Items))
	}
	var v keyward.CredentialVerification
	if r := e.do("POST", "/v1/credentials/verify", e.root, `{"provider_id":"`+conn.ID+`","token":"`+created.Secret+`"}`); r.status != http.StatusOK {
		t.Fatalf("verify with provider_id: %d %s", r.status, r.body)
	} else if r.decode(t, &v); !v.Valid {
		t.Fatalf("verify with provider_id: %+v, want valid", v)
	}

	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/credentials", `{"provider_id":"` + conn.ID + `","connection_id":"prv_other","name":"x"}`},
		{"POST", "/v1/credentials/verify", `{"provider_id":"` + conn.ID + `","connection_id":"prv_other","token":"x"}`},
		{"GET", "/v1/credentials?provider_id=" + conn.ID + "&connection_id=prv_other", ""},
		{"POST", "/v1/credentials/verify", `{"token":"x"}`},
	} {
		if r := e.do(c.method, c.path, e.root, c.body); r.status != http.StatusBadRequest || r.problem(t).Code != keyward.EINVALID {
			t.Errorf("%s %s %s: %d %s, want 400 invalid", c.method, c.path, c.body, r.status, r.body)
		}
	}
	// Both names with the same value are one provider.
	if r := e.do("POST", "/v1/credentials", e.root, `{"provider_id":"`+conn.ID+`","connection_id":"`+conn.ID+`","user":"alice","name":"ci2"}`); r.status != http.StatusCreated {
		t.Errorf("create with both names agreeing: %d %s, want 201", r.status, r.body)
	} else {
		var c2 keyward.CreatedCredential
		r.decode(t, &c2)
		e.remember(c2.Secret)
	}
}

// TestCredentialsClient drives the same routes through the Go client, which
// implements keyward.CredentialService over HTTP: results and error codes
// survive the trip.
func TestCredentialsClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.mustAccount("a")
	admin := keyward.Secret(e.mustKey(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin}).Secret)
	c := e.client(admin)
	ctx := t.Context()
	const base = "https://n8n.example.com"
	password := "n8n-owner-" + rand.Text()
	e.remember(password)
	sys := e.providers.system(base)
	sys.password = password

	conn, err := e.client(e.root).CreateProviderConnection(ctx, keyward.NewProviderConnection{AccountID: a.ID, Kind: "n8n", Name: "flows", BaseURL: base, Username: "owner@example.com", Password: password})
	if err != nil || conn.AccountID != a.ID || conn.Kind != "n8n" {
		t.Fatalf("CreateProviderConnection: %+v, %v", conn, err)
	}
	if l, err := c.ProviderConnections(ctx, "", keyward.Page{}); err != nil || len(l.Items) != 1 || l.Items[0].ID != conn.ID {
		t.Fatalf("ProviderConnections: %+v, %v", l, err)
	}
	if got, err := c.ProviderConnection(ctx, conn.ID); err != nil || got.Name != "flows" {
		t.Fatalf("ProviderConnection: %+v, %v", got, err)
	}
	if err := c.TestProviderConnection(ctx, conn.ID); err != nil {
		t.Fatalf("TestProviderConnection: %v", err)
	}
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	created, err := c.CreateCredential(ctx, keyward.NewCredential{ProviderID: conn.ID, Name: "workflows", Scopes: []string{"workflow:read"}, ExpiresAt: &exp})
	if err != nil {
		t.Fatalf("CreateCredential: %v", err)
	}
	e.remember(created.Secret)
	if created.Credential.ExternalUser != "owner@example.com" || !created.Credential.ExpiresAt.Equal(exp) {
		t.Errorf("created = %+v", created.Credential)
	}
	if l, err := c.Credentials(ctx, keyward.CredentialFilter{ProviderID: conn.ID, Status: keyward.CredentialActive}, keyward.Page{Limit: 10}); err != nil || len(l.Items) != 1 {
		t.Fatalf("Credentials: %+v, %v", l, err)
	}
	if v, err := c.VerifyCredential(ctx, conn.ID, created.Secret); err != nil || !v.Valid {
		t.Fatalf("VerifyCredential: %+v, %v", v, err)
	}
	rotated, err := c.RotateCredential(ctx, created.Credential.ID, time.Hour)
	if err != nil {
		t.Fatalf("RotateCredential: %v", err)
	}
	e.remember(rotated.Secret)
	if old, err := c.Credential(ctx, created.Credential.ID); err != nil || old.Status != keyward.CredentialRotated || old.GraceUntil == nil {
		t.Fatalf("Credential after rotation: %+v, %v", old, err)
	}

	sys.fail(keyward.Errorf(keyward.EUPSTREAMTIMEOUT, "n8n at %s did not answer within 10s", base))
	if _, err := c.RevokeCredential(ctx, rotated.Credential.ID); keyward.ErrorCode(err) != keyward.EUPSTREAMTIMEOUT || !strings.Contains(keyward.ErrorMessage(err), "n8n at "+base) {
		t.Errorf("RevokeCredential with n8n slow: %v, want upstream_timeout naming it", err)
	}
	sys.fail(keyward.Errorf(keyward.EUPSTREAM, "cannot reach n8n at %s: connection refused", base))
	if err := c.TestProviderConnection(ctx, conn.ID); keyward.ErrorCode(err) != keyward.EUPSTREAM {
		t.Errorf("TestProviderConnection with n8n down: %v, want upstream_error", err)
	}
	sys.fail(nil)

	for _, id := range []string{created.Credential.ID, rotated.Credential.ID} {
		if cr, err := c.RevokeCredential(ctx, id); err != nil || cr.Status != keyward.CredentialRevoked {
			t.Fatalf("RevokeCredential %s: %+v, %v", id, cr, err)
		}
	}
	if rep, err := c.Reconcile(ctx, conn.ID, keyward.ReconcileRequest{}); err != nil || len(rep.Unmanaged) != 0 || len(rep.Vanished) != 0 {
		t.Fatalf("Reconcile: %+v, %v", rep, err)
	}
	if _, err := e.client(e.root).UpdateProviderConnection(ctx, conn.ID, keyward.ProviderConnectionUpdate{Password: &password}); err != nil {
		t.Fatalf("UpdateProviderConnection: %v", err)
	}
	wrong := "not-the-password"
	if _, err := e.client(e.root).UpdateProviderConnection(ctx, conn.ID, keyward.ProviderConnectionUpdate{Password: &wrong}); keyward.ErrorCode(err) != keyward.EINVALID {
		t.Fatalf("UpdateProviderConnection with a password the provider refuses: %v, want invalid", err)
	}
	if err := e.client(e.root).DeleteProviderConnection(ctx, conn.ID); err != nil {
		t.Fatalf("DeleteProviderConnection: %v", err)
	}
	if _, err := c.ProviderConnection(ctx, conn.ID); keyward.ErrorCode(err) != keyward.ENOTFOUND {
		t.Errorf("ProviderConnection after removal: %v, want not_found", err)
	}
}
