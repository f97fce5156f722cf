package gateway_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/gateway"
	"github.com/keyward/keyward/keystore"
)

// testKey creates a user key in the test environment.
func (e *env) testKey() *keyward.CreatedKey {
	e.t.Helper()
	ctx := e.rootCtx()
	live := e.userKey()
	k, err := e.svc.Keys.CreateKey(ctx, keyward.KeyCreate{AccountID: live.AccountID, UserID: live.UserID, Role: keyward.RoleUser, Environment: "test"})
	if err != nil {
		e.t.Fatalf("create test key: %v", err)
	}
	e.secrets = append(e.secrets, k.Secret)
	return k
}

// TestRouteEnvironment: a route requiring an environment lets its keys
// through and refuses others with 403 before the upstream; routes without
// the setting take any environment; forward-auth answers alike.
func TestRouteEnvironment(t *testing.T) {
	e := newEnv(t)
	live, test := e.userKey(), e.testKey()
	liveRoute := e.route("/live")
	liveRoute.Environment = keyward.DefaultEnvironment
	testRoute := e.route("/sandbox")
	testRoute.Environment = "test"
	routes := []gateway.Route{liveRoute, testRoute, e.route("/any")}
	gw := e.gateway(gateway.Config{Routes: routes})
	fa := e.forwardAuth(gateway.Config{Routes: routes})
	for _, c := range []struct {
		path   string
		key    string
		status int
	}{
		{"/live/x", live.Secret, http.StatusOK},
		{"/live/x", test.Secret, http.StatusForbidden},
		{"/sandbox/x", test.Secret, http.StatusOK},
		{"/sandbox/x", live.Secret, http.StatusForbidden},
		{"/any/x", live.Secret, http.StatusOK},
		{"/any/x", test.Secret, http.StatusOK},
	} {
		before := len(e.up.requests())
		r := do(t, call{url: gw.URL + c.path, header: bearer(c.key)})
		if r.status != c.status {
			t.Errorf("gateway %s: status %d, want %d", c.path, r.status, c.status)
		}
		if c.status == http.StatusForbidden {
			if code, _ := r.problem(t); code != keyward.EFORBIDDEN {
				t.Errorf("gateway %s: code %q, want %q", c.path, code, keyward.EFORBIDDEN)
			}
			if len(e.up.requests()) != before {
				t.Errorf("gateway %s: a refused request reached the upstream", c.path)
			}
		}
		r = do(t, call{url: fa.URL + "/v1/forward-auth", header: with(bearer(c.key), "X-Original-URI", c.path)})
		if want := c.status; r.status != want {
			t.Errorf("forward-auth %s: status %d, want %d", c.path, r.status, want)
		}
	}
}

// TestRouteEnvironmentFailsClosed: a verifier that knows no environments
// (the legacy key of the simple modes) answers VALID without one; a route
// requiring an environment refuses it, a route without lets it through.
func TestRouteEnvironmentFailsClosed(t *testing.T) {
	e := newEnv(t)
	const legacy = "legacy-admin-key-0123456789abcdef"
	v, err := keystore.Legacy(keyward.Secret(legacy), e.logger())
	if err != nil {
		t.Fatal(err)
	}
	e.secrets = append(e.secrets, legacy)
	liveRoute := e.route("/live")
	liveRoute.Environment = "live"
	gw := e.gateway(gateway.Config{Verifier: v, Routes: []gateway.Route{liveRoute, e.route("/any")}})
	if r := do(t, call{url: gw.URL + "/live/x", header: bearer(legacy)}); r.status != http.StatusForbidden {
		t.Errorf("/live with a key of no environment: status %d, want 403", r.status)
	}
	if r := do(t, call{url: gw.URL + "/any/x", header: bearer(legacy)}); r.status != http.StatusOK {
		t.Errorf("/any with a key of no environment: status %d, want 200", r.status)
	}
}

func TestRouteEnvironmentValidated(t *testing.T) {
	e := newEnv(t)
	r := e.route("/x")
	r.Environment = "Live"
	_, err := gateway.New(gateway.Config{Verifier: e.engine, Routes: []gateway.Route{r}})
	if err == nil || !strings.Contains(err.Error(), "routes[0].environment: ") {
		t.Fatalf("gateway.New with environment Live: %v, want an error naming routes[0].environment", err)
	}
}
