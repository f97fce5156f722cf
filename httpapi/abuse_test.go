package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/keyward/keyward"
)

// The admin API's own authentication meters nothing: a key with credits
// calls it freely, and its credits stay for the service it pays for.
func TestAPIAuthenticationSpendsNoCredits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.mustAccount("acme")
	u := e.mustUser(a.ID, "alice")
	k := e.mustKey(keyward.KeyCreate{AccountID: a.ID, UserID: u.ID, Credits: &keyward.Credits{Remaining: 1},
		RateLimits: []keyward.RateLimit{{Name: "m", Limit: 1, Window: keyward.Duration(3600e9)}}})
	for range 3 {
		if r := e.do("GET", "/v1/whoami", keyward.Secret(k.Secret), ""); r.status != http.StatusOK {
			t.Fatalf("whoami with a metered key: %d %s", r.status, r.body)
		}
	}
	r := e.do("POST", "/v1/keys/verify", e.root, `{"key":"`+k.Secret+`"}`)
	var res keyward.VerifyResult
	if err := json.Unmarshal(r.body, &res); err != nil {
		t.Fatal(err)
	}
	if res.Code != keyward.DecisionValid || res.CreditsRemaining == nil || *res.CreditsRemaining != 0 {
		t.Fatalf("verify after three API calls: %s, want VALID spending the one credit", r.body)
	}
	r = e.do("GET", "/v1/keys/"+k.ID+"/credits", e.root, "")
	if r.status != http.StatusOK {
		t.Fatalf("GET credits: %d %s", r.status, r.body)
	}
	var c keyward.Credits
	if err := json.Unmarshal(r.body, &c); err != nil || c.Remaining != 0 {
		t.Fatalf("credits = %s, want 0 remaining", r.body)
	}
}

func TestCreditsAndAnomaliesRejectBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.mustAccount("acme")
	u := e.mustUser(a.ID, "alice")
	k := e.mustKey(keyward.KeyCreate{AccountID: a.ID, UserID: u.ID})
	for _, tc := range []struct{ method, path, body, code string }{
		{"PUT", "/v1/keys/" + k.ID + "/credits", `{"remaining":-1}`, "invalid"},
		{"PUT", "/v1/keys/" + k.ID + "/credits", `{"remaining":5,"refill":{"amount":5,"interval":"1ms"}}`, "invalid"},
		{"PUT", "/v1/keys/" + k.ID + "/credits", `{"remaining":"lots"}`, "invalid"},
		{"PUT", "/v1/keys/" + k.ID + "/credits", `{"remaining":5,"refill":{"amount":5,"day":32}}`, "invalid"},
		{"PUT", "/v1/keys/" + k.ID + "/credits", `{"remaining":5,"refill":{"amount":5,"day":15,"interval":"24h"}}`, "invalid"},
		{"PUT", "/v1/keys/" + k.ID + "/credits", `{"remaining":5,"refill":{"amount":5}}`, "invalid"},
		{"POST", "/v1/keys/" + k.ID + "/credits/top-up", `{"amount":5}`, "invalid"}, // no credits yet
		{"POST", "/v1/keys/" + k.ID + "/credits/top-up", `{"amount":0}`, "invalid"},
		{"GET", "/v1/keys/" + k.ID + "/credits", ``, "not_found"},
		{"GET", "/v1/anomalies?type=nope", ``, "invalid"},
		{"GET", "/v1/anomalies?since=yesterday", ``, "invalid"},
		{"POST", "/v1/keys/verify", `{"key":"x","cost":-1}`, "invalid"},
	} {
		r := e.do(tc.method, tc.path, e.root, tc.body)
		if r.status < 400 || !json.Valid(r.body) {
			t.Errorf("%s %s %s: %d %s, want a problem", tc.method, tc.path, tc.body, r.status, r.body)
			continue
		}
		var p struct{ Code string }
		json.Unmarshal(r.body, &p)
		if p.Code != tc.code {
			t.Errorf("%s %s %s: code %q, want %q (%s)", tc.method, tc.path, tc.body, p.Code, tc.code, r.body)
		}
	}
	if r := e.do("GET", "/v1/keys/"+k.ID, e.root, ""); r.status != http.StatusOK || bytes.Contains(r.body, []byte(`"credits"`)) {
		t.Errorf("a refused change changed the key: %s", r.body)
	}
	// A monthly refill: a day, no interval, as set and as read.
	want := `"refill":{"amount":5,"day":15}`
	if r := e.do("PUT", "/v1/keys/"+k.ID+"/credits", e.root, `{"remaining":5,"refill":{"amount":5,"day":15}}`); r.status != http.StatusOK || !bytes.Contains(r.body, []byte(want)) {
		t.Errorf("PUT a monthly refill: %d %s, want %s", r.status, r.body, want)
	}
	if r := e.do("GET", "/v1/keys/"+k.ID+"/credits", e.root, ""); r.status != http.StatusOK || !bytes.Contains(r.body, []byte(want)) {
		t.Errorf("GET a monthly refill: %d %s, want %s", r.status, r.body, want)
	}
}
