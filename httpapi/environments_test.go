package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

// TestKeyEnvironments: over HTTP and the Go client, a key is created in an
// environment (its prefix follows), listed by environment, and verified
// with the environment returned and, when required, enforced; bad
// environments are problems with a stable code. Every response is checked
// against openapi.json when the test ends.
func TestKeyEnvironments(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	a := e.mustAccount("acme")
	u := e.mustUser(a.ID, "alice")
	root := e.client(e.root)

	test, err := root.CreateKey(ctx, keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Role: keyward.RoleUser, Environment: "test"})
	if err != nil {
		t.Fatal(err)
	}
	e.remember(test.Secret)
	live, err := root.CreateKey(ctx, keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Role: keyward.RoleUser})
	if err != nil {
		t.Fatal(err)
	}
	e.remember(live.Secret)
	if test.Environment != "test" || !strings.HasPrefix(test.Secret, "kw_test_user_") || live.Environment != "live" || !strings.HasPrefix(live.Secret, "kw_user_") {
		t.Fatalf("created %s key %q and %s key %q", test.Environment, test.Start, live.Environment, live.Start)
	}

	list, err := root.Keys(ctx, keyward.KeyFilter{Environment: "test"}, keyward.Page{})
	if err != nil || len(list.Items) != 1 || list.Items[0].ID != test.ID || list.Items[0].Environment != "test" {
		t.Fatalf("test keys = %+v, %v; want only %s", list, err, test.ID)
	}
	list, err = root.Keys(ctx, keyward.KeyFilter{Environment: "live", AccountID: a.ID}, keyward.Page{})
	if err != nil || len(list.Items) != 1 || list.Items[0].ID != live.ID {
		t.Fatalf("live keys of acme = %+v, %v; want only %s", list, err, live.ID)
	}

	for _, c := range []struct {
		name     string
		req      keyward.VerifyRequest
		code     keyward.Decision
		wantEnv  string
		identity bool
	}{
		{"test key, any environment", keyward.VerifyRequest{Key: test.Secret}, keyward.DecisionValid, "test", true},
		{"test key where live is required", keyward.VerifyRequest{Key: test.Secret, Environment: "live"}, keyward.DecisionWrongEnvironment, "test", false},
		{"live key where live is required", keyward.VerifyRequest{Key: live.Secret, Environment: "live"}, keyward.DecisionValid, "live", true},
	} {
		res, err := root.VerifyKey(ctx, c.req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if res.Code != c.code || res.Environment != c.wantEnv || (res.Identity != nil) != c.identity ||
			c.identity && res.Identity.Environment != c.wantEnv {
			t.Errorf("%s: %+v, want %s in %s", c.name, res, c.code, c.wantEnv)
		}
	}

	// Bad input: problem+json with the code of invalid input, naming the
	// fix.
	for _, c := range []struct {
		method, path, body, says string
	}{
		{"POST", "/v1/keys", `{"account_id":"` + a.ID + `","user_id":"` + u.ID + `","environment":"staging"}`, "key_prefixes.environments"},
		{"POST", "/v1/keys", `{"account_id":"` + a.ID + `","user_id":"` + u.ID + `","environment":"Test"}`, "environment name"},
		{"GET", "/v1/keys?environment=TEST", "", "environment name"},
		{"POST", "/v1/keys/verify", `{"key":"` + live.Secret + `","environment":"live!"}`, "environment name"},
	} {
		r := e.do(c.method, c.path, e.root, c.body)
		if r.status != http.StatusBadRequest {
			t.Errorf("%s %s: status %d, want 400", c.method, c.path, r.status)
			continue
		}
		if p := r.problem(t); p.Code != keyward.EINVALID || !strings.Contains(p.Detail, c.says) {
			t.Errorf("%s %s: problem %+v, want %s saying %q", c.method, c.path, p, keyward.EINVALID, c.says)
		}
	}
}
