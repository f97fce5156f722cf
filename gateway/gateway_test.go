package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/gateway"
	"github.com/keyward/keyward/verify"
)

func TestValidKeyPassesWithIdentity(t *testing.T) {
	e := newEnv(t)
	k := e.userKey("memories:read", "memories:write")
	gw := e.gateway(gateway.Config{Routes: []gateway.Route{e.route("/", "memories:read")}})

	for _, cred := range []http.Header{
		bearer(k.Secret),
		{"X-Api-Key": {k.Secret}},
		{"Authorization": {"Bearer " + k.Secret}, "X-Api-Key": {k.Secret}},
	} {
		n := len(e.up.requests())
		h := with(cred, append([]string{"X-Keyward-Agent", "claude-code"}, forged...)...)
		r := do(t, call{url: gw.URL + "/v1/memories?q=1", header: h})
		if r.status != http.StatusOK || string(r.body) != "ok from /v1/memories" {
			t.Fatalf("status %d body %q", r.status, r.body)
		}
		got := e.up.last(t, n)
		want := map[string]string{
			"X-Keyward-Key-Id":      k.ID,
			"X-Keyward-Account":     k.AccountID,
			"X-Keyward-User":        k.UserID,
			"X-Keyward-Role":        "user",
			"X-Keyward-Agent":       "claude-code",
			"X-Keyward-Permissions": "memories:read memories:write",
		}
		for name, v := range want {
			if vs := got.header.Values(name); len(vs) != 1 || vs[0] != v {
				t.Errorf("upstream %s = %q, want %q", name, vs, v)
			}
		}
		checkNoForged(t, got)
		for _, name := range []string{"Authorization", "X-Api-Key"} {
			if v := got.header.Get(name); v != "" {
				t.Errorf("credential header %s reached the upstream", name)
			}
		}
		if got.header.Get("X-Forwarded-For") != "127.0.0.1" {
			t.Errorf("X-Forwarded-For = %q, want the peer", got.header.Get("X-Forwarded-For"))
		}
	}
}

func TestForwardCredentials(t *testing.T) {
	e := newEnv(t)
	k := e.userKey()
	gw := e.gateway(gateway.Config{Routes: []gateway.Route{e.route("/")}, ForwardCredentials: true})
	do(t, call{url: gw.URL + "/x", header: bearer(k.Secret)})
	if got := e.up.last(t, 0).header.Get("Authorization"); got != "Bearer "+k.Secret {
		t.Errorf("ForwardCredentials: upstream Authorization = %q", got)
	}
}

