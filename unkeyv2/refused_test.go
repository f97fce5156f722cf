package unkeyv2

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// TestCreateKeyRefused checks that every field keyward cannot honour is a
// 400 naming it, and that a refused createKey leaves no key and no user.
func TestCreateKeyRefused(t *testing.T) {
	e := newEnv(t)
	api := e.api("acme")
	rl := func(extra map[string]any) []any {
		r := map[string]any{"name": "m", "limit": 5, "duration": 60000, "autoApply": true}
		for k, v := range extra {
			r[k] = v
		}
		return []any{r}
	}
	for _, c := range []struct {
		body     map[string]any
		location string
		status   int
	}{
		{map[string]any{"recoverable": true}, "body.recoverable", 400},
		{map[string]any{"byteLength": 64}, "body.byteLength", 400},
		{map[string]any{"byteLength": 8}, "body.byteLength", 400},
		{map[string]any{"prefix": "sk_live"}, "body.prefix", 400},
		{map[string]any{"credits": map[string]any{"remaining": 5, "refill": map[string]any{"interval": "monthly", "amount": 5}}}, "body.credits.refill.refillDay", 400},
		{map[string]any{"credits": map[string]any{"remaining": 5, "refill": map[string]any{"interval": "monthly", "amount": 5, "refillDay": 0}}}, "body.credits.refill.refillDay", 400},
		{map[string]any{"credits": map[string]any{"remaining": 5, "refill": map[string]any{"interval": "monthly", "amount": 5, "refillDay": 32}}}, "body.credits.refill.refillDay", 400},
		{map[string]any{"credits": map[string]any{"remaining": 5, "refill": map[string]any{"interval": "weekly", "amount": 5}}}, "body.credits.refill.interval", 400},
		{map[string]any{"credits": map[string]any{"remaining": 5, "refill": map[string]any{"interval": "daily", "amount": 5, "refillDay": 3}}}, "body.credits.refill.refillDay", 400},
		{map[string]any{"credits": map[string]any{"remaining": nil, "refill": map[string]any{"interval": "daily", "amount": 5}}}, "body.credits.refill", 400},
		{map[string]any{"credits": map[string]any{"remaining": -1}}, "body.credits", 400},
		{map[string]any{"ratelimits": rl(map[string]any{"autoApply": nil})}, "body.ratelimits[0].autoApply", 400},
		{map[string]any{"ratelimits": rl(map[string]any{"duration": 0})}, "body.ratelimits[0].duration", 400},
		{map[string]any{"ratelimits": rl(map[string]any{"limit": 0})}, "body.ratelimits[0]", 400},
		{map[string]any{"expires": 1000}, "", 400},
		{map[string]any{"meta": []int{1}}, "", 400},
		{map[string]any{"roles": []string{"no-such-role"}}, "", 404},
		{map[string]any{"apiId": "acc_nope"}, "", 404},
	} {
		for _, ext := range []string{"", "new-identity"} {
			body := map[string]any{"apiId": api, "name": "k"}
			if ext != "" {
				body["externalId"] = ext
			}
			for k, v := range c.body {
				body[k] = v
			}
			er := e.refused(e.root, "keys.createKey", body, c.status)
			if c.location != "" && location(er) != c.location {
				t.Fatalf("%v: location %q, want %q (%v)", c.body, location(er), c.location, er)
			}
		}
	}
	keys, err := e.svc.Keys.Keys(e.rootC, keyward.KeyFilter{AccountID: api}, keyward.Page{})
	if err != nil || len(keys.Items) != 0 {
		t.Fatalf("refused creations left keys: %v %v", keys, err)
	}
	users, err := e.svc.Tenancy.Users(e.rootC, api, keyward.Page{})
	if err != nil || len(users.Items) != 0 {
		t.Fatalf("refused creations left %d users: %v", len(users.Items), err)
	}
}

