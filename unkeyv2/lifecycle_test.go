package unkeyv2

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

func TestAPIs(t *testing.T) {
	e := newEnv(t)
	api := e.api("acme")
	if d := e.obj(e.root, "apis.getApi", map[string]any{"apiId": api}); d["id"] != api || d["name"] != "acme" {
		t.Fatalf("getApi: %v", d)
	}
	// An account admin reads its own API only.
	other := e.api("other")
	adm := e.adminKey(api)
	e.obj(adm, "apis.getApi", map[string]any{"apiId": api})
	e.refused(adm, "apis.getApi", map[string]any{"apiId": other}, http.StatusNotFound)
	e.refused(adm, "apis.deleteApi", map[string]any{"apiId": api}, http.StatusForbidden)
	e.obj(e.root, "apis.getApi", map[string]any{"apiId": api}) // still there

	_, secret := e.createKey(map[string]any{"apiId": other})
	if d := e.obj(e.root, "apis.deleteApi", map[string]any{"apiId": other}); len(d) != 0 {
		t.Fatalf("deleteApi data %v", d)
	}
	e.refused(e.root, "apis.getApi", map[string]any{"apiId": other}, http.StatusNotFound)
	if v := e.verify(map[string]any{"key": secret}); v["code"] != "NOT_FOUND" || v["valid"] != false {
		t.Fatalf("a key of a deleted API: %v", v)
	}
}

func TestListKeys(t *testing.T) {
	e := newEnv(t)
	api := e.api("acme")
	var ids []string
	for i := range 3 {
		id, _ := e.createKey(map[string]any{"apiId": api, "externalId": []string{"u1", "u1", "u2"}[i]})
		ids = append(ids, id)
	}
	e.adminKey(api, "keys:verify") // an admin key is not one of the API's
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		body := map[string]any{"apiId": api, "limit": 2}
		if cursor != "" {
			body["cursor"] = cursor
		}
		a := e.call(e.root, "apis.listKeys", body)
		if a.status != http.StatusOK {
			t.Fatalf("listKeys: %s", a.raw)
		}
		for _, k := range a.body["data"].([]any) {
			got = append(got, k.(map[string]any)["keyId"].(string))
		}
		p := a.body["pagination"].(map[string]any)
		if p["hasMore"] != true {
			if _, ok := p["cursor"]; ok {
				t.Fatalf("a last page with a cursor: %v", p)
			}
			break
		}
		cursor = p["cursor"].(string)
		if pages > 3 {
			t.Fatal("pagination does not end")
		}
	}
	u2 := ids[2]
	// Ids order keys made within one millisecond by their random part.
	slices.Sort(got)
	slices.Sort(ids)
	if !slices.Equal(got, ids) {
		t.Fatalf("listed %v, want %v", got, ids)
	}
	one := e.ok(e.root, "apis.listKeys", map[string]any{"apiId": api, "externalId": "u2"}).([]any)
	if len(one) != 1 || one[0].(map[string]any)["keyId"] != u2 || one[0].(map[string]any)["identity"].(map[string]any)["externalId"] != "u2" {
		t.Fatalf("by externalId: %v", one)
	}
	if none := e.ok(e.root, "apis.listKeys", map[string]any{"apiId": api, "externalId": "nobody"}).([]any); len(none) != 0 {
		t.Fatalf("an unknown externalId lists %v", none)
	}
	e.refused(e.root, "apis.listKeys", map[string]any{"apiId": "acc_nope", "externalId": "nobody"}, http.StatusNotFound)
	e.ok(e.root, "apis.listKeys", map[string]any{"apiId": api, "revalidateKeysCache": true})
	for _, bad := range []map[string]any{{"limit": 0}, {"limit": 101}, {"decrypt": true}} {
		bad["apiId"] = api
		e.refused(e.root, "apis.listKeys", bad, http.StatusBadRequest)
	}
}