func TestRefusedRequestsNeverReachUpstream(t *testing.T) {
	e := newEnv(t)
	ctx := e.rootCtx()
	good := e.userKey("read")
	revoked := e.userKey("read")
	if _, err := e.svc.Keys.RevokeKey(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	disabled := e.userKey("read")
	yes := true
	if _, err := e.svc.Keys.UpdateKey(ctx, disabled.ID, keyward.KeyUpdate{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	weak := e.userKey("other")
	gw := e.gateway(gateway.Config{Routes: []gateway.Route{e.route("/", "read")}})

	const missingDetail = `no API key: send it as "Authorization: Bearer <key>" or "X-API-Key: <key>"`
	for _, tc := range []struct {
		name   string
		url    string
		header http.Header
		status int
		code   string
		detail string
	}{
		{"missing", "/x", nil, 401, keyward.EUNAUTHORIZED, missingDetail},
		{"key in query string", "/x?api_key=" + good.Secret + "&key=" + good.Secret, nil, 401, keyward.EUNAUTHORIZED, missingDetail},
		{"empty bearer", "/x", http.Header{"Authorization": {"Bearer "}}, 401, keyward.EUNAUTHORIZED, `Authorization must be "Bearer <key>"`},
		{"basic auth", "/x", http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, 401, keyward.EUNAUTHORIZED, `Authorization must be "Bearer <key>"`},
		{"two different keys", "/x", http.Header{"Authorization": {"Bearer " + good.Secret}, "X-Api-Key": {weak.Secret}}, 401, keyward.EUNAUTHORIZED, "Authorization and X-API-Key carry different keys: send one"},
		{"wrong", "/x", bearer("kw_user_3vQb7Hq0N8y4J2kLm9XcA1sT5uVwYz0bC6dE8fG2hJ4kL0mN1pQ"), 401, keyward.EUNAUTHORIZED, "invalid API key"},
		{"malformed", "/x", bearer("not-a-key"), 401, keyward.EUNAUTHORIZED, "invalid API key"},
		{"off by one", "/x", bearer(good.Secret[:len(good.Secret)-1] + flip(good.Secret[len(good.Secret)-1])), 401, keyward.EUNAUTHORIZED, "invalid API key"},
		{"revoked", "/x", bearer(revoked.Secret), 401, keyward.EUNAUTHORIZED, "invalid API key"},
		{"disabled", "/x", bearer(disabled.Secret), 401, keyward.EUNAUTHORIZED, "invalid API key"},
		{"insufficient permissions", "/x", bearer(weak.Secret), 403, keyward.EFORBIDDEN, "the API key lacks the required permissions"},
		{"bad agent", "/x", with(bearer(good.Secret), "X-Keyward-Agent", "a", "X-Keyward-Agent", "b"), 400, keyward.EINVALID, "X-Keyward-Agent must be printable text of at most 200 bytes"},
		{"dot segments", "/public/../x", bearer(good.Secret), 400, keyward.EINVALID, "the request path is not canonical: remove . and .. segments and repeated slashes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := with(tc.header, forged...)
			r := do(t, call{url: gw.URL + tc.url, header: h})
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			code, detail := r.problem(t)
			if code != tc.code || detail != tc.detail {
				t.Errorf("problem %s %q, want %s %q", code, detail, tc.code, tc.detail)
			}
			if got := r.header.Get("WWW-Authenticate"); (r.status == 401) != (got == `Bearer realm="keyward"`) {
				t.Errorf("WWW-Authenticate %q on a %d", got, r.status)
			}
			if n := len(e.up.requests()); n != 0 {
				t.Errorf("the upstream got %d requests", n)
			}
		})
	}
}

// flip changes one base62 character.
func flip(c byte) string {
	if c == 'a' {
		return "b"
	}
	return "a"
}

func TestExemptPaths(t *testing.T) {
	e := newEnv(t)
	r := e.route("/")
	r.Exempt = []string{"/", "/docs", "/openapi.json"}
	gw := e.gateway(gateway.Config{Routes: []gateway.Route{r}})
	for i, p := range []string{"/", "/docs", "/openapi.json"} {
		// Forged identity and a bad key: the path passes, the headers
		// do not.
		resp := do(t, call{url: gw.URL + p, header: with(bearer("kw_user_bad"), forged...)})
		if resp.status != http.StatusOK {
			t.Fatalf("exempt %s: status %d %s", p, resp.status, resp.body)
		}
		got := e.up.last(t, i)
		checkNoForged(t, got)
		if got.header.Get("X-Keyward-Key-Id") != "" || got.header.Get("Authorization") != "" {
			t.Errorf("exempt %s: identity or credential reached the upstream: %v", p, got.header)
		}
	}
	// Exempt paths are exact.
	for _, p := range []string{"/docs/x", "/docsx", "/openapi.json/"} {
		if r := do(t, call{url: gw.URL + p}); r.status != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", p, r.status)
		}
	}
}

func TestRouting(t *testing.T) {
	e := newEnv(t)
	k := e.userKey("a")
	other := newUpstream(t)
	api := e.route("/api")
	apiAdmin := e.route("/api/admin", "admin")
	hostRoute := gateway.Route{PathPrefix: "/", Host: "Other.Example", Upstream: other.url}
	gw := e.gateway(gateway.Config{Routes: []gateway.Route{api, apiAdmin, hostRoute}})

	for _, tc := range []struct {
		host, path string
		status     int
		upstream   *upstream
	}{
		{"", "/api", 200, e.up},
		{"", "/api/x", 200, e.up},
		{"", "/api/admin/x", 403, nil},                     // longest prefix: needs admin
		{"", "/api/adminx", 200, e.up},                     // not below /api/admin
		{"", "/apix", 404, nil},                            // not below /api
		{"", "/", 404, nil},                                // no route
		{"other.example:8080", "/api/admin/x", 200, other}, // host routes first
		{"OTHER.example", "/anything", 200, other},
	} {
		t.Run(tc.host+tc.path, func(t *testing.T) {
			before, beforeOther := len(e.up.requests()), len(other.requests())
			h := bearer(k.Secret)
			if tc.host != "" {
				h = with(h, "Host", tc.host)
			}
			r := do(t, call{url: gw.URL + tc.path, header: h})
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if r.status == 404 {
				if code, _ := r.problem(t); code != keyward.ENOTFOUND {
					t.Errorf("404 code %s", code)
				}
			}
			gotMain, gotOther := len(e.up.requests())-before, len(other.requests())-beforeOther
			switch {
			case tc.upstream == e.up && (gotMain != 1 || gotOther != 0),
				tc.upstream == other && (gotMain != 0 || gotOther != 1),
				tc.upstream == nil && gotMain+gotOther != 0:
				t.Errorf("upstreams got %d (main) and %d (other) requests", gotMain, gotOther)
			}
		})
	}
}

func TestUpstreamBasePath(t *testing.T) {
	e := newEnv(t)
	k := e.userKey()
	base := *e.up.url
	base.Path = "/base"
	gw := e.gateway(gateway.Config{Routes: []gateway.Route{{PathPrefix: "/", Upstream: &base}}})
	do(t, call{url: gw.URL + "/x/y", header: bearer(k.Secret)})
	if got := e.up.last(t, 0).path; got != "/base/x/y" {
		t.Errorf("upstream path %q, want /base/x/y", got)
	}
}

func TestStampField(t *testing.T) {
	e := newEnv(t)
	k := e.userKey()
	r := e.route("/")
	r.StampField = "created_by"
	gw := e.gateway(gateway.Config{Routes: []gateway.Route{r}, MaxBodyBytes: 1024})
	js := with(bearer(k.Secret), "Content-Type", "application/json; charset=utf-8")

	resp := do(t, call{method: "POST", url: gw.URL + "/memories", header: js,
		body: `{"text":"a <b> & c","created_by":"someone-else","Created_By":"x","n":12345678901234567890,"tags":["a"],"nested":{"created_by":"kept"}}`})
	if resp.status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	got := e.up.last(t, 0)
	var body map[string]json.RawMessage
	if err := json.Unmarshal(got.body, &body); err != nil {
		t.Fatalf("upstream body %s: %v", got.body, err)
	}
	want := map[string]string{
		"created_by": `"` + k.ID + `"`,
		"text":       `"a <b> & c"`,
		"n":          `12345678901234567890`,
		"tags":       `["a"]`,
		"nested":     `{"created_by":"kept"}`,
	}
	if len(body) != len(want) {
		t.Errorf("upstream body %s, want exactly the fields %v", got.body, want)
	}
	for f, v := range want {
		if string(body[f]) != v {
			t.Errorf("upstream %s = %s, want %s", f, body[f], v)
		}
	}
	if got.header.Get("Content-Length") != fmt.Sprint(len(got.body)) {
		t.Errorf("Content-Length %s for %d bytes", got.header.Get("Content-Length"), len(got.body))
	}

	// GET and empty bodies pass untouched.
	do(t, call{url: gw.URL + "/memories", header: bearer(k.Secret)})
	if len(e.up.last(t, 1).body) != 0 {
		t.Error("a GET got a body")
	}

	for _, tc := range []struct {
		name, method, body string
		header             http.Header
		status             int
	}{
		{"form body", "POST", "created_by=me", with(bearer(k.Secret), "Content-Type", "application/x-www-form-urlencoded"), 400},
		{"no content type", "PUT", `{"a":1}`, bearer(k.Secret), 400},
		{"array", "PATCH", `[{"created_by":"x"}]`, js, 400},
		{"two objects", "POST", `{"a":1}{"created_by":"x"}`, js, 400},
		{"invalid json", "POST", `{"a":`, js, 400},
		{"compressed", "POST", `{"a":1}`, with(js, "Content-Encoding", "gzip"), 400},
		{"too large", "POST", `{"a":"` + strings.Repeat("x", 2000) + `"}`, js, 413},
		{"no key", "POST", `{"a":1}`, http.Header{"Content-Type": {"application/json"}}, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, call{method: tc.method, url: gw.URL + "/memories", header: tc.header, body: tc.body})
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			r.problem(t)
			if n := len(e.up.requests()); n != 2 {
				t.Errorf("the upstream got a refused request")
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	e := newEnv(t)
	k := e.userKey()
	gw := e.gateway(gateway.Config{Routes: []gateway.Route{e.route("/")}, MaxBodyBytes: 100})
	r := do(t, call{method: "POST", url: gw.URL + "/x", header: bearer(k.Secret), body: strings.Repeat("x", 101)})
	if r.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if code, _ := r.problem(t); code != keyward.ETOOLARGE {
		t.Errorf("code %s", code)
	}
	if n := len(e.up.requests()); n != 0 {
		t.Errorf("the upstream got %d requests", n)
	}
	// A body at the limit passes.
	r = do(t, call{method: "POST", url: gw.URL + "/x", header: bearer(k.Secret), body: strings.Repeat("x", 100)})
	if r.status != http.StatusOK || len(e.up.last(t, 0).body) != 100 {
		t.Errorf("status %d", r.status)
	}
}

// failingVerifier answers every key with err, or with an UNAVAILABLE
// result when err is nil.
type failingVerifier struct{ err error }

func (f failingVerifier) VerifyKey(context.Context, keyward.VerifyRequest) (*keyward.VerifyResult, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &keyward.VerifyResult{Code: keyward.DecisionUnavailable}, nil
}

// downLoader is a store that cannot answer.
type downLoader struct{}

func (downLoader) KeyByHash(context.Context, keyward.KeyHash) (*keyward.Key, error) {
	return nil, keyward.Errorf(keyward.EUNAVAILABLE, "database is down")
}
func (downLoader) TouchKeys(context.Context, []keyward.KeyUse) error { return nil }

func TestVerifierUnavailable(t *testing.T) {
	e := newEnv(t)
	k := e.userKey()
	down, err := verify.New(verify.Config{Store: downLoader{}, Hasher: e.hasher, Logger: e.logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { down.Close(context.Background()) })
	for _, tc := range []struct {
		name string
		v    keyward.KeyVerifier
	}{
		{"store down, not cached", down},
		{"verifier error", failingVerifier{err: errors.New("connection refused")}},
		{"UNAVAILABLE result", failingVerifier{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gw := e.gateway(gateway.Config{Verifier: tc.v, Routes: []gateway.Route{e.route("/")}})
			r := do(t, call{url: gw.URL + "/x", header: bearer(k.Secret)})
			if r.status != http.StatusServiceUnavailable {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if code, _ := r.problem(t); code != keyward.EUNAVAILABLE || r.header.Get("Retry-After") == "" {
				t.Errorf("code %s, Retry-After %q", code, r.header.Get("Retry-After"))
			}
			if n := len(e.up.requests()); n != 0 {
				t.Errorf("the upstream got %d requests", n)
			}
		})
	}
}

func TestUpstreamDown(t *testing.T) {
	e := newEnv(t)
	k := e.userKey()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := e.route("/")
	u := *e.up.url
	u.Host = ln.Addr().String()
	ln.Close() // nothing listens there now
	r.Upstream = &u
	gw := e.gateway(gateway.Config{Routes: []gateway.Route{r}})
	resp := do(t, call{url: gw.URL + "/x", header: bearer(k.Secret)})
	if resp.status != http.StatusServiceUnavailable {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	if code, _ := resp.problem(t); code != keyward.EUNAVAILABLE {
		t.Errorf("code %s", code)
	}
}

func TestStreaming(t *testing.T) {
	e := newEnv(t)
	k := e.userKey()
	gw := e.gateway(gateway.Config{Routes: []gateway.Route{e.route("/")}})
	req, _ := http.NewRequestWithContext(t.Context(), "GET", gw.URL+"/stream", nil)
	req.Header = bearer(k.Secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	// The upstream is blocked until release: the first line can only
	// arrive if the gateway flushed it.
	line, err := br.ReadString('\n')
	if err != nil || line != "first\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	close(e.up.release)
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "second\n" {
		t.Fatalf("rest %q, %v", rest, err)
	}
}

// serveEcho is a minimal upgrade: 101 with Upgrade: websocket, then every
// line read is written back.
func serveEcho(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		http.Error(w, "upgrade required", http.StatusUpgradeRequired)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	brw.Flush()
	for {
		line, err := brw.ReadString('\n')
		if err != nil {
			return
		}
		brw.WriteString("echo: " + line)
		brw.Flush()
	}
}

func TestWebsocketUpgrade(t *testing.T) {
	e := newEnv(t)
	k := e.userKey()
	gw := e.gateway(gateway.Config{Routes: []gateway.Route{e.route("/")}})
	conn, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer %s\r\nX-Keyward-User: usr_forged\r\n\r\n", k.Secret)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		t.Fatalf("status %d, Upgrade %q", resp.StatusCode, resp.Header.Get("Upgrade"))
	}
	for _, msg := range []string{"hello\n", "again\n"} {
		io.WriteString(conn, msg)
		got, err := br.ReadString('\n')
		if err != nil || got != "echo: "+msg {
			t.Fatalf("echo %q, %v", got, err)
		}
	}
	up := e.up.last(t, 0)
	if up.header.Get("X-Keyward-Key-Id") != k.ID || up.header.Get("Authorization") != "" {
		t.Errorf("upgrade request headers upstream: %v", up.header)
	}
	checkNoForged(t, up)

	// Without a key the upgrade is refused before the upstream.
	r := do(t, call{url: gw.URL + "/ws", header: http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}})
	if r.status != http.StatusUnauthorized || len(e.up.requests()) != 1 {
		t.Errorf("upgrade without key: status %d, upstream requests %d", r.status, len(e.up.requests()))
	}
}

// recordingVerifier records the requests it verifies.
type recordingVerifier struct {
	next keyward.KeyVerifier
	mu   sync.Mutex
	reqs []keyward.VerifyRequest
}

func (v *recordingVerifier) VerifyKey(ctx context.Context, r keyward.VerifyRequest) (*keyward.VerifyResult, error) {
	v.mu.Lock()
	v.reqs = append(v.reqs, r)
	v.mu.Unlock()
	return v.next.VerifyKey(ctx, r)
}

func (v *recordingVerifier) lastIP() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.reqs[len(v.reqs)-1].IP
}

func TestForwardedForOnlyFromTrustedProxies(t *testing.T) {
	e := newEnv(t)
	k := e.userKey()
	for i, tc := range []struct {
		name    string
		trusted []netip.Prefix
		xff     string
		ip      string // seen by the verifier
		fwd     string // X-Forwarded-For upstream
	}{
		{"untrusted peer", nil, "203.0.113.9", "127.0.0.1", "127.0.0.1"},
		{"untrusted peer, other proxy trusted", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, "203.0.113.9", "127.0.0.1", "127.0.0.1"},
		{"trusted peer", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, "203.0.113.9", "203.0.113.9", "203.0.113.9, 127.0.0.1"},
		{"trusted chain", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}, "198.51.100.1, 203.0.113.9, 10.1.2.3", "203.0.113.9", "198.51.100.1, 203.0.113.9, 10.1.2.3, 127.0.0.1"},
		{"trusted peer, garbage", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, "unknown", "127.0.0.1", "unknown, 127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rv := &recordingVerifier{next: e.engine}
			gw := e.gateway(gateway.Config{Verifier: rv, Routes: []gateway.Route{e.route("/")}, TrustedProxies: tc.trusted})
			r := do(t, call{url: gw.URL + "/x", header: with(bearer(k.Secret), "X-Forwarded-For", tc.xff, "Forwarded", "for=203.0.113.66")})
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if got := rv.lastIP(); got != tc.ip {
				t.Errorf("verifier saw IP %q, want %q", got, tc.ip)
			}
			up := e.up.last(t, i)
			if got := up.header.Get("X-Forwarded-For"); got != tc.fwd {
				t.Errorf("upstream X-Forwarded-For %q, want %q", got, tc.fwd)
			}
			if tc.trusted == nil && up.header.Get("Forwarded") != "" {
				t.Errorf("Forwarded from an untrusted peer reached the upstream")
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	e := newEnv(t)
	up := e.up.url
	for _, tc := range []struct {
		name  string
		cfg   gateway.Config
		field string
	}{
		{"no routes", gateway.Config{Verifier: e.engine}, "routes"},
		{"no verifier", gateway.Config{Routes: []gateway.Route{e.route("/")}}, "verifier"},
		{"no upstream", gateway.Config{Verifier: e.engine, Routes: []gateway.Route{{PathPrefix: "/"}}}, "routes[0].upstream"},
		{"bad upstream scheme", gateway.Config{Verifier: e.engine, Routes: []gateway.Route{{PathPrefix: "/", Upstream: mustURL("ftp://x")}}}, "routes[0].upstream"},
		{"relative prefix", gateway.Config{Verifier: e.engine, Routes: []gateway.Route{{PathPrefix: "api", Upstream: up}}}, "routes[0].prefix"},
		{"duplicate prefix", gateway.Config{Verifier: e.engine, Routes: []gateway.Route{{PathPrefix: "/api", Upstream: up}, {PathPrefix: "/api/", Upstream: up}}}, "routes[1].prefix"},
		{"bad exempt", gateway.Config{Verifier: e.engine, Routes: []gateway.Route{{PathPrefix: "/", Upstream: up, Exempt: []string{"/a/../b"}}}}, "routes[0].exempt"},
		{"header clash", gateway.Config{Verifier: e.engine, Routes: []gateway.Route{e.route("/")}, Headers: gateway.HeaderNames{User: "X-Keyward-Key-Id"}}, "headers.user"},
		{"credential header", gateway.Config{Verifier: e.engine, Routes: []gateway.Route{e.route("/")}, Headers: gateway.HeaderNames{Role: "authorization"}}, "headers.role"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := gateway.New(tc.cfg)
			var ce *gateway.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err %v, want a *ConfigError", err)
			}
			found := false
			for _, f := range ce.Errors {
				found = found || f.Field == tc.field
			}
			if !found {
				t.Errorf("%v does not name %s", err, tc.field)
			}
		})
	}
	// Duplicate prefixes on different hosts are fine.
	if _, err := gateway.New(gateway.Config{Verifier: e.engine, Routes: []gateway.Route{
		{PathPrefix: "/", Upstream: up}, {PathPrefix: "/", Host: "a.example", Upstream: up},
	}}); err != nil {
		t.Errorf("same prefix on two hosts: %v", err)
	}
}

func TestCustomHeaderNames(t *testing.T) {
	e := newEnv(t)
	k := e.userKey()
	gw := e.gateway(gateway.Config{Routes: []gateway.Route{e.route("/")}, Headers: gateway.HeaderNames{User: "X-User-Id"}})
	do(t, call{url: gw.URL + "/x", header: with(bearer(k.Secret), "X-User-Id", "usr_forged", "X-User_Id", "usr_forged", "X-Keyward-User", "usr_forged")})
	got := e.up.last(t, 0)
	if vs := got.header.Values("X-User-Id"); len(vs) != 1 || vs[0] != k.UserID {
		t.Errorf("X-User-Id %q, want %q", vs, k.UserID)
	}
	checkNoForged(t, got)
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func TestBodyLimitStreamed(t *testing.T) {
	e := newEnv(t)
	k := e.userKey()
	gw := e.gateway(gateway.Config{Routes: []gateway.Route{e.route("/")}, MaxBodyBytes: 100})
	// No Content-Length: the limit is found while the body is sent.
	body := io.MultiReader(strings.NewReader(strings.Repeat("x", 60)), strings.NewReader(strings.Repeat("y", 60)))
	req, _ := http.NewRequestWithContext(t.Context(), "POST", gw.URL+"/x", io.NopCloser(body))
	req.Header = bearer(k.Secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	for _, s := range e.up.requests() {
		if len(s.body) > 100 {
			t.Errorf("the upstream got a %d-byte body", len(s.body))
		}
	}
}

// TestStampValue: with stamp_value the user or the subject is stamped,
// which a rotation does not change; a key without a user is refused by a
// route stamping users.
func TestStampValue(t *testing.T) {
	e := newEnv(t)
	k := e.userKey()
	rotated, err := e.svc.Keys.RotateKey(e.rootCtx(), k.ID, keyward.KeyRotate{Grace: keyward.Duration(time.Hour)}) // both keys work
	if err != nil {
		t.Fatal(err)
	}
	e.secrets = append(e.secrets, rotated.Secret)
	admin, err := e.svc.Keys.CreateKey(e.rootCtx(), keyward.KeyCreate{AccountID: k.AccountID, Role: keyward.RoleAccountAdmin})
	if err != nil {
		t.Fatal(err)
	}
	e.secrets = append(e.secrets, admin.Secret)
	stampedBy := func(gw, secret string) (int, string) {
		t.Helper()
		n := len(e.up.requests())
		resp := do(t, call{method: "POST", url: gw + "/m", header: with(bearer(secret), "Content-Type", "application/json"), body: `{"created_by":"forged"}`})
		if resp.status != http.StatusOK {
			if len(e.up.requests()) != n {
				t.Errorf("a refused request reached the upstream")
			}
			return resp.status, string(resp.body)
		}
		var body map[string]string
		if err := json.Unmarshal(e.up.last(t, n).body, &body); err != nil {
			t.Fatal(err)
		}
		return resp.status, body["created_by"]
	}
	route := func(value string) gateway.Route {
		r := e.route("/")
		r.StampField, r.StampValue = "created_by", value
		return r
	}
	for _, tc := range []struct {
		value, secret string
		status        int
		want          string
	}{
		{"", k.Secret, 200, k.ID},
		{gateway.StampKey, rotated.Secret, 200, rotated.ID},
		{gateway.StampUser, k.Secret, 200, k.UserID},
		{gateway.StampUser, rotated.Secret, 200, k.UserID},
		{gateway.StampUser, admin.Secret, 403, "this route records the user of the key"},
		{gateway.StampSubject, rotated.Secret, 200, k.UserID},
		{gateway.StampSubject, admin.Secret, 200, k.AccountID},
		{gateway.StampSubject, e.secrets[0], 200, e.rootKey.ID}, // the root key: no user, no account
	} {
		gw := e.gateway(gateway.Config{Routes: []gateway.Route{route(tc.value)}})
		if status, got := stampedBy(gw.URL, tc.secret); status != tc.status || !strings.Contains(got, tc.want) {
			t.Errorf("stamp_value %q: %d %q, want %d %q", tc.value, status, got, tc.status, tc.want)
		}
	}
}

// TestAgentAliases: an alias is read as the agent and removed; renamed,
// the identity header hands the verified agent on under the old name.
func TestAgentAliases(t *testing.T) {
	e := newEnv(t)
	k := e.userKey()
	gw := e.gateway(gateway.Config{Routes: []gateway.Route{e.route("/")}, AgentHeaders: []string{"X-OpenViking-Agent"},
		Headers: gateway.HeaderNames{Agent: "X-OpenViking-Agent"}})
	do(t, call{url: gw.URL + "/x", header: with(bearer(k.Secret), "X-OpenViking-Agent", "planner")})
	got := e.up.last(t, 0)
	if vs := got.header.Values("X-OpenViking-Agent"); len(vs) != 1 || vs[0] != "planner" || got.header.Get("X-Keyward-Agent") != "" {
		t.Errorf("upstream headers %v", got.header)
	}
	// The agent a client sends in X-Keyward-Agent is read too, and goes
	// upstream under the configured name only.
	do(t, call{url: gw.URL + "/x", header: with(bearer(k.Secret), "X-Keyward-Agent", "ci")})
	got = e.up.last(t, 1)
	if got.header.Get("X-OpenViking-Agent") != "ci" || got.header.Get("X-Keyward-Agent") != "" {
		t.Errorf("upstream headers %v", got.header)
	}
	if _, err := gateway.New(gateway.Config{Verifier: e.engine, Routes: []gateway.Route{e.route("/")}, AgentHeaders: []string{"X-API-Key"}}); err == nil || !strings.Contains(err.Error(), "agent_headers") {
		t.Errorf("a credential header as alias: %v", err)
	}
}
