package unkeyv2

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestIdentities checks identities.* on the users of the account: an
// identity's meta and shared limits reach its keys' verifications, a page
// lists users with an external id only, and deleting an identity leaves
// its keys working without one.
func TestIdentities(t *testing.T) {
	e := newEnv(t)
	api := e.api("acme")
	limit := map[string]any{"name": "org", "limit": 10, "duration": 60000, "autoApply": true}
	d := e.obj(e.root, "identities.createIdentity", map[string]any{"externalId": "u1", "meta": map[string]any{"org": "acme"}, "ratelimits": []any{limit}})
	uid, _ := d["identityId"].(string)
	if !strings.HasPrefix(uid, "usr_") {
		t.Fatalf("createIdentity: %v", d)
	}
	for _, ref := range []string{"u1", uid} {
		got := e.obj(e.root, "identities.getIdentity", map[string]any{"identity": ref})
		rl, _ := got["ratelimits"].([]any)
		if got["id"] != uid || got["externalId"] != "u1" || got["meta"].(map[string]any)["org"] != "acme" || len(rl) != 1 || rl[0].(map[string]any)["limit"] != float64(10) {
			t.Fatalf("getIdentity(%s): %v", ref, got)
		}
	}
	e.refused(e.root, "identities.createIdentity", map[string]any{"externalId": "u1"}, http.StatusConflict)

	// A key made for the identity is its user's, and verifies with it.
	_, secret := e.createKey(map[string]any{"apiId": api, "externalId": "u1"})
	v := e.verify(map[string]any{"key": secret})
	if idn := v["identity"].(map[string]any); idn["id"] != uid || idn["meta"].(map[string]any)["org"] != "acme" || len(idn["ratelimits"].([]any)) != 1 {
		t.Fatalf("verify identity: %v", idn)
	}

	// Update: meta replaced, limits removed.
	got := e.obj(e.root, "identities.updateIdentity", map[string]any{"identity": "u1", "meta": map[string]any{"org": "beta"}, "ratelimits": []any{}})
	if got["meta"].(map[string]any)["org"] != "beta" || got["ratelimits"] != nil {
		t.Fatalf("updateIdentity: %v", got)
	}
	if idn := e.verify(map[string]any{"key": secret})["identity"].(map[string]any); idn["meta"].(map[string]any)["org"] != "beta" || idn["ratelimits"] != nil {
		t.Fatalf("verify after the update: %v", idn)
	}
	// Meta null removes it; an update without meta keeps it.
	e.obj(e.root, "identities.updateIdentity", map[string]any{"identity": "u1", "meta": map[string]any{"org": "gamma"}})
	if got := e.obj(e.root, "identities.updateIdentity", map[string]any{"identity": "u1"}); got["meta"].(map[string]any)["org"] != "gamma" {
		t.Fatalf("an update without meta changed it: %v", got)
	}
	if got := e.obj(e.root, "identities.updateIdentity", map[string]any{"identity": "u1", "meta": nil}); got["meta"] != nil {
		t.Fatalf("meta null: %v", got)
	}
	e.obj(e.root, "identities.updateIdentity", map[string]any{"identity": "u1", "meta": map[string]any{"org": "beta"}})

	// Pages list identities only: a key without externalId has a user of
	// its own, which is no identity.
	e.obj(e.root, "identities.createIdentity", map[string]any{"externalId": "u2"})
	e.createKey(map[string]any{"apiId": api})
	var seen []string
	cursor := ""
	for range 5 {
		a := e.call(e.root, "identities.listIdentities", map[string]any{"limit": 1, "cursor": cursor})
		if a.status != http.StatusOK {
			t.Fatalf("listIdentities: %s", a.raw)
		}
		for _, it := range a.body["data"].([]any) {
			seen = append(seen, it.(map[string]any)["externalId"].(string))
		}
		p := a.body["pagination"].(map[string]any)
		if p["hasMore"] != true {
			break
		}
		cursor = p["cursor"].(string)
	}
	if strings.Join(seen, ",") != "u1,u2" && strings.Join(seen, ",") != "u2,u1" {
		t.Fatalf("listed identities %v, want u1 and u2", seen)
	}

	for _, c := range []struct {
		op       string
		body     map[string]any
		location string
	}{
		{"identities.createIdentity", map[string]any{}, "body.externalId"},
		{"identities.createIdentity", map[string]any{"externalId": "u3", "ratelimits": []any{map[string]any{"name": "org", "limit": 10, "duration": 60000}}}, "body.ratelimits[0].autoApply"},
		{"identities.getIdentity", map[string]any{}, "body.identity"},
		{"identities.listIdentities", map[string]any{"search": "u"}, "body.search"},
		{"identities.listIdentities", map[string]any{"limit": 101}, "body.limit"},
	} {
		if er := e.refused(e.root, c.op, c.body, http.StatusBadRequest); location(er) != c.location {
			t.Fatalf("%s %v: location %q, want %q", c.op, c.body, location(er), c.location)
		}
	}
	e.refused(e.root, "identities.getIdentity", map[string]any{"identity": "u3"}, http.StatusNotFound)

	// Delete: the identity is gone, its key verifies without one, and the
	// external id can name a new identity.
	e.ok(e.root, "identities.deleteIdentity", map[string]any{"identity": "u1"})
	e.refused(e.root, "identities.getIdentity", map[string]any{"identity": "u1"}, http.StatusNotFound)
	e.refused(e.root, "identities.getIdentity", map[string]any{"identity": uid}, http.StatusNotFound)
	if v := e.verify(map[string]any{"key": secret}); v["code"] != "VALID" || v["identity"] != nil || v["meta"] != nil {
		t.Fatalf("verify after deleteIdentity: %v", v)
	}
	if d := e.obj(e.root, "identities.createIdentity", map[string]any{"externalId": "u1"}); d["identityId"] == uid {
		t.Fatalf("a new identity u1 is the deleted one: %v", d)
	}
}