func TestCreateKeyIdentityAndPrefix(t *testing.T) {
	e := newEnv(t)
	api := e.api("acme")
	a, _ := e.createKey(map[string]any{"apiId": api, "externalId": "u1"})
	b, _ := e.createKey(map[string]any{"apiId": api, "externalId": "u1"})
	c, _ := e.createKey(map[string]any{"apiId": api})
	d, _ := e.createKey(map[string]any{"apiId": api})
	user := func(id string) string {
		k, err := e.svc.Keys.Key(e.rootC, id)
		if err != nil {
			t.Fatal(err)
		}
		return k.UserID
	}
	if user(a) != user(b) {
		t.Fatal("two keys of one externalId have different users")
	}
	if user(c) == user(d) || user(c) == user(a) {
		t.Fatal("keys without an externalId share a user")
	}
	if k := e.obj(e.root, "keys.getKey", map[string]any{"keyId": c}); k["identity"] != nil {
		t.Fatalf("a key without externalId has an identity: %v", k)
	}
	_, secret := e.createKey(map[string]any{"apiId": api, "prefix": "kw_test_user"})
	if !strings.HasPrefix(secret, "kw_test_user_") {
		t.Fatalf("prefix not honoured: %s", secret[:13])
	}
	_, secret = e.createKey(map[string]any{"apiId": api, "prefix": "kw_user_", "enabled": false})
	if v := e.verify(map[string]any{"key": secret}); v["code"] != "DISABLED" {
		t.Fatalf("created disabled: %v", v)
	}
	// Only a root key sets meta; an account admin's createKey with meta
	// is refused and leaves nothing.
	adm := e.adminKey(api)
	e.refused(adm, "keys.createKey", map[string]any{"apiId": api, "externalId": "u9", "meta": map[string]any{"plan": "pro"}}, http.StatusForbidden)
	if _, err := e.svc.Tenancy.UserByExternalID(e.rootC, api, "u9"); keyward.ErrorCode(err) != keyward.ENOTFOUND {
		t.Fatalf("a refused createKey left its identity: %v", err)
	}
	e.createKey(map[string]any{"apiId": api, "externalId": "u9"})
}

// TestUpdateKeyRefused checks that a refused update changes nothing.
func TestUpdateKeyRefused(t *testing.T) {
	e := newEnv(t)
	api := e.api("acme")
	id, _ := e.createKey(map[string]any{"apiId": api, "name": "before", "externalId": "u1", "credits": map[string]any{"remaining": 5}})
	adm := e.adminKey(api)
	for _, c := range []struct {
		key      string
		body     map[string]any
		location string
		status   int
	}{
		{adm, map[string]any{"name": "after", "credits": map[string]any{"remaining": 50}}, "", 403},
		{e.root, map[string]any{"name": "after", "externalId": "u2"}, "body.externalId", 400},
		{e.root, map[string]any{"name": "after", "externalId": nil}, "body.externalId", 400},
		{e.root, map[string]any{"name": "after", "credits": map[string]any{"refill": map[string]any{"interval": "daily", "amount": 1}}}, "body.credits.remaining", 400},
		{e.root, map[string]any{"name": "after", "credits": map[string]any{"remaining": 1, "refill": map[string]any{"interval": "monthly", "amount": 1}}}, "body.credits.refill.refillDay", 400},
		{e.root, map[string]any{"name": "after", "ratelimits": []any{map[string]any{"name": "m", "limit": 1, "duration": 1000}}}, "body.ratelimits[0].autoApply", 400},
		{e.root, map[string]any{"name": "after", "meta": []int{1}, "credits": map[string]any{"remaining": 50}}, "", 400},
		{e.root, map[string]any{"name": "after", "roles": []string{"nope"}, "credits": map[string]any{"remaining": 50}}, "", 404},
		{e.root, map[string]any{"name": "after", "bogus": true}, "body.bogus", 400},
		{e.root, map[string]any{"name": "after", "credits": map[string]any{"remaining": 50, "bogus": true}}, "body.bogus", 400},
	} {
		c.body["keyId"] = id
		er := e.refused(c.key, "keys.updateKey", c.body, c.status)
		if c.location != "" && location(er) != c.location {
			t.Fatalf("%v: location %q, want %q", c.body, location(er), c.location)
		}
		k := e.obj(e.root, "keys.getKey", map[string]any{"keyId": id})
		if k["name"] != "before" || k["credits"].(map[string]any)["remaining"] != float64(5) {
			t.Fatalf("%v changed the key: %v", c.body, k)
		}
	}
	e.refused(e.root, "keys.updateKey", map[string]any{"keyId": "key_nope", "name": "x"}, http.StatusNotFound)
	e.refused(e.root, "keys.getKey", map[string]any{"keyId": id, "decrypt": true}, http.StatusBadRequest)
	// An account admin may rename its account's key.
	e.obj(adm, "keys.updateKey", map[string]any{"keyId": id, "name": "after"})
	if k := e.obj(e.root, "keys.getKey", map[string]any{"keyId": id}); k["name"] != "after" {
		t.Fatalf("admin's update: %v", k)
	}
}

