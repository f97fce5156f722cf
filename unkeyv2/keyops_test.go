package unkeyv2

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

func TestRerollKey(t *testing.T) {
	e := newEnv(t)
	api := e.api("acme")
	id, old := e.createKey(map[string]any{"apiId": api, "externalId": "u1", "permissions": []string{"docs.read"}})
	e.refused(e.root, "keys.rerollKey", map[string]any{"keyId": id}, http.StatusBadRequest)
	e.refused(e.root, "keys.rerollKey", map[string]any{"keyId": id, "expiration": -1}, http.StatusBadRequest)
	if v := e.verify(map[string]any{"key": old}); v["code"] != "VALID" {
		t.Fatalf("a refused reroll stopped the key: %v", v)
	}
	d := e.obj(e.root, "keys.rerollKey", map[string]any{"keyId": id, "expiration": 60000})
	newID, fresh := d["keyId"].(string), d["key"].(string)
	if newID == id || fresh == old {
		t.Fatalf("reroll answered the old key: %v", d)
	}
	v := e.verify(map[string]any{"key": fresh, "permissions": "docs.read"})
	if v["code"] != "VALID" || v["identity"].(map[string]any)["externalId"] != "u1" {
		t.Fatalf("the new key: %v", v)
	}
	if v := e.verify(map[string]any{"key": old}); v["code"] != "VALID" {
		t.Fatalf("the old key within its expiration: %v", v)
	}
	e.clock.advance(2 * time.Minute)
	if v := e.verify(map[string]any{"key": old}); v["code"] != "NOT_FOUND" {
		t.Fatalf("the old key after its expiration: %v", v)
	}
	e.refused(e.root, "keys.rerollKey", map[string]any{"keyId": id, "expiration": 0}, http.StatusConflict)
	d = e.obj(e.root, "keys.rerollKey", map[string]any{"keyId": newID, "expiration": 0})
	if v := e.verify(map[string]any{"key": fresh}); v["code"] != "NOT_FOUND" {
		t.Fatalf("rerolled with expiration 0: %v", v)
	}
	if v := e.verify(map[string]any{"key": d["key"].(string)}); v["code"] != "VALID" {
		t.Fatalf("second replacement: %v", v)
	}
}

