package unkeyv2

import (
	"fmt"
	"slices"
	"testing"
	"time"
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

// TestMonthlyRefill checks that a monthly refill with a refillDay is
// stored as keyward's monthly refill, answered as Unkey's, and refills the
// credits once its day has come.
func TestMonthlyRefill(t *testing.T) {
	e := newEnv(t)
	api := e.api("acme")
	monthly := map[string]any{"interval": "monthly", "amount": 2, "refillDay": 31}
	id, secret := e.createKey(map[string]any{"apiId": api, "credits": map[string]any{"remaining": 1, "refill": monthly}})
	k := e.obj(e.root, "keys.getKey", map[string]any{"keyId": id})
	if r := k["credits"].(map[string]any)["refill"].(map[string]any); r["interval"] != "monthly" || r["amount"] != float64(2) || r["refillDay"] != float64(31) {
		t.Fatalf("getKey refill: %v", r)
	}
	if stored, err := e.svc.Keys.Credits(e.rootC, id); err != nil || stored.Refill == nil || stored.Refill.Day != 31 || stored.Refill.Interval != 0 {
		t.Fatalf("keyward's credits: %+v, %v", stored, err)
	}
	if v := e.verify(map[string]any{"key": secret}); v["code"] != "VALID" || v["credits"] != float64(0) {
		t.Fatalf("first verify: %v", v)
	}
	if v := e.verify(map[string]any{"key": secret}); v["code"] != "USAGE_EXCEEDED" {
		t.Fatalf("credits spent: %v", v)
	}
	// Every month has a refill day (the 31st, or its last day) within 31
	// days of any moment.
	e.clock.advance(32 * 24 * time.Hour)
	if v := e.verify(map[string]any{"key": secret}); v["code"] != "VALID" || v["credits"] != float64(1) {
		t.Fatalf("after the refill day: %v", v)
	}

	// updateKey replaces the refill; a daily one has no refillDay.
	e.obj(e.root, "keys.updateKey", map[string]any{"keyId": id, "credits": map[string]any{"remaining": 5, "refill": map[string]any{"interval": "daily", "amount": 5}}})
	k = e.obj(e.root, "keys.getKey", map[string]any{"keyId": id})
	if r := k["credits"].(map[string]any)["refill"].(map[string]any); r["interval"] != "daily" || r["refillDay"] != nil {
		t.Fatalf("getKey refill after updateKey: %v", r)
	}
}
