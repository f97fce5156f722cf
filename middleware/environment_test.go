package middleware_test

import (
	"net/http"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/keystore"
	"github.com/keyward/keyward/middleware"
)

// TestWithEnvironment: behind WithEnvironment, keys of that environment
// reach the handler with it in their identity and others are refused with
// 403, in process and through a remote keyward's cached verifier (whose
// cache must not serve an answer given without the requirement); without
// the option both pass.
func TestWithEnvironment(t *testing.T) {
	e := newEnv(t)
	live := e.userKey()
	test := e.key(keyward.KeyCreate{AccountID: e.acct.ID, UserID: e.user.ID, Role: keyward.RoleUser, Environment: "test"})
	remote := e.remote(e.root)
	for name, v := range map[string]keyward.KeyVerifier{"in process": e.engine, "remote": remote} {
		any := e.protect(v, whoami())
		liveOnly := e.protect(v, whoami(), middleware.WithEnvironment("live"))
		for _, k := range []*keyward.CreatedKey{live, test} {
			// First without a requirement, so the remote cache holds the
			// key's VALID answer before the live-only service asks.
			if got := get(t, any, "/x", "Authorization", "Bearer "+k.Secret).seen(t).Identity; got == nil || got.Environment != k.Environment {
				t.Errorf("%s: any environment, %s key: identity %+v", name, k.Environment, got)
			}
		}
		if got := get(t, liveOnly, "/x", "Authorization", "Bearer "+live.Secret).seen(t).Identity; got.Environment != "live" {
			t.Errorf("%s: live only, live key: environment %q", name, got.Environment)
		}
		get(t, liveOnly, "/x", "Authorization", "Bearer "+test.Secret).problem(t, http.StatusForbidden, keyward.EFORBIDDEN)
	}

	// The cached verifier asks again when the requirement differs: the
	// VALID answer cached for the test key without one is not served.
	if res, err := remote.VerifyKey(t.Context(), keyward.VerifyRequest{Key: test.Secret, Environment: "live", IP: "127.0.0.1"}); err != nil || res.Code != keyward.DecisionWrongEnvironment {
		t.Errorf("cached verifier, test key for live: %+v, %v; want WRONG_ENVIRONMENT", res, err)
	}

	// A verifier that knows no environments: refused, fail closed.
	const legacy = "legacy-admin-key-0123456789abcdef"
	e.remember(legacy)
	l, err := keystore.Legacy(keyward.Secret(legacy), e.log)
	if err != nil {
		t.Fatal(err)
	}
	get(t, e.protect(l, whoami(), middleware.WithEnvironment("live")), "/x", "Authorization", "Bearer "+legacy).problem(t, http.StatusForbidden, keyward.EFORBIDDEN)

	defer func() {
		if recover() == nil {
			t.Error("New accepted WithEnvironment(\"Live\")")
		}
	}()
	middleware.New(e.engine, middleware.WithEnvironment("Live"))
}
