package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

// The example from the Standard Webhooks spec.
const (
	specID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTimestamp = 1614265330
	specBody      = `{"test": 2432232314}`
	specSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

// TestKnownAnswer computes the spec's example by hand with crypto/hmac,
// checks it against the signature the spec gives, then checks Sign and
// Verify against it.
func TestKnownAnswer(t *testing.T) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(specSecret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(specID + "." + strconv.Itoa(specTimestamp) + "." + specBody))
	byHand := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	if byHand != specSignature {
		t.Fatalf("hand-computed signature = %s, want the spec's %s", byHand, specSignature)
	}

	secret, err := ParseSecret(specSecret)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(specTimestamp, 0)
	if got := Sign(secret, specID, ts, []byte(specBody)); got != specSignature {
		t.Errorf("Sign = %s, want %s", got, specSignature)
	}
	h := http.Header{}
	h.Set("webhook-id", specID)
	h.Set("webhook-timestamp", strconv.Itoa(specTimestamp))
	h.Set("webhook-signature", specSignature)
	if err := Verify(secret, h, []byte(specBody), ts.Add(time.Minute), 0); err != nil {
		t.Errorf("Verify(spec example) = %v", err)
	}
}

// specVerify checks a webhook from the spec text alone, sharing no code with
// the package: strip whsec_, base64-decode the key, HMAC-SHA256 the
// "id.timestamp.body" content, base64 it, and compare with each
// space-delimited "v1,<sig>" in webhook-signature.
func specVerify(secret string, h http.Header, body []byte, now time.Time) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return false
	}
	id, ts := h.Get("Webhook-Id"), h.Get("Webhook-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || now.Unix()-sec > 300 || sec-now.Unix() > 300 {
		return false
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "." + string(body)))
	want := base64.StdEncoding.EncodeToString(m.Sum(nil))
	for _, s := range strings.Split(h.Get("Webhook-Signature"), " ") {
		v, sig, _ := strings.Cut(s, ",")
		if v == "v1" && hmac.Equal([]byte(sig), []byte(want)) {
			return true
		}
	}
	return false
}

func TestIndependentVerifier(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for i, body := range []string{"", "{}", specBody, `{"type":"key.revoked","data":{"id":"key_1"}}`, strings.Repeat("é", 5000)} {
		s, err := NewSecret()
		if err != nil {
			t.Fatal(err)
		}
		secret, err := ParseSecret(s.Reveal())
		if err != nil {
			t.Fatal(err)
		}
		h := http.Header{}
		id := "msg_" + strconv.Itoa(i)
		SetHeaders(h, secret, id, now, []byte(body))
		if h.Get("webhook-id") != id || h.Get("webhook-timestamp") != strconv.FormatInt(now.Unix(), 10) {
			t.Errorf("headers = %v", h)
		}
		if !specVerify(s.Reveal(), h, []byte(body), now.Add(10*time.Second)) {
			t.Errorf("body %d: the spec verifier rejects SetHeaders output %v", i, h)
		}
		if specVerify(s.Reveal(), h, []byte(body+"x"), now) {
			t.Errorf("body %d: the spec verifier accepts an altered body", i)
		}
	}
}