func TestUpdateCredits(t *testing.T) {
	e := newEnv(t)
	api := e.api("acme")
	id, secret := e.createKey(map[string]any{"apiId": api, "credits": map[string]any{"remaining": 5, "refill": map[string]any{"interval": "daily", "amount": 5}}})
	remaining := func() any {
		return e.obj(e.root, "keys.getKey", map[string]any{"keyId": id})["credits"].(map[string]any)["remaining"]
	}
	d := e.obj(e.root, "keys.updateCredits", map[string]any{"keyId": id, "operation": "set", "value": 10})
	if d["remaining"] != float64(10) || d["refill"].(map[string]any)["amount"] != float64(5) {
		t.Fatalf("set: %v", d)
	}
	if d := e.obj(e.root, "keys.updateCredits", map[string]any{"keyId": id, "operation": "increment", "value": 5}); d["remaining"] != float64(15) {
		t.Fatalf("increment: %v", d)
	}
	if d := e.obj(e.root, "keys.updateCredits", map[string]any{"keyId": id, "operation": "decrement", "value": 4}); d["remaining"] != float64(11) || d["refill"] == nil {
		t.Fatalf("decrement: %v", d)
	}
	// Below zero leaves zero, as Unkey does, and the key is then spent.
	if d := e.obj(e.root, "keys.updateCredits", map[string]any{"keyId": id, "operation": "decrement", "value": 100}); d["remaining"] != float64(0) {
		t.Fatalf("decrement below zero: %v", d)
	}
	if v := e.verify(map[string]any{"key": secret}); v["code"] != "USAGE_EXCEEDED" {
		t.Fatalf("verify with no credits left: %v", v)
	}
	list, err := e.svc.Audit.AuditEntries(e.rootC, keyward.AuditFilter{}, keyward.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var decrements []string
	for _, en := range list.Items {
		if en.Action == "key.credits_decrement" && en.TargetID == id {
			decrements = append(decrements, string(en.Details))
		}
	}
	if len(decrements) != 2 || !strings.Contains(strings.Join(decrements, " "), `"amount":100`) {
		t.Fatalf("decrements audited: %v", decrements)
	}
	e.obj(e.root, "keys.updateCredits", map[string]any{"keyId": id, "operation": "set", "value": 15})
	for _, c := range []struct {
		key      string
		body     map[string]any
		status   int
		location string
	}{
		{e.root, map[string]any{"operation": "decrement"}, 400, "body.value"},
		{e.root, map[string]any{"operation": "decrement", "value": 0}, 400, ""},
		{e.adminKey(api), map[string]any{"operation": "decrement", "value": 1}, 403, ""},
		{e.root, map[string]any{"operation": "set"}, 400, "body.value"},
		{e.root, map[string]any{"operation": "increment", "value": nil}, 400, "body.value"},
		{e.root, map[string]any{"operation": "increment", "value": 0}, 400, ""},
		{e.root, map[string]any{"operation": "set", "value": -1}, 400, "body.value"},
		{e.root, map[string]any{"operation": "double", "value": 1}, 400, "body.operation"},
		{e.root, map[string]any{"value": 1}, 400, "body.operation"},
		{e.adminKey(api), map[string]any{"operation": "set", "value": 1000}, 403, ""},
		{e.adminKey(api), map[string]any{"operation": "increment", "value": 1000}, 403, ""},
	} {
		c.body["keyId"] = id
		er := e.refused(c.key, "keys.updateCredits", c.body, c.status)
		if c.location != "" && location(er) != c.location {
			t.Fatalf("%v: location %q", c.body, location(er))
		}
		if r := remaining(); r != float64(15) {
			t.Fatalf("%v changed the credits to %v", c.body, r)
		}
	}
	if v := e.verify(map[string]any{"key": secret}); v["credits"] != float64(14) {
		t.Fatalf("verify after the updates: %v", v)
	}
	if d := e.obj(e.root, "keys.updateCredits", map[string]any{"keyId": id, "operation": "set", "value": nil}); d["remaining"] != nil {
		t.Fatalf("set null: %v", d)
	}
	if k := e.obj(e.root, "keys.getKey", map[string]any{"keyId": id}); k["credits"] != nil {
		t.Fatalf("credits removed: %v", k)
	}
	if v := e.verify(map[string]any{"key": secret}); v["code"] != "VALID" || v["credits"] != nil {
		t.Fatalf("verify without credits: %v", v)
	}
	e.refused(e.root, "keys.updateCredits", map[string]any{"keyId": id, "operation": "increment", "value": 1}, http.StatusBadRequest)
	e.refused(e.root, "keys.updateCredits", map[string]any{"keyId": "key_nope", "operation": "set", "value": 1}, http.StatusNotFound)
}

func TestPermissionsAndRoles(t *testing.T) {
	e := newEnv(t)
	api := e.api("acme")
	for _, r := range []string{"reader", "writer"} {
		if _, err := e.svc.Roles.CreateRole(e.rootC, api, keyward.RoleCreate{Name: r, Permissions: []string{"docs." + r}}); err != nil {
			t.Fatal(err)
		}
	}
	id, secret := e.createKey(map[string]any{"apiId": api, "permissions": []string{"a.read"}})
	names := func(d any) []string {
		var out []string
		for _, p := range d.([]any) {
			m := p.(map[string]any)
			if m["id"] != m["name"] {
				t.Fatalf("id and name differ: %v", m)
			}
			out = append(out, m["name"].(string))
		}
		return out
	}
	if got := names(e.ok(e.root, "keys.addPermissions", map[string]any{"keyId": id, "permissions": []string{"b.read", "a.read"}})); !slices.Equal(got, []string{"a.read", "b.read"}) {
		t.Fatalf("add: %v", got)
	}
	if got := names(e.ok(e.root, "keys.removePermissions", map[string]any{"keyId": id, "permissions": []string{"a.read", "zzz"}})); !slices.Equal(got, []string{"b.read"}) {
		t.Fatalf("remove: %v", got)
	}
	if got := names(e.ok(e.root, "keys.setPermissions", map[string]any{"keyId": id, "permissions": []string{"c.read"}})); !slices.Equal(got, []string{"c.read"}) {
		t.Fatalf("set: %v", got)
	}
	if v := e.verify(map[string]any{"key": secret, "permissions": "c.read"}); v["code"] != "VALID" {
		t.Fatalf("verify c.read: %v", v)
	}
	if v := e.verify(map[string]any{"key": secret, "permissions": "b.read"}); v["code"] != "INSUFFICIENT_PERMISSIONS" {
		t.Fatalf("verify b.read: %v", v)
	}
	// An admin may not grant what it does not hold; nothing changes.
	e.refused(e.adminKey(api, "c.read"), "keys.addPermissions", map[string]any{"keyId": id, "permissions": []string{"d.write"}}, http.StatusForbidden)
	e.refused(e.root, "keys.setPermissions", map[string]any{"keyId": id}, http.StatusBadRequest)
	if er := e.refused(e.root, "keys.addPermissions", map[string]any{"keyId": id, "permissions": []string{}, "roles": []string{"reader"}}, http.StatusBadRequest); location(er) != "body.roles" {
		t.Fatalf("roles given to addPermissions: %v", er)
	}
	if er := e.refused(e.root, "keys.setRoles", map[string]any{"keyId": id, "roles": []string{}, "permissions": []string{}}, http.StatusBadRequest); location(er) != "body.permissions" {
		t.Fatalf("permissions given to setRoles: %v", er)
	}

	if got := names(e.ok(e.root, "keys.addRoles", map[string]any{"keyId": id, "roles": []string{"reader", "writer"}})); !slices.Equal(got, []string{"reader", "writer"}) {
		t.Fatalf("add roles: %v", got)
	}
	e.refused(e.root, "keys.addRoles", map[string]any{"keyId": id, "roles": []string{"nope"}}, http.StatusNotFound)
	if got := names(e.ok(e.root, "keys.removeRoles", map[string]any{"keyId": id, "roles": []string{"writer"}})); !slices.Equal(got, []string{"reader"}) {
		t.Fatalf("remove roles: %v", got)
	}
	if v := e.verify(map[string]any{"key": secret, "permissions": "docs.reader AND c.read"}); v["code"] != "VALID" {
		t.Fatalf("verify a role's permission: %v", v)
	}
	if got := e.ok(e.root, "keys.setRoles", map[string]any{"keyId": id, "roles": []string{}}).([]any); len(got) != 0 {
		t.Fatalf("set roles []: %v", got)
	}
	if v := e.verify(map[string]any{"key": secret, "permissions": "docs.reader"}); v["code"] != "INSUFFICIENT_PERMISSIONS" {
		t.Fatalf("a removed role's permission: %v", v)
	}
	e.refused(e.root, "keys.addRoles", map[string]any{"keyId": "key_nope", "roles": []string{"reader"}}, http.StatusNotFound)
}

// hashOf is a key's digest as the peer stores it: base64 SHA-256.
func hashOf(raw string) string {
	d := sha256.Sum256([]byte(raw))
	return base64.StdEncoding.EncodeToString(d[:])
}

func TestMigrateKeys(t *testing.T) {
	e := newEnv(t)
	api := e.api("acme")
	raw := []string{"uk_3ZKXg8vFcLm2Qw9Tn5pR", "uk_7YtPq1sDxNb4Jh6Wk8mZ"}
	users := func() int {
		list, err := e.svc.Tenancy.Users(e.rootC, api, keyward.Page{})
		if err != nil {
			t.Fatal(err)
		}
		return len(list.Items)
	}
	entry := func(i int, extra map[string]any) map[string]any {
		m := map[string]any{"hash": hashOf(raw[i]), "name": "k", "externalId": "ext-1"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	for _, c := range []struct {
		key      string
		keys     []any
		status   int
		location string
	}{
		{e.root, []any{entry(0, map[string]any{"hash": "not base64!"})}, 400, "body.keys[0].hash"},
		{e.root, []any{entry(0, map[string]any{"hash": base64.StdEncoding.EncodeToString([]byte("short"))})}, 400, "body.keys[0].hash"},
		{e.root, []any{entry(0, map[string]any{"roles": []string{"r"}})}, 400, "body.keys[0].roles"},
		{e.root, []any{entry(0, map[string]any{"credits": map[string]any{"remaining": 1}})}, 400, "body.keys[0].credits"},
		{e.root, []any{entry(0, map[string]any{"enabled": false})}, 400, "body.keys[0].enabled"},
		{e.root, []any{entry(0, nil), entry(0, nil)}, 409, ""},
		{e.root, []any{entry(0, map[string]any{"meta": []int{1}})}, 400, ""},
		{e.adminKey(api), []any{entry(0, nil)}, 403, ""},
		{e.root, []any{}, 400, "body.keys"},
	} {
		er := e.refused(c.key, "keys.migrateKeys", map[string]any{"migrationId": "m1", "apiId": api, "keys": c.keys}, c.status)
		if c.location != "" && location(er) != c.location {
			t.Fatalf("%v: location %q (%v)", c.keys, location(er), er)
		}
		if n := users(); n != 0 {
			t.Fatalf("%v: a refused migration left %d users", c.keys, n)
		}
	}
	e.refused(e.root, "keys.migrateKeys", map[string]any{"apiId": api, "keys": []any{entry(0, nil)}}, http.StatusBadRequest)
	if v := e.verify(map[string]any{"key": raw[0]}); v["code"] != "NOT_FOUND" {
		t.Fatalf("before the migration: %v", v)
	}

	d := e.obj(e.root, "keys.migrateKeys", map[string]any{"migrationId": "m1", "apiId": api, "keys": []any{
		entry(0, map[string]any{"permissions": []string{"docs.read"}, "meta": map[string]any{"plan": "pro"}}),
		entry(1, map[string]any{"externalId": nil}),
	}})
	migrated := d["migrated"].([]any)
	if len(migrated) != 2 || len(d["failed"].([]any)) != 0 {
		t.Fatalf("migrate: %v", d)
	}
	first := migrated[0].(map[string]any)
	if first["hash"] != hashOf(raw[0]) {
		t.Fatalf("migrated: %v", first)
	}
	v := e.verify(map[string]any{"key": raw[0], "permissions": "docs.read"})
	if v["code"] != "VALID" || v["keyId"] != first["keyId"] || v["identity"].(map[string]any)["externalId"] != "ext-1" || v["meta"].(map[string]any)["plan"] != "pro" {
		t.Fatalf("a migrated key: %v", v)
	}
	if v := e.verify(map[string]any{"key": raw[1]}); v["code"] != "VALID" || v["identity"] != nil {
		t.Fatalf("a migrated key without externalId: %v", v)
	}
	// The identity existed: a second migration to it makes no user.
	raw2 := "uk_9AbCdEfGhIjKlMnOpQrS"
	e.obj(e.root, "keys.migrateKeys", map[string]any{"migrationId": "m2", "apiId": api, "keys": []any{map[string]any{"hash": hashOf(raw2), "externalId": "ext-1"}}})
	if n := users(); n != 2 {
		t.Fatalf("users after the migrations: %d, want 2 (ext-1 and the key without one)", n)
	}
}