// TestVerifyKeyRefused checks the verification fields keyward cannot
// honour, and that a refused verification spends nothing.
func TestVerifyKeyRefused(t *testing.T) {
	e := newEnv(t)
	api := e.api("acme")
	_, secret := e.createKey(map[string]any{"apiId": api, "credits": map[string]any{"remaining": 5}})
	for _, c := range []struct {
		body     map[string]any
		location string
	}{
		{map[string]any{"tags": []string{"a"}}, "body.tags"},
		{map[string]any{"credits": map[string]any{"cost": 0}}, "body.credits.cost"},
		{map[string]any{"credits": map[string]any{"cost": 2}, "ratelimits": []any{map[string]any{"name": "m", "cost": 1}}}, "body.ratelimits[0].cost"},
		{map[string]any{"ratelimits": []any{map[string]any{"name": "m", "limit": 10, "duration": 1000}}}, "body.ratelimits[0]"},
		{map[string]any{"permissions": "a AND (b"}, "body.permissions"},
		{map[string]any{"permissions": 5}, "body.permissions"},
	} {
		c.body["key"] = secret
		er := e.refused(e.root, "keys.verifyKey", c.body, http.StatusBadRequest)
		if location(er) != c.location {
			t.Fatalf("%v: location %q, want %q", c.body, location(er), c.location)
		}
	}
	if k := e.obj(e.root, "keys.getKey", map[string]any{"keyId": e.obj(e.root, "keys.whoami", map[string]any{"key": secret})["keyId"]}); k["credits"].(map[string]any)["remaining"] != float64(5) {
		t.Fatalf("refused verifications spent credits: %v", k)
	}
	if v := e.verify(map[string]any{"key": secret, "credits": map[string]any{"cost": 2}, "ratelimits": []any{map[string]any{"name": "m", "cost": 2}}}); v["credits"] != float64(3) {
		t.Fatalf("cost 2: %v", v)
	}
	// A migrationId is accepted and changes nothing (docs/unkey.md).
	if v := e.verify(map[string]any{"key": secret, "migrationId": "m1"}); v["code"] != "VALID" || v["credits"] != float64(2) {
		t.Fatalf("with a migrationId: %v", v)
	}
	// A key without keys:verify may not verify; an account admin holding
	// it verifies its own account's keys only.
	other := e.api("other")
	_, foreign := e.createKey(map[string]any{"apiId": other})
	e.refused(e.adminKey(api), "keys.verifyKey", map[string]any{"key": secret}, http.StatusForbidden)
	v := e.adminKey(api, "keys:verify")
	if r := e.obj(v, "keys.verifyKey", map[string]any{"key": secret}); r["code"] != "VALID" {
		t.Fatalf("verifier: %v", r)
	}
	if r := e.obj(v, "keys.verifyKey", map[string]any{"key": foreign}); r["code"] != "NOT_FOUND" || r["keyId"] != nil {
		t.Fatalf("another account's key: %v", r)
	}
	e.refused(v, "keys.whoami", map[string]any{"key": foreign}, http.StatusNotFound)
}