func newSecret(t *testing.T) []byte {
	t.Helper()
	s, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseSecret(s.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerify(t *testing.T) {
	secret, other := newSecret(t), newSecret(t)
	sent := time.Unix(1_700_000_000, 0)
	body := []byte(`{"type":"key.created"}`)
	signed := func() http.Header {
		h := http.Header{}
		SetHeaders(h, secret, "msg_1", sent, body)
		return h
	}

	tests := []struct {
		name      string
		header    func() http.Header
		secret    []byte
		body      string
		now       time.Time
		tolerance time.Duration
		code      string // "" for success
		contains  string
	}{
		{name: "round trip", header: signed},
		{name: "clock slightly behind", header: signed, now: sent.Add(-4 * time.Minute)},
		{name: "at the tolerance", header: signed, now: sent.Add(5 * time.Minute)},
		{name: "custom tolerance", header: signed, now: sent.Add(time.Hour), tolerance: 2 * time.Hour},
		{name: "tampered body", header: signed, body: `{"type":"key.revoked"}`, code: keyward.EUNAUTHORIZED, contains: "no signature matches"},
		{name: "wrong secret", header: signed, secret: other, code: keyward.EUNAUTHORIZED, contains: "no signature matches"},
		{name: "old timestamp", header: signed, now: sent.Add(5*time.Minute + time.Second), code: keyward.EUNAUTHORIZED, contains: "5m1s old"},
		{name: "future timestamp", header: signed, now: sent.Add(-10 * time.Minute), code: keyward.EUNAUTHORIZED, contains: "in the future"},
		{name: "tampered id", header: func() http.Header {
			h := signed()
			h.Set("webhook-id", "msg_2")
			return h
		}, code: keyward.EUNAUTHORIZED},
		{name: "tampered timestamp", header: func() http.Header {
			h := signed()
			h.Set("webhook-timestamp", strconv.FormatInt(sent.Unix()+1, 10))
			return h
		}, code: keyward.EUNAUTHORIZED},
		{name: "several signatures, one valid", header: func() http.Header {
			h := signed()
			h.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(make([]byte, 32))+" v1a,ignored "+Sign(other, "msg_1", sent, body)+"  "+h.Get("webhook-signature")+" v1,!!notbase64")
			return h
		}},
		{name: "several signatures, none valid", header: func() http.Header {
			h := http.Header{}
			SetHeaders(h, other, "msg_1", sent, body)
			h.Set("webhook-signature", h.Get("webhook-signature")+" "+Sign(other, "msg_1", sent, []byte("x")))
			return h
		}, code: keyward.EUNAUTHORIZED},
		{name: "only other versions", header: func() http.Header {
			h := signed()
			h.Set("webhook-signature", "v1a,"+strings.TrimPrefix(h.Get("webhook-signature"), "v1,"))
			return h
		}, code: keyward.EINVALID, contains: "holds no v1 signature"},
		{name: "missing id", header: func() http.Header {
			h := signed()
			h.Del("webhook-id")
			return h
		}, code: keyward.EINVALID, contains: "missing webhook-id header"},
		{name: "missing timestamp", header: func() http.Header {
			h := signed()
			h.Del("webhook-timestamp")
			return h
		}, code: keyward.EINVALID, contains: "missing webhook-timestamp header"},
		{name: "missing signature", header: func() http.Header {
			h := signed()
			h.Del("webhook-signature")
			return h
		}, code: keyward.EINVALID, contains: "missing webhook-signature header"},
		{name: "timestamp not a number", header: func() http.Header {
			h := signed()
			h.Set("webhook-timestamp", "2023-11-14T22:13:20Z")
			return h
		}, code: keyward.EINVALID, contains: "not a Unix time in seconds"},
		{name: "timestamp in milliseconds", header: func() http.Header {
			h := signed()
			h.Set("webhook-timestamp", strconv.FormatInt(sent.UnixMilli(), 10))
			return h
		}, code: keyward.EUNAUTHORIZED, contains: "in the future"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := secret
			if tt.secret != nil {
				s = tt.secret
			}
			b := body
			if tt.body != "" {
				b = []byte(tt.body)
			}
			now := tt.now
			if now.IsZero() {
				now = sent.Add(2 * time.Second)
			}
			err := Verify(s, tt.header(), b, now, tt.tolerance)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("Verify = %v, want success", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify succeeded, want %s", tt.code)
			}
			if got := keyward.ErrorCode(err); got != tt.code {
				t.Errorf("code = %q, want %q (%v)", got, tt.code, err)
			}
			if !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("error %q does not mention %q", err, tt.contains)
			}
		})
	}
}

func TestParseSecret(t *testing.T) {
	if b, err := ParseSecret(specSecret); err != nil || len(b) != 24 {
		t.Errorf("ParseSecret(spec example) = %d bytes, %v; want 24", len(b), err)
	}
	b64 := base64.StdEncoding.EncodeToString
	for _, n := range []int{MinSecretLen, NewSecretLen, MaxSecretLen} {
		if _, err := ParseSecret("whsec_" + b64(make([]byte, n))); err != nil {
			t.Errorf("%d bytes: %v", n, err)
		}
	}
	long := b64([]byte(strings.Repeat("S", 40)))
	bad := []struct{ name, secret, want string }{
		{"no prefix", long, "must start with whsec_"},
		{"other prefix", "wh_" + long, "must start with whsec_"},
		{"bad base64", "whsec_" + strings.Repeat("$", 40), "standard base64"},
		{"url alphabet", "whsec_" + strings.Repeat("-_", 20), "standard base64"},
		{"too short", "whsec_" + b64([]byte(strings.Repeat("S", 23))), "is 23 bytes"},
		{"too long", "whsec_" + b64([]byte(strings.Repeat("S", 65))), "is 65 bytes"},
		{"empty", "", "must start with whsec_"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSecret(tt.secret)
			if keyward.ErrorCode(err) != keyward.EINVALID {
				t.Fatalf("ParseSecret = %v, want invalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
			if v := strings.TrimPrefix(tt.secret, "whsec_"); len(v) >= 8 && strings.Contains(err.Error(), v[:8]) {
				t.Errorf("error quotes the secret: %v", err)
			}
		})
	}
}

func TestNewSecret(t *testing.T) {
	a, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewSecret()
	if a == b {
		t.Error("two new secrets are equal")
	}
	if !strings.HasPrefix(a.Reveal(), "whsec_") {
		t.Errorf("NewSecret lacks the whsec_ prefix")
	}
	if a.String() != "REDACTED" {
		t.Errorf("secret prints as %q", a.String())
	}
}

func FuzzVerify(f *testing.F) {
	f.Add("msg_1", "1700000000", "v1,abc v1a,def", []byte("{}"))
	f.Add("", "", "", []byte(nil))
	f.Add("m", "-9223372036854775808", "v1,", []byte("x"))
	secret := make([]byte, 32)
	now := time.Unix(1_700_000_000, 0)
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", ts)
		h.Set("webhook-signature", sig)
		err := Verify(secret, h, body, now, 0)
		// Only a correct signature over exactly what was sent may pass.
		if err == nil && !strings.Contains(sig, "v1,"+base64.StdEncoding.EncodeToString(mac(secret, id, ts, body))) {
			t.Fatalf("accepted a signature it did not make: %q", sig)
		}
		if err != nil {
			if c := keyward.ErrorCode(err); c != keyward.EINVALID && c != keyward.EUNAUTHORIZED {
				t.Fatalf("code %q: %v", c, err)
			}
		}
	})
}
