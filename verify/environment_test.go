package verify_test

import (
	"time"

	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/verify"
)

// TestEnvironment: a verification that requires an environment refuses a
// key of another with WRONG_ENVIRONMENT, after the key's own state and
// before its permissions and limits; one that requires none, or the key's,
// is not refused; the result carries the key's environment.
func TestEnvironment(t *testing.T) {
	e := newEnv(t, nil)
	live := e.key(keyward.Key{Permissions: []string{"a:read"}})
	test := e.key(keyward.Key{Environment: "test", Permissions: []string{"a:read"}, RateLimits: []keyward.RateLimit{{Name: "min", Limit: 1, Window: keyward.Duration(time.Minute)}}})
	disabled := e.key(keyward.Key{Environment: "test", Disabled: true})
	run := func(raw, env string, perms ...string) verify.Result {
		return e.engine.Verify(e.ctx, verify.Request{Key: raw, Environment: env, Permissions: perms})
	}
	for _, c := range []struct {
		name, raw, env string
		perms          []string
		want           keyward.Decision
		wantEnv        string
	}{
		{"a live key, no requirement", live.Secret, "", nil, keyward.DecisionValid, "live"},
		{"a live key where live is required", live.Secret, "live", []string{"a:read"}, keyward.DecisionValid, "live"},
		{"a live key where test is required", live.Secret, "test", nil, keyward.DecisionWrongEnvironment, "live"},
		{"a test key where live is required", test.Secret, "live", nil, keyward.DecisionWrongEnvironment, "test"},
		// The environment is decided before the permissions...
		{"a test key lacking permissions where live is required", test.Secret, "live", []string{"b:write"}, keyward.DecisionWrongEnvironment, "test"},
		// ...and after the key's own state.
		{"a disabled test key where live is required", disabled.Secret, "live", nil, keyward.DecisionDisabled, "test"},
		{"a test key where test is required", test.Secret, "test", []string{"a:read"}, keyward.DecisionValid, "test"},
	} {
		res := run(c.raw, c.env, c.perms...)
		if res.Decision != c.want {
			t.Errorf("%s: %s, want %s", c.name, res.Decision, c.want)
		}
		if got := res.VerifyResult().Environment; got != c.wantEnv {
			t.Errorf("%s: environment %q, want %q", c.name, got, c.wantEnv)
		}
		if res.Decision == keyward.DecisionValid && res.Identity().Environment != c.wantEnv {
			t.Errorf("%s: identity environment %q, want %q", c.name, res.Identity().Environment, c.wantEnv)
		}
	}
	// The refusals above spent nothing: the test key's limit of one call
	// was spent by the one VALID call, so the next is RATE_LIMITED.
	if got := run(test.Secret, "test").Decision; got != keyward.DecisionRateLimited {
		t.Errorf("test key after one valid call: %s, want RATE_LIMITED (a refused environment must spend nothing)", got)
	}
	// An environment that is no environment name is refused by
	// NewRequest.
	if _, err := verify.NewRequest(keyward.VerifyRequest{Key: live.Secret, Environment: "Live!"}); keyward.ErrorCode(err) != keyward.EINVALID {
		t.Errorf("NewRequest with environment Live!: %v, want EINVALID", err)
	}
	if r, err := verify.NewRequest(keyward.VerifyRequest{Key: live.Secret, Environment: "test"}); err != nil || r.Environment != "test" {
		t.Errorf("NewRequest with environment test = %+v, %v", r, err)
	}
	if got := keyward.DecisionWrongEnvironment.Refusal(); got.Code != keyward.EFORBIDDEN {
		t.Errorf("WRONG_ENVIRONMENT refuses with %s, want %s (403)", got.Code, keyward.EFORBIDDEN)
	}
}