// TestIdentitiesWorkspace checks which account identities.* act in: an
// account admin key's own; a root key's only when the deployment has one
// account, refused naming the problem otherwise. Shared limits take a root
// key, refused before anything is created.
func TestIdentitiesWorkspace(t *testing.T) {
	e := newEnv(t)
	er := e.refused(e.root, "identities.createIdentity", map[string]any{"externalId": "u1"}, http.StatusBadRequest)
	if location(er) != "header.X-Keyward-Api-Id" {
		t.Fatalf("no API yet: %v", er)
	}
	acme := e.api("acme")
	other := e.api("other")
	er = e.refused(e.root, "identities.listIdentities", map[string]any{}, http.StatusBadRequest)
	if location(er) != "header.X-Keyward-Api-Id" || !strings.Contains(er["detail"].(string), "X-Keyward-Api-Id header") {
		t.Fatalf("root with two APIs: %v", er)
	}
	admin := e.adminKey(acme)
	limit := map[string]any{"name": "org", "limit": 10, "duration": 60000, "autoApply": true}
	e.refused(admin, "identities.createIdentity", map[string]any{"externalId": "u1", "ratelimits": []any{limit}}, http.StatusForbidden)
	e.refused(admin, "identities.getIdentity", map[string]any{"identity": "u1"}, http.StatusNotFound)
	uid := e.obj(admin, "identities.createIdentity", map[string]any{"externalId": "u1"})["identityId"]
	if u, err := e.svc.Tenancy.UserByExternalID(e.rootC, acme, "u1"); err != nil || u.ID != uid {
		t.Fatalf("the identity is not acme's user u1: %v, %v", u, err)
	}
	e.refused(e.adminKey(other), "identities.getIdentity", map[string]any{"identity": "u1"}, http.StatusNotFound)
	// Naming another API does not reach into it.
	req, _ := http.NewRequest(http.MethodPost, e.url+"/v2/identities.getIdentity", strings.NewReader(`{"identity":"u1"}`))
	req.Header.Set("Authorization", "Bearer "+e.adminKey(other))
	req.Header.Set(APIHeader, acme)
	if a := e.do(req); a.status != http.StatusNotFound {
		t.Fatalf("another API's admin naming acme: %d %s", a.status, a.raw)
	}
	e.refused(admin, "identities.updateIdentity", map[string]any{"identity": "u1", "ratelimits": []any{limit}}, http.StatusForbidden)
	// Meta is root's to set, as on /v1 (services that verify keys trust
	// it), so is deleting an identity that has some.
	e.refused(admin, "identities.updateIdentity", map[string]any{"identity": "u1", "meta": map[string]any{"a": 1}}, http.StatusForbidden)
	e.rootIn(acme, "identities.createIdentity", map[string]any{"externalId": "u2", "meta": map[string]any{"a": 1}})
	e.refused(admin, "identities.deleteIdentity", map[string]any{"identity": "u2"}, http.StatusForbidden)
	if got := e.obj(admin, "identities.getIdentity", map[string]any{"identity": "u2"}); got["meta"] == nil {
		t.Fatalf("a refused deletion changed the identity: %v", got)
	}
	e.ok(admin, "identities.deleteIdentity", map[string]any{"identity": "u1"})
	e.refused(admin, "identities.getIdentity", map[string]any{"identity": "u1"}, http.StatusNotFound)
}

// rootIn calls an operation with the root key in the API (account) apiId,
// named by the APIHeader, and returns its data.
func (e *env) rootIn(apiID, operation string, body any) any {
	e.t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		e.t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, e.url+"/v2/"+operation, bytes.NewReader(b))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.root)
	req.Header.Set(APIHeader, apiID)
	a := e.do(req)
	if a.status != http.StatusOK {
		e.t.Fatalf("%s in %s: status %d: %s", operation, apiID, a.status, a.raw)
	}
	return a.body["data"]
}