// TestVerifyKeyUnavailable checks that a key whose state cannot be known
// is a 503 in the error shape, never a code.
func TestVerifyKeyUnavailable(t *testing.T) {
	e := newEnv(t)
	e.api("acme") // the caller's key is cached
	// A well-formed key nobody looked up: not in the cache.
	secret, err := apikey.Generate("kw_user")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	a := e.call(e.root, "keys.verifyKey", map[string]any{"key": secret.Reveal()})
	e.checkError(a, "verifyKey", http.StatusServiceUnavailable)
	if a.header.Get("Retry-After") == "" {
		t.Fatal("a 503 without Retry-After")
	}
}

// TestVerifyKeyIdentity checks the answer's name and identity: the user's
// own meta (the key's meta answered merged over it) and its shared rate
// limits; a key without an identity answers none, and a refused key
// neither name nor identity.
func TestVerifyKeyIdentity(t *testing.T) {
	e := newEnv(t)
	api := e.api("acme")
	id, secret := e.createKey(map[string]any{"apiId": api, "name": "ci key", "externalId": "user-1", "meta": map[string]any{"plan": "pro"}})
	u, err := e.svc.Tenancy.UserByExternalID(e.rootC, api, "user-1")
	if err != nil {
		t.Fatal(err)
	}
	meta := json.RawMessage(`{"org":"acme","plan":"free"}`)
	if _, err := e.svc.Tenancy.UpdateUser(e.rootC, api, u.ID, keyward.UserUpdate{Meta: &meta}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Keys.SetMeter(e.rootC, api, u.ID, keyward.MeterSet{RateLimits: []keyward.RateLimit{{Name: "org", Limit: 100, Window: keyward.Duration(time.Minute)}}}); err != nil {
		t.Fatal(err)
	}
	v := e.verify(map[string]any{"key": secret})
	idn, _ := v["identity"].(map[string]any)
	if v["code"] != "VALID" || v["name"] != "ci key" || idn == nil {
		t.Fatalf("verify: %v", v)
	}
	if m := v["meta"].(map[string]any); m["plan"] != "pro" || m["org"] != "acme" {
		t.Fatalf("meta, the key's over the user's: %v", m)
	}
	if m := idn["meta"].(map[string]any); m["plan"] != "free" || m["org"] != "acme" || idn["id"] != u.ID || idn["externalId"] != "user-1" {
		t.Fatalf("identity, with the user's own meta: %v", idn)
	}
	rl, _ := idn["ratelimits"].([]any)
	if len(rl) != 1 {
		t.Fatalf("identity ratelimits: %v", idn)
	}
	if l := rl[0].(map[string]any); l["id"] != "org" || l["name"] != "org" || l["limit"] != float64(100) || l["duration"] != float64(60000) || l["autoApply"] != true {
		t.Fatalf("identity ratelimit: %v", l)
	}
	if k := e.obj(e.root, "keys.getKey", map[string]any{"keyId": id}); len(k["identity"].(map[string]any)["ratelimits"].([]any)) != 1 {
		t.Fatalf("getKey identity: %v", k["identity"])
	}

	// Disabled: the key is found, but answers neither name nor identity.
	e.obj(e.root, "keys.updateKey", map[string]any{"keyId": id, "enabled": false})
	if v := e.verify(map[string]any{"key": secret}); v["code"] != "DISABLED" || v["name"] != nil || v["identity"] != nil {
		t.Fatalf("disabled: %v", v)
	}
	_, alone := e.createKey(map[string]any{"apiId": api, "name": "alone"})
	if v := e.verify(map[string]any{"key": alone}); v["code"] != "VALID" || v["name"] != "alone" || v["identity"] != nil {
		t.Fatalf("a key without an identity: %v", v)
	}
}
