package keystore_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keystore"
)

// recorder is the protected upstream: it records every request it gets.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (u *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.reqs = append(u.reqs, r.Clone(r.Context()))
	u.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (u *recorder) take() []*http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	r := u.reqs
	u.reqs = nil
	return r
}

// protect is the smallest faithful gateway, for tests only: the credential
// from the headers (never trimmed by us; HTTP itself drops white space
// around a header value), the verifier's decision, 401 with
// WWW-Authenticate, 403, 503, and the identity as headers upstream. A
// request without a credential is verified with the empty key, so dev mode
// lets it through and every other mode refuses it.
func protect(v keyward.KeyVerifier, perms []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		unauthorized := func(msg string) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="keyward"`)
			http.Error(w, msg, http.StatusUnauthorized)
		}
		key, err := apikey.FromRequest(r)
		if err != nil && !errors.Is(err, apikey.ErrNoCredential) {
			unauthorized(keyward.ErrorMessage(err))
			return
		}
		res, err := v.VerifyKey(r.Context(), keyward.VerifyRequest{Key: key, Permissions: perms, Agent: r.Header.Get("X-Keyward-Agent")})
		switch {
		case err != nil || res.Code == keyward.DecisionUnavailable:
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		case key == "" && !res.Valid:
			unauthorized(keyward.ErrorMessage(apikey.ErrNoCredential))
			return
		case res.Code.Unauthenticated():
			unauthorized("invalid API key")
			return
		case !res.Valid:
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		r = r.Clone(r.Context())
		r.Header.Del("Authorization")
		r.Header.Del("X-API-Key")
		r.Header.Set("X-Keyward-Key-Id", res.Identity.KeyID)
		r.Header.Set("X-Keyward-Role", string(res.Identity.Role))
		r.Header.Set("X-Keyward-Account", res.Identity.AccountID)
		next.ServeHTTP(w, r)
	})
}

type httpCase struct {
	name    string
	headers map[string]string // raw header values, sent as written
	status  int
	keyID   string // X-Keyward-Key-Id seen upstream when status is 200
}

func bearer(k string) map[string]string  { return map[string]string{"Authorization": "Bearer " + k} }
func xAPIKey(k string) map[string]string { return map[string]string{"X-API-Key": k} }

// checkHTTP sends each case through protect(v) to a recorder over a real
// HTTP server.
func checkHTTP(t *testing.T, v keyward.KeyVerifier, perms []string, cases []httpCase) {
	t.Helper()
	up := &recorder{}
	srv := httptest.NewServer(protect(v, perms, up))
	t.Cleanup(srv.Close)
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, srv.URL+"/memories", nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.headers {
				req.Header[k] = []string{v}
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := up.take()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.status != http.StatusOK {
				if len(got) != 0 {
					t.Errorf("a refused request reached the upstream")
				}
				if www := resp.Header.Get("WWW-Authenticate"); (tt.status == http.StatusUnauthorized) != (www != "") {
					t.Errorf("status %d with WWW-Authenticate %q", tt.status, www)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("upstream got %d requests, want 1", len(got))
			}
			h := got[0].Header
			if h.Get("X-Keyward-Key-Id") != tt.keyID {
				t.Errorf("upstream saw key id %q, want %q", h.Get("X-Keyward-Key-Id"), tt.keyID)
			}
			if h.Get("Authorization") != "" || h.Get("X-API-Key") != "" {
				t.Errorf("the credential reached the upstream")
			}
		})
	}
}

func TestKeystoreOverHTTP(t *testing.T) {
	ks := mustParse(t, testFile())
	const ok, unauth, forbidden = http.StatusOK, http.StatusUnauthorized, http.StatusForbidden
	checkHTTP(t, ks, []string{"memories:read"}, []httpCase{
		{name: "bearer", headers: bearer(tokCI), status: ok, keyID: "ci"},
		{name: "X-API-Key", headers: xAPIKey(tokCI), status: ok, keyID: "ci"},
		{name: "bearer scheme in lower case", headers: map[string]string{"Authorization": "bearer " + tokCI}, status: ok, keyID: "ci"},
		{name: "both headers, same key", headers: map[string]string{"Authorization": "Bearer " + tokCI, "X-API-Key": tokCI}, status: ok, keyID: "ci"},
		{name: "root", headers: bearer(tokRoot), status: ok, keyID: "ops"},
		{name: "special ASCII characters", headers: xAPIKey(tokSpecial), status: forbidden},
		{name: "4096-character key", headers: bearer(tokLong), status: forbidden},
		// HTTP drops optional white space around a header value (RFC
		// 9110 section 5.5) before anyone sees it: the key is the same.
		{name: "surrounding white space is not part of a header value", headers: xAPIKey("  " + tokCI + "\t"), status: ok, keyID: "ci"},

		{name: "missing key", headers: nil, status: unauth},
		{name: "empty X-API-Key", headers: xAPIKey(""), status: unauth},
		{name: "empty bearer", headers: bearer(""), status: unauth},
		{name: "bearer without scheme", headers: map[string]string{"Authorization": tokCI}, status: unauth},
		{name: "basic scheme", headers: map[string]string{"Authorization": "Basic " + tokCI}, status: unauth},
		{name: "wrong key", headers: bearer("not-the-key"), status: unauth},
		{name: "off by one character", headers: bearer(tokCI[:len(tokCI)-1] + "g"), status: unauth},
		{name: "one character short", headers: bearer(tokCI[:len(tokCI)-1]), status: unauth},
		{name: "one character extra", headers: bearer(tokCI + "f"), status: unauth},
		{name: "prefix only", headers: xAPIKey(tokCI[:10]), status: unauth},
		{name: "different case", headers: bearer(strings.ToUpper(tokCI)), status: unauth},
		{name: "digest instead of key", headers: bearer(keystore.Digest(tokCI)), status: unauth},
		{name: "both headers, different keys", headers: map[string]string{"Authorization": "Bearer " + tokCI, "X-API-Key": tokRoot}, status: unauth},
		{name: "key with inner white space", headers: bearer(tokCI[:5] + " " + tokCI[5:]), status: unauth},
		{name: "admin of the account lacks the permission", headers: bearer(tokAdmin), status: forbidden},
	})

	// The same file, for a route that needs no permission: the long and
	// special keys get through.
	checkHTTP(t, ks, nil, []httpCase{
		{name: "special ASCII characters", headers: xAPIKey(tokSpecial), status: ok, keyID: "special"},
		{name: "special ASCII characters as bearer", headers: bearer(tokSpecial), status: ok, keyID: "special"},
		{name: "4096-character key", headers: bearer(tokLong), status: ok, keyID: "long"},
		{name: "4096-character key, last character changed", headers: bearer(tokLong[:4095] + "0"), status: unauth},
		{name: "4095 characters of it", headers: bearer(tokLong[:4095]), status: unauth},
	})
}

func TestLegacyOverHTTP(t *testing.T) {
	l, _ := mustLegacy(t, legacyKey)
	checkHTTP(t, l, []string{"keys:delete"}, []httpCase{
		{name: "bearer", headers: bearer(legacyKey), status: http.StatusOK, keyID: "owner"},
		{name: "X-API-Key", headers: xAPIKey(legacyKey), status: http.StatusOK, keyID: "owner"},
		{name: "missing key", status: http.StatusUnauthorized},
		{name: "empty key", headers: xAPIKey(""), status: http.StatusUnauthorized},
		{name: "wrong key", headers: bearer("wrong"), status: http.StatusUnauthorized},
		{name: "off by one character", headers: bearer(legacyKey[:len(legacyKey)-1] + "0"), status: http.StatusUnauthorized},
		{name: "prefix only", headers: bearer(legacyKey[:16]), status: http.StatusUnauthorized},
		{name: "different case", headers: bearer(strings.ToUpper(legacyKey)), status: http.StatusUnauthorized},
	})
}

func TestDevOverHTTP(t *testing.T) {
	log, _ := logBuffer()
	d, err := keystore.NewDev("127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	checkHTTP(t, d, []string{"anything"}, []httpCase{
		{name: "no key", status: http.StatusOK, keyID: "dev"},
		{name: "any key", headers: bearer("whatever"), status: http.StatusOK, keyID: "dev"},
	})
}

func TestChainOverHTTP(t *testing.T) {
	l, _ := mustLegacy(t, legacyKey)
	checkHTTP(t, keystore.Chain(mustParse(t, testFile()), l), nil, []httpCase{
		{name: "keystore key", headers: bearer(tokCI), status: http.StatusOK, keyID: "ci"},
		{name: "legacy key", headers: bearer(legacyKey), status: http.StatusOK, keyID: "owner"},
		{name: "neither", headers: bearer("nope"), status: http.StatusUnauthorized},
	})
}
