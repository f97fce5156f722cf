package unkeyv2

import (
	"net/http"
	"testing"
	"time"
)

// TestRatelimitLimit: a standalone limit admits limit/cost calls of an
// identifier in a window and then refuses (200, success false) without
// counting the refusal; identifiers and namespaces count apart; the window
// refills with time; only root may call it; bad fields are 400 naming the
// field, and what they refuse counts nothing.
func TestRatelimitLimit(t *testing.T) {
	e := newEnv(t)
	call := func(ns, id string, cost int) map[string]any {
		t.Helper()
		return e.obj(e.root, "ratelimit.limit", map[string]any{"namespace": ns, "identifier": id, "limit": 3, "duration": 60000, "cost": cost})
	}
	want := func(d map[string]any, success bool, remaining float64) {
		t.Helper()
		if d["success"] != success || d["remaining"] != remaining || d["limit"] != float64(3) {
			t.Fatalf("ratelimit.limit = %v, want success %v, remaining %v, limit 3", d, success, remaining)
		}
	}
	start := e.clock.now()
	want(call("email", "user_1", 1), true, 2)
	want(call("email", "user_1", 2), true, 0)
	d := call("email", "user_1", 1)
	want(d, false, 0)
	if reset := int64(d["reset"].(float64)); reset <= start.UnixMilli() || reset > start.Add(time.Minute).UnixMilli() {
		t.Errorf("reset %d is not within the window after %d", reset, start.UnixMilli())
	}
	want(call("email", "user_2", 1), true, 2) // another identifier
	want(call("sms", "user_1", 1), true, 2)   // another namespace

	// Refused fields: 400 naming them, and nothing counted.
	for _, tc := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"identifier": "x", "limit": 3, "duration": 60000}, "body.namespace"},
		{map[string]any{"namespace": "email", "identifier": "a b", "limit": 3, "duration": 60000}, "body.identifier"},
		{map[string]any{"namespace": "email", "identifier": "x", "duration": 60000}, "body.limit"},
		{map[string]any{"namespace": "email", "identifier": "x", "limit": 0, "duration": 60000}, "body.limit"},
		{map[string]any{"namespace": "email", "identifier": "x", "limit": 3}, "body.duration"},
		{map[string]any{"namespace": "email", "identifier": "x", "limit": 3, "duration": 10}, "body.duration"},
		{map[string]any{"namespace": "email", "identifier": "x", "limit": 3, "duration": 60000, "cost": 0}, "body.cost"},
		{map[string]any{"namespace": "email", "identifier": "x", "limit": 3, "duration": 60000, "cost": 4}, "body.cost"},
		{map[string]any{"namespace": "email", "identifier": "x", "limit": 3, "duration": 60000, "async": true}, "body.async"},
	} {
		if loc := location(e.refused(e.root, "ratelimit.limit", tc.body, http.StatusBadRequest)); loc != tc.field {
			t.Errorf("%v: error location %q, want %q", tc.body, loc, tc.field)
		}
	}
	want(call("email", "x", 3), true, 0) // none of the refused calls counted

	// A key that is not root may not use the deployment's limits.
	admin := e.adminKey(e.api("acme"))
	e.refused(admin, "ratelimit.limit", map[string]any{"namespace": "email", "identifier": "y", "limit": 3, "duration": 60000}, http.StatusForbidden)

	// The window refills with time.
	e.clock.advance(time.Minute)
	want(call("email", "user_1", 3), true, 0)
}
