package httpedge_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/httpedge"
)

// refusal writes err through WriteError and returns the recorded response
// and its decoded problem.
func refusal(t *testing.T, path string, err error, challenge string, limits []keyward.RateLimitStatus) (*httptest.ResponseRecorder, keyward.Problem) {
	t.Helper()
	w := httptest.NewRecorder()
	httpedge.WriteError(w, httptest.NewRequest("GET", path, nil), err, challenge, limits)
	var p keyward.Problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	if ct := w.Header().Get("Content-Type"); ct != keyward.ProblemContentType {
		t.Errorf("Content-Type = %q", ct)
	}
	if w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers %v lack no-store or nosniff", w.Header())
	}
	return w, p
}

func TestWriteError(t *testing.T) {
	w, p := refusal(t, "/v1/keys", keyward.DecisionNotFound.Refusal(), "", nil)
	if w.Code != 401 || p.Status != 401 || p.Code != keyward.EUNAUTHORIZED || p.Title != "Unauthorized" ||
		p.Detail != "invalid API key" || p.Instance != "/v1/keys" || p.Type != "urn:keyward:error:unauthorized" {
		t.Errorf("401: %d %+v", w.Code, p)
	}
	if got := w.Header().Get("WWW-Authenticate"); got != `Bearer realm="keyward"` {
		t.Errorf("default challenge = %q", got)
	}
	if w.Header().Get("Retry-After") != "" {
		t.Error("a 401 carries Retry-After")
	}

	w, _ = refusal(t, "/", keyward.DecisionExpired.Refusal(), `ApiKey realm="memories"`, nil)
	if got := w.Header().Get("WWW-Authenticate"); got != `ApiKey realm="memories"` {
		t.Errorf("configured challenge = %q", got)
	}

	w, p = refusal(t, "/", keyward.DecisionUnavailable.Refusal(), "", nil)
	if w.Code != 503 || p.Code != keyward.EUNAVAILABLE || w.Header().Get("Retry-After") != "1" || w.Header().Get("WWW-Authenticate") != "" {
		t.Errorf("503: %d %+v %v", w.Code, p, w.Header())
	}

	limits := []keyward.RateLimitStatus{{Name: "default", Limit: 10, Window: keyward.Duration(time.Minute), Allowed: false, ResetMS: 30000, RetryAfterMS: 30000}}
	w, p = refusal(t, "/", keyward.DecisionRateLimited.Refusal(), "", limits)
	if w.Code != 429 || p.Code != keyward.ERATELIMITED || w.Header().Get("RateLimit-Policy") == "" || w.Header().Get("Retry-After") == "" {
		t.Errorf("429: %d %+v %v", w.Code, p, w.Header())
	}
	if p.LimitLevel != "" {
		t.Errorf("a refusal naming no level has limit_level %q", p.LimitLevel)
	}
	// A limit of a user shared by its keys names its level, and is still
	// the same 429 otherwise.
	w, p = refusal(t, "/", &httpedge.LimitRefusal{Err: keyward.DecisionRateLimited.Refusal(), Level: keyward.LevelUser}, "", limits)
	if w.Code != 429 || p.Code != keyward.ERATELIMITED || p.LimitLevel != keyward.LevelUser || p.Detail != keyward.ErrorMessage(keyward.DecisionRateLimited.Refusal()) || w.Header().Get("Retry-After") == "" {
		t.Errorf("429 of a user's limit: %d %+v %v", w.Code, p, w.Header())
	}
	// The limits go out on a 429 only.
	w, _ = refusal(t, "/", keyward.DecisionInsufficientPermissions.Refusal(), "", limits)
	if w.Code != 403 || w.Header().Get("RateLimit-Policy") != "" {
		t.Errorf("403: %d %v", w.Code, w.Header())
	}
}

// TestWriteErrorHidesWhatIsNotForTheClient: internal causes stay in the
// log, and a raw key in the path or a message is never echoed.
func TestWriteErrorHidesWhatIsNotForTheClient(t *testing.T) {
	w, p := refusal(t, "/", errors.New("disk on fire at /var/lib/keyward"), "", nil)
	if w.Code != 500 || p.Code != keyward.EINTERNAL || strings.Contains(p.Detail, "disk") {
		t.Errorf("internal error: %d %+v", w.Code, p)
	}
	key, err := apikey.Generate(apikey.PrefixUser)
	if err != nil {
		t.Fatal(err)
	}
	raw := key.Reveal()
	_, p = refusal(t, "/v1/keys/"+raw, keyward.Errorf(keyward.ENOTFOUND, "no key %s", raw), "", nil)
	if p.Code != keyward.ENOTFOUND || strings.Contains(p.Detail, raw) || strings.Contains(p.Instance, raw) {
		t.Errorf("the key was echoed: %+v", p)
	}
}

