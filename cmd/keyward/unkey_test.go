package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
)

// TestServeUnkeyV2 checks that serve answers the Unkey v2 API under /v2/
// beside /v1, with the client address of a trusted proxy's
// X-Forwarded-For checked against a key's IP allow list (FORBIDDEN).
func TestServeUnkeyV2(t *testing.T) {
	s := startServer(t, map[string]string{"KEYWARD_TRUSTED_PROXIES": "127.0.0.1"})
	post := func(path, xff string, body any) (int, map[string]any) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, s.url+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+s.rootKey)
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		var out map[string]any
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s: %s", path, raw)
		}
		return res.StatusCode, out
	}
	status, out := post("/v2/apis.createApi", "", map[string]any{"name": "acme"})
	if status != http.StatusOK {
		t.Fatalf("createApi: %d %v", status, out)
	}
	api := out["data"].(map[string]any)["apiId"].(string)
	_, out = post("/v2/keys.createKey", "", map[string]any{"apiId": api, "externalId": "u1"})
	key := out["data"].(map[string]any)
	// The allow list is keyward's own (/v1), beside the v2 operations.
	req, _ := http.NewRequest(http.MethodPatch, s.url+"/v1/keys/"+key["keyId"].(string), bytes.NewReader([]byte(`{"ip_allow": ["10.0.0.0/8"]}`)))
	req.Header.Set("Authorization", "Bearer "+s.rootKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("PATCH ip_allow: %d", res.StatusCode)
	}
	for xff, want := range map[string]string{"10.1.2.3": "VALID", "192.0.2.7": "FORBIDDEN", "": "FORBIDDEN"} {
		status, out := post("/v2/keys.verifyKey", xff, map[string]any{"key": key["key"]})
		if got := out["data"].(map[string]any)["code"]; status != http.StatusOK || got != want {
			t.Fatalf("X-Forwarded-For %q: %d %v, want %s", xff, status, out, want)
		}
	}
	if status, _ := post("/v1/keys/verify", "", map[string]any{"key": key["key"], "ip": "10.1.2.3"}); status != http.StatusOK {
		t.Fatalf("/v1 beside /v2: %d", status)
	}
	// Named roles are served through permissions.* (the only API is
	// the root key's).
	if status, out := post("/v2/permissions.createRole", "", map[string]any{"name": "reader", "permissions": []string{"docs.read"}}); status != http.StatusOK {
		t.Fatalf("createRole: %d %v", status, out)
	}
	// /v2 requests are in /metrics beside /v1's, by operation.
	res, err = http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{
		`keyward_http_requests_total{code="200",route="POST /v2/keys.verifyKey"} 3`,
		`keyward_http_requests_total{code="200",route="POST /v2/permissions.createRole"} 1`,
		`keyward_http_requests_total{code="200",route="POST /v1/keys/verify"} 1`,
	} {
		if !bytes.Contains(metrics, []byte(want+"\n")) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
