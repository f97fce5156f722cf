package unkeyv2

import (
	"fmt"
	"slices"
	"testing"
)

// limitsOf returns the ratelimits of a verifyKey answer as
// "name:remaining", with "!" after an exceeded limit's name and "(manual)"
// after one that is not autoApply.
func limitsOf(v map[string]any) []string {
	var out []string
	for _, l := range v["ratelimits"].([]any) {
		l := l.(map[string]any)
		s := l["name"].(string)
		if l["exceeded"] == true {
			s += "!"
		}
		if l["autoApply"] != true {
			s += "(manual)"
		}
		out = append(out, fmt.Sprintf("%s:%v", s, l["remaining"]))
	}
	return out
}

// TestAutoApply checks that a limit created with autoApply false counts
// only against the verifications that name it in ratelimits, as Unkey's
// do, while an autoApply one counts against every verification, named or
// not; at the key's level and its identity's.
func TestAutoApply(t *testing.T) {
	e := newEnv(t)
	api := e.api("acme")
	e.ok(e.root, "identities.createIdentity", map[string]any{"externalId": "org-1",
		"ratelimits": []any{map[string]any{"name": "org", "limit": 1, "duration": 60000, "autoApply": false}}})
	id, secret := e.createKey(map[string]any{"apiId": api, "externalId": "org-1", "ratelimits": []any{
		map[string]any{"name": "requests", "limit": 3, "duration": 60000, "autoApply": true},
		map[string]any{"name": "tokens", "limit": 2, "duration": 60000, "autoApply": false},
	}})
	k := e.obj(e.root, "keys.getKey", map[string]any{"keyId": id})
	var auto []bool
	for _, l := range k["ratelimits"].([]any) {
		auto = append(auto, l.(map[string]any)["autoApply"] == true)
	}
	if !slices.Equal(auto, []bool{true, false}) {
		t.Fatalf("getKey ratelimits: %v", k["ratelimits"])
	}
	if rl := k["identity"].(map[string]any)["ratelimits"].([]any)[0].(map[string]any); rl["autoApply"] != false {
		t.Fatalf("getKey identity ratelimits: %v", rl)
	}

	named := func(names ...string) map[string]any {
		body := map[string]any{"key": secret}
		var rs []any
		for _, n := range names {
			rs = append(rs, map[string]any{"name": n})
		}
		if rs != nil {
			body["ratelimits"] = rs
		}
		return body
	}
	for i, step := range []struct {
		names []string
		code  string
		want  []string
	}{
		{nil, "VALID", []string{"requests:2"}},
		{[]string{"tokens"}, "VALID", []string{"requests:1", "tokens(manual):1"}},
		// Naming an autoApply limit counts it once.
		{[]string{"requests"}, "VALID", []string{"requests:0"}},
		// requests is spent: tokens, named, is not.
		{[]string{"tokens"}, "RATE_LIMITED", []string{"requests!:0", "tokens(manual):1"}},
		{nil, "RATE_LIMITED", []string{"requests!:0"}},
		// An unknown name counts against nothing more.
		{[]string{"nope"}, "RATE_LIMITED", []string{"requests!:0"}},
	} {
		v := e.verify(named(step.names...))
		if v["code"] != step.code || !slices.Equal(limitsOf(v), step.want) {
			t.Fatalf("step %d (%v): %v %v, want %s %v", i, step.names, v["code"], limitsOf(v), step.code, step.want)
		}
	}

	// The identity's manual limit, named: shared by its keys.
	_, other := e.createKey(map[string]any{"apiId": api, "externalId": "org-1"})
	for i, want := range []string{"VALID", "VALID", "RATE_LIMITED"} {
		body := map[string]any{"key": other}
		if i > 0 {
			body["ratelimits"] = []any{map[string]any{"name": "org"}}
		}
		if v := e.verify(body); v["code"] != want {
			t.Fatalf("identity limit, verification %d: %v, want %s", i, v, want)
		}
	}
}
