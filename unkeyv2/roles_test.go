package unkeyv2

import (
	"net/http"
	"testing"
)

// TestRoles checks permissions.* on the named roles of the account: a
// role's permissions reach the keys holding it, and the operations on
// permission records are refused, naming the operation.
func TestRoles(t *testing.T) {
	e := newEnv(t)
	api := e.api("acme")
	if d := e.obj(e.root, "permissions.createRole", map[string]any{"name": "reader", "permissions": []string{"docs.read"}}); d["roleId"] != "reader" {
		t.Fatalf("createRole: %v", d)
	}
	e.obj(e.root, "permissions.createRole", map[string]any{"name": "writer"})
	r := e.obj(e.root, "permissions.getRole", map[string]any{"role": "reader"})
	ps, _ := r["permissions"].([]any)
	if r["id"] != "reader" || r["name"] != "reader" || len(ps) != 1 || ps[0].(map[string]any)["slug"] != "docs.read" {
		t.Fatalf("getRole: %v", r)
	}
	a := e.call(e.root, "permissions.listRoles", map[string]any{"limit": 1})
	if list := a.body["data"].([]any); len(list) != 1 || list[0].(map[string]any)["name"] != "reader" || a.body["pagination"].(map[string]any)["hasMore"] != true {
		t.Fatalf("listRoles page 1: %s", a.raw)
	}
	a = e.call(e.root, "permissions.listRoles", map[string]any{"limit": 1, "cursor": a.body["pagination"].(map[string]any)["cursor"]})
	if list := a.body["data"].([]any); len(list) != 1 || list[0].(map[string]any)["name"] != "writer" || a.body["pagination"].(map[string]any)["hasMore"] != false {
		t.Fatalf("listRoles page 2: %s", a.raw)
	}

	_, secret := e.createKey(map[string]any{"apiId": api, "roles": []string{"reader"}})
	if v := e.verify(map[string]any{"key": secret, "permissions": "docs.write"}); v["code"] != "INSUFFICIENT_PERMISSIONS" {
		t.Fatalf("before setRolePermissions: %v", v)
	}
	got, _ := e.ok(e.root, "permissions.setRolePermissions", map[string]any{"roleId": "reader", "permissions": []string{"docs.read", "docs.write"}}).([]any)
	if len(got) != 2 {
		t.Fatalf("setRolePermissions: %v", got)
	}
	if v := e.verify(map[string]any{"key": secret, "permissions": "docs.read AND docs.write"}); v["code"] != "VALID" {
		t.Fatalf("after setRolePermissions: %v", v)
	}

	for _, c := range []struct {
		op       string
		body     map[string]any
		location string
	}{
		{"permissions.createRole", map[string]any{"name": "x", "description": "the x role"}, "body.description"},
		{"permissions.createRole", map[string]any{}, "body.name"},
		{"permissions.listRoles", map[string]any{"search": "r"}, "body.search"},
		{"permissions.setRolePermissions", map[string]any{"roleId": "reader"}, "body.permissions"},
		{"permissions.createPermission", map[string]any{"name": "docs.read", "slug": "docs.read"}, "path"},
		{"permissions.listPermissions", map[string]any{}, "path"},
	} {
		if er := e.refused(e.root, c.op, c.body, http.StatusBadRequest); location(er) != c.location {
			t.Fatalf("%s %v: location %q, want %q", c.op, c.body, location(er), c.location)
		}
	}
	e.refused(e.root, "permissions.getRole", map[string]any{"role": "x"}, http.StatusNotFound)
	// A user key may not manage roles.
	e.refused(secret, "permissions.createRole", map[string]any{"name": "mine"}, http.StatusForbidden)

	e.ok(e.root, "permissions.deleteRole", map[string]any{"role": "reader"})
	e.refused(e.root, "permissions.getRole", map[string]any{"role": "reader"}, http.StatusNotFound)
	if v := e.verify(map[string]any{"key": secret, "permissions": "docs.read"}); v["code"] != "INSUFFICIENT_PERMISSIONS" {
		t.Fatalf("after deleteRole: %v", v)
	}

	// With a second API, a root key names the one it acts in; an account
	// admin key acts in its own.
	other := e.api("other")
	if er := e.refused(e.root, "permissions.getRole", map[string]any{"role": "writer"}, http.StatusBadRequest); location(er) != "header."+APIHeader {
		t.Fatalf("root with two APIs: %v", er)
	}
	if r := e.rootIn(api, "permissions.getRole", map[string]any{"role": "writer"}).(map[string]any); r["name"] != "writer" {
		t.Fatalf("getRole in acme: %v", r)
	}
	e.rootIn(other, "permissions.createRole", map[string]any{"name": "writer", "permissions": []string{"other.write"}})
	if r := e.obj(e.adminKey(other), "permissions.getRole", map[string]any{"role": "writer"}); r["permissions"].([]any)[0].(map[string]any)["slug"] != "other.write" {
		t.Fatalf("other's admin reads its own role: %v", r)
	}
}