func TestAgent(t *testing.T) {
	for _, tc := range []struct {
		values []string
		want   string
		ok     bool
	}{
		{nil, "", true},
		{[]string{"  planner  "}, "planner", true},
		{[]string{strings.Repeat("a", keyward.MaxAgentLen)}, strings.Repeat("a", keyward.MaxAgentLen), true},
		{[]string{strings.Repeat("a", keyward.MaxAgentLen+1)}, "", false},
		{[]string{"a\x00b"}, "", false},
		{[]string{"\xff"}, "", false},
		{[]string{"a", "b"}, "", false},
	} {
		h := http.Header{keyward.HeaderAgent: tc.values}
		got, err := httpedge.Agent(h)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("Agent(%q) = %q, %v", tc.values, got, err)
		}
		if err != nil && keyward.ErrorCode(err) != keyward.EINVALID {
			t.Errorf("Agent(%q) error code %q, want invalid", tc.values, keyward.ErrorCode(err))
		}
	}
}

func TestAgentAliases(t *testing.T) {
	aliases := []string{"X-OpenViking-Agent", "X-Agent-Name"}
	for _, tc := range []struct {
		name string
		h    http.Header
		want string
		ok   bool
	}{
		{"none", http.Header{}, "", true},
		{"alias only", http.Header{"X-Openviking-Agent": {" planner "}}, "planner", true},
		{"second alias", http.Header{"X-Agent-Name": {"ci"}}, "ci", true},
		{"header and alias agree", http.Header{"X-Keyward-Agent": {"ci"}, "X-Openviking-Agent": {"ci"}}, "ci", true},
		{"header and alias disagree", http.Header{"X-Keyward-Agent": {"ci"}, "X-Openviking-Agent": {"cd"}}, "", false},
		{"aliases disagree", http.Header{"X-Agent-Name": {"a"}, "X-Openviking-Agent": {"b"}}, "", false},
		{"alias twice", http.Header{"X-Openviking-Agent": {"a", "a"}}, "", false},
		{"alias too long", http.Header{"X-Openviking-Agent": {strings.Repeat("a", keyward.MaxAgentLen+1)}}, "", false},
		{"empty alias beside the header", http.Header{"X-Keyward-Agent": {"ci"}, "X-Openviking-Agent": {" "}}, "ci", true},
	} {
		got, err := httpedge.Agent(tc.h, aliases...)
		if got != tc.want || (err == nil) != tc.ok || (err != nil && keyward.ErrorCode(err) != keyward.EINVALID) {
			t.Errorf("%s: Agent = %q, %v", tc.name, got, err)
		}
	}
	// Without aliases, other headers are not read.
	if got, err := httpedge.Agent(http.Header{"X-Openviking-Agent": {"planner"}}); got != "" || err != nil {
		t.Errorf("Agent without aliases = %q, %v", got, err)
	}
}

func TestCheckAgentHeaders(t *testing.T) {
	if err := httpedge.CheckAgentHeaders([]string{"X-OpenViking-Agent", "X_Agent"}); err != nil {
		t.Errorf("valid aliases: %v", err)
	}
	for _, names := range [][]string{{""}, {"X Agent"}, {"X-Agent:"}, {"x-keyward-agent"}, {"authorization"}, {"X-API-KEY"}, {"X-A", "x-a"}} {
		if err := httpedge.CheckAgentHeaders(names); keyward.ErrorCode(err) != keyward.EINVALID {
			t.Errorf("CheckAgentHeaders(%q) = %v", names, err)
		}
	}
}

func TestChallenge(t *testing.T) {
	for _, tc := range []struct{ scheme, realm, want string }{
		{"", "", keyward.WWWAuthenticate},
		{"Bearer", "keyward", keyward.WWWAuthenticate},
		{"ApiKey", "", `ApiKey realm="keyward"`},
		{"ApiKey", "OpenViking memories", `ApiKey realm="OpenViking memories"`},
	} {
		if got, err := httpedge.Challenge(tc.scheme, tc.realm); got != tc.want || err != nil {
			t.Errorf("Challenge(%q, %q) = %q, %v; want %q", tc.scheme, tc.realm, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ scheme, realm string }{
		{"Api Key", ""}, {"Api\"Key", ""}, {"ApiKey,", ""}, {"Bearer\r\n", ""},
		{"", `a"b`}, {"", `a\b`}, {"", "a\nb"}, {"", "réalm"}, {"", strings.Repeat("r", 101)},
	} {
		if got, err := httpedge.Challenge(tc.scheme, tc.realm); keyward.ErrorCode(err) != keyward.EINVALID {
			t.Errorf("Challenge(%q, %q) = %q, %v; want invalid", tc.scheme, tc.realm, got, err)
		}
	}
}

// TestRequestInfo: the audit log's view of a request keeps the client
// address given, and cuts the User-Agent and X-Request-Id to 200 bytes.
func TestRequestInfo(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("User-Agent", strings.Repeat("u", 300))
	r.Header.Set("X-Request-Id", "req-1")
	ri := httpedge.RequestInfo(r, netip.MustParseAddr("203.0.113.7"))
	if len(ri.UserAgent) != 200 || ri.RequestID != "req-1" || ri.IP != "203.0.113.7" {
		t.Errorf("RequestInfo = %+v", ri)
	}
	if ri := httpedge.RequestInfo(httptest.NewRequest("GET", "/", nil), netip.Addr{}); ri.IP != "" || ri.RequestID != "" {
		t.Errorf("RequestInfo without a client or id = %+v", ri)
	}
}