func TestKeyLifecycle(t *testing.T) {
	e := newEnv(t)
	api := e.api("acme")
	if _, err := e.svc.Roles.CreateRole(e.rootC, api, keyward.RoleCreate{Name: "reader", Permissions: []string{"docs.read"}}); err != nil {
		t.Fatal(err)
	}
	expires := e.clock.now().Add(time.Hour).UnixMilli()
	id, secret := e.createKey(map[string]any{
		"apiId": api, "name": "ci", "externalId": "user-1", "byteLength": 16, "meta": map[string]any{"plan": "pro"},
		"roles": []string{"reader"}, "permissions": []string{"docs.write"}, "expires": expires,
		"credits":    map[string]any{"remaining": 3, "refill": map[string]any{"interval": "daily", "amount": 3}},
		"ratelimits": []any{map[string]any{"name": "per-minute", "limit": 2, "duration": 60000, "autoApply": true}},
		"enabled":    true, "recoverable": false,
	})
	if !strings.HasPrefix(id, "key_") || !strings.HasPrefix(secret, "kw_user_") {
		t.Fatalf("created %s %s", id, secret[:8])
	}

	k := e.obj(e.root, "keys.getKey", map[string]any{"keyId": id})
	if k["keyId"] != id || k["name"] != "ci" || k["enabled"] != true || k["expires"] != float64(expires) || k["start"] != secret[:len("kw_user_")+4] {
		t.Fatalf("getKey: %v", k)
	}
	if k["meta"].(map[string]any)["plan"] != "pro" || !slices.Equal(strs(k["roles"]), []string{"reader"}) || !slices.Equal(strs(k["permissions"]), []string{"docs.write"}) {
		t.Fatalf("getKey: %v", k)
	}
	if c := k["credits"].(map[string]any); c["remaining"] != float64(3) || c["refill"].(map[string]any)["interval"] != "daily" {
		t.Fatalf("getKey credits: %v", c)
	}
	if rl := k["ratelimits"].([]any)[0].(map[string]any); rl["name"] != "per-minute" || rl["duration"] != float64(60000) || rl["autoApply"] != true {
		t.Fatalf("getKey ratelimits: %v", rl)
	}
	if idn := k["identity"].(map[string]any); idn["externalId"] != "user-1" || !strings.HasPrefix(idn["id"].(string), "usr_") {
		t.Fatalf("getKey identity: %v", idn)
	}
	if w := e.obj(e.root, "keys.whoami", map[string]any{"key": secret}); w["keyId"] != id || w["name"] != "ci" {
		t.Fatalf("whoami: %v", w)
	}
	if k2 := e.obj(e.root, "keys.getKey", map[string]any{"keyId": id}); k2["credits"].(map[string]any)["remaining"] != float64(3) {
		t.Fatal("whoami spent credits")
	}

	v := e.verify(map[string]any{"key": secret, "permissions": "docs.read AND docs.write"})
	if v["valid"] != true || v["code"] != "VALID" || v["keyId"] != id || v["credits"] != float64(2) || v["enabled"] != true || v["expires"] != float64(expires) {
		t.Fatalf("verify: %v", v)
	}
	if !slices.Contains(strs(v["permissions"]), "docs.read") || !slices.Equal(strs(v["roles"]), []string{"reader"}) || v["identity"].(map[string]any)["externalId"] != "user-1" {
		t.Fatalf("verify: %v", v)
	}
	rl := v["ratelimits"].([]any)[0].(map[string]any)
	if rl["exceeded"] != false || rl["remaining"] != float64(1) || rl["limit"] != float64(2) || rl["reset"].(float64) <= float64(time.Now().Add(-time.Minute).UnixMilli()) {
		t.Fatalf("verify ratelimits: %v", rl)
	}
	if v := e.verify(map[string]any{"key": secret, "permissions": "docs.read AND admin"}); v["code"] != "INSUFFICIENT_PERMISSIONS" || v["valid"] != false || v["keyId"] != id {
		t.Fatalf("verify without a permission: %v", v)
	}
	if v := e.verify(map[string]any{"key": secret}); v["code"] != "VALID" {
		t.Fatalf("second verify: %v", v)
	}
	if v := e.verify(map[string]any{"key": secret}); v["code"] != "RATE_LIMITED" || v["ratelimits"].([]any)[0].(map[string]any)["exceeded"] != true {
		t.Fatalf("third verify in a minute: %v", v)
	}
	e.clock.advance(2 * time.Minute)
	if v := e.verify(map[string]any{"key": secret}); v["code"] != "VALID" || v["credits"] != float64(0) {
		t.Fatalf("after the minute: %v", v)
	}
	if v := e.verify(map[string]any{"key": secret}); v["code"] != "USAGE_EXCEEDED" {
		t.Fatalf("credits spent: %v", v)
	}

	// updateKey: credits, name, meta, permissions, enabled.
	e.obj(e.root, "keys.updateKey", map[string]any{"keyId": id, "name": "ci-2", "meta": nil, "permissions": []string{"docs.read"}, "credits": map[string]any{"remaining": 10}, "ratelimits": []any{}, "externalId": "user-1"})
	k = e.obj(e.root, "keys.getKey", map[string]any{"keyId": id})
	if k["name"] != "ci-2" || k["meta"] != nil || !slices.Equal(strs(k["permissions"]), []string{"docs.read"}) || k["credits"].(map[string]any)["remaining"] != float64(10) || k["ratelimits"] != nil {
		t.Fatalf("after updateKey: %v", k)
	}
	if _, ok := k["credits"].(map[string]any)["refill"]; ok {
		t.Fatalf("credits replaced without a refill keep one: %v", k)
	}
	e.obj(e.root, "keys.updateKey", map[string]any{"keyId": id, "enabled": false})
	if v := e.verify(map[string]any{"key": secret}); v["code"] != "DISABLED" || v["enabled"] != false || v["keyId"] != id {
		t.Fatalf("disabled: %v", v)
	}
	e.obj(e.root, "keys.updateKey", map[string]any{"keyId": id, "enabled": true, "expires": nil})
	if k := e.obj(e.root, "keys.getKey", map[string]any{"keyId": id}); k["expires"] != nil || k["enabled"] != true {
		t.Fatalf("expiry not cleared: %v", k)
	}
	e.obj(e.root, "keys.updateKey", map[string]any{"keyId": id, "expires": e.clock.now().Add(time.Minute).UnixMilli(), "credits": nil})
	e.clock.advance(2 * time.Minute)
	if v := e.verify(map[string]any{"key": secret}); v["code"] != "EXPIRED" || v["valid"] != false {
		t.Fatalf("expired: %v", v)
	}

	if d := e.obj(e.root, "keys.deleteKey", map[string]any{"keyId": id, "permanent": false}); len(d) != 0 {
		t.Fatalf("deleteKey data %v", d)
	}
	if v := e.verify(map[string]any{"key": secret}); v["code"] != "NOT_FOUND" || v["keyId"] != nil {
		t.Fatalf("deleted: %v", v)
	}
	e.refused(e.root, "keys.getKey", map[string]any{"keyId": id}, http.StatusNotFound)
	e.refused(e.root, "keys.whoami", map[string]any{"key": secret}, http.StatusNotFound)
	if v := e.verify(map[string]any{"key": "not a key"}); v["code"] != "NOT_FOUND" {
		t.Fatalf("malformed: %v", v)
	}
}

func strs(v any) []string {
	list, _ := v.([]any)
	out := make([]string, len(list))
	for i, s := range list {
		out[i], _ = s.(string)
	}
	return out
}
