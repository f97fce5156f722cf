package keystore_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/keystore"
)

const legacyKey = "legacy-admin-key-0123456789abcdef"

func TestLegacyVerifyKey(t *testing.T) {
	l, _ := mustLegacy(t, legacyKey)
	owner := func(name, key string, perms ...string) verifyCase {
		return verifyCase{name: name, key: key, perms: perms, code: keyward.DecisionValid, id: "owner", role: keyward.RoleRoot}
	}
	refused := func(name, key string, code keyward.Decision) verifyCase {
		return verifyCase{name: name, key: key, code: code}
	}
	checkVerify(t, l, []verifyCase{
		owner("valid", legacyKey),
		owner("root holds every permission", legacyKey, "keys:verify", "anything"),
		refused("empty key", "", keyward.DecisionMalformed),
		refused("wrong key", "some-other-key", keyward.DecisionNotFound),
		refused("last character changed", legacyKey[:len(legacyKey)-1]+"e", keyward.DecisionNotFound),
		refused("one character short", legacyKey[:len(legacyKey)-1], keyward.DecisionNotFound),
		refused("one character extra", legacyKey+"f", keyward.DecisionNotFound),
		refused("prefix only", legacyKey[:16], keyward.DecisionNotFound),
		refused("upper case", strings.ToUpper(legacyKey), keyward.DecisionNotFound),
		refused("surrounding space", " "+legacyKey+" ", keyward.DecisionNotFound),
		refused("trailing newline", legacyKey+"\n", keyward.DecisionNotFound),
		refused("its digest", keystore.Digest(legacyKey), keyward.DecisionNotFound),
	})

	for _, tt := range []struct {
		name, key string
	}{
		{"special ASCII characters", tokSpecial},
		{"4096 characters", tokLong},
		{"short", "abc"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l, _ := mustLegacy(t, tt.key)
			checkVerify(t, l, []verifyCase{
				owner("itself", tt.key),
				{name: "one character short", key: tt.key[:len(tt.key)-1], code: keyward.DecisionNotFound},
			})
		})
	}
}

func TestLegacyWarnsWhenShort(t *testing.T) {
	for _, tt := range []struct {
		key  string
		warn bool
	}{
		{"q7!Z", true},
		{"fifteen-chars-x", true},
		{"sixteen-chars-xy", false},
		{"ééééééééééééééé", true},   // 15 characters, 30 bytes
		{"éééééééééééééééé", false}, // 16 characters
		{legacyKey, false},
	} {
		_, logs := mustLegacy(t, tt.key)
		warned := strings.Contains(logs, "level=WARN") && strings.Contains(logs, "shorter than 16 characters")
		if warned != tt.warn {
			t.Errorf("key of %d characters: warned %v, want %v; logs:\n%s", len([]rune(tt.key)), warned, tt.warn, logs)
		}
		if strings.Contains(logs, tt.key) {
			t.Errorf("logs reveal the key:\n%s", logs)
		}
		if !strings.Contains(logs, "legacy admin key enabled") || !strings.Contains(logs, "key_id=owner") {
			t.Errorf("logs do not say the legacy key is on:\n%s", logs)
		}
	}
}

func TestLegacyRefuses(t *testing.T) {
	for _, tt := range []struct {
		name, key, want string
	}{
		{"empty", "", "the legacy admin key is empty"},
		{"trailing newline", legacyKey + "\n", "control characters"},
		{"surrounding space", " " + legacyKey, "white space"},
		{"too long", strings.Repeat("k", keystore.MaxTokenLength+1), "longer than"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			log, buf := logBuffer()
			l, err := keystore.Legacy(keyward.Secret(tt.key), log)
			if err == nil || l != nil {
				t.Fatalf("Legacy = %v, %v", l, err)
			}
			if !strings.Contains(err.Error(), tt.want) || keyward.ErrorCode(err) != keyward.EINVALID {
				t.Errorf("error = %v (%s), want %q", err, keyward.ErrorCode(err), tt.want)
			}
			if tt.key != "" && (strings.Contains(err.Error(), strings.TrimSpace(tt.key)) || strings.Contains(buf.String(), strings.TrimSpace(tt.key))) {
				t.Errorf("error or logs reveal the key: %v\n%s", err, buf)
			}
		})
	}
}

func TestCheckDevListen(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:8080", "127.0.0.1:0", "127.1.2.3:80", "[::1]:8080", "localhost:8080", "[::ffff:127.0.0.1]:80"} {
		if err := keystore.CheckDevListen(addr); err != nil {
			t.Errorf("CheckDevListen(%q) = %v", addr, err)
		}
	}
	for _, addr := range []string{":8080", "0.0.0.0:8080", "[::]:8080", "192.168.1.10:8080", "10.0.0.1:80", "example.com:80", "localhost.example.com:80", "127.0.0.1", "", "[fe80::1%lo]:80"} {
		err := keystore.CheckDevListen(addr)
		if err == nil {
			t.Errorf("CheckDevListen(%q) = nil", addr)
			continue
		}
		msg := err.Error()
		for _, w := range []string{"dev_mode", "--dev", "loopback", "listen", "127.0.0.1:PORT", "turn dev mode off"} {
			if !strings.Contains(msg, w) {
				t.Errorf("CheckDevListen(%q) = %q, does not name %q", addr, msg, w)
			}
		}
	}
}

func TestDev(t *testing.T) {
	if d, err := keystore.NewDev("0.0.0.0:8080", nil); err == nil || d != nil {
		t.Fatalf("NewDev on all interfaces = %v, %v", d, err)
	}
	log, buf := logBuffer()
	d, err := keystore.NewDev("127.0.0.1:8080", log)
	if err != nil {
		t.Fatal(err)
	}
	if logs := buf.String(); !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "DEV MODE: AUTHENTICATION IS OFF") {
		t.Errorf("NewDev did not warn:\n%s", logs)
	}
	dev := func(name, key string, perms ...string) verifyCase {
		return verifyCase{name: name, key: key, perms: perms, code: keyward.DecisionValid, id: "dev", role: keyward.RoleRoot}
	}
	checkVerify(t, d, []verifyCase{
		dev("no key", ""),
		dev("any key", "whatever"),
		dev("any permission", "x", "keys:delete"),
	})
	// Every start warns again.
	buf.Reset()
	if _, err := keystore.NewDev("[::1]:9000", log); err != nil || !strings.Contains(buf.String(), "DEV MODE") {
		t.Errorf("second NewDev = %v, logs:\n%s", err, buf)
	}
}

// Zero values were not made by the constructors that check their input:
// they verify nothing.
func TestZeroValuesFailClosed(t *testing.T) {
	ctx := context.Background()
	for _, v := range []keyward.KeyVerifier{&keystore.Keystore{}, &keystore.LegacyKey{}, &keystore.Dev{}} {
		for _, key := range []string{"", "anything", legacyKey} {
			res, err := v.VerifyKey(ctx, keyward.VerifyRequest{Key: key})
			if err == nil && res.Valid {
				t.Errorf("zero %T accepted %q", v, key)
			}
		}
	}
}

type fixed struct {
	res *keyward.VerifyResult
	err error
}

func (f fixed) VerifyKey(context.Context, keyward.VerifyRequest) (*keyward.VerifyResult, error) {
	return f.res, f.err
}

func TestChain(t *testing.T) {
	ks := mustParse(t, testFile())
	legacy, _ := mustLegacy(t, legacyKey)
	code := func(d keyward.Decision) fixed { return fixed{res: &keyward.VerifyResult{Code: d}} }
	down := fixed{err: keyward.Errorf(keyward.EUNAVAILABLE, "down")}
	valid := fixed{res: &keyward.VerifyResult{Valid: true, Code: keyward.DecisionValid, KeyID: "x"}}

	checkVerify(t, keystore.Chain(ks, legacy), []verifyCase{
		{name: "keystore key", key: tokCI, code: keyward.DecisionValid, id: "ci", role: keyward.RoleUser},
		{name: "legacy key", key: legacyKey, code: keyward.DecisionValid, id: "owner", role: keyward.RoleRoot},
		{name: "keystore key lacking a permission", key: tokCI, perms: []string{"nope"}, code: keyward.DecisionInsufficientPermissions, id: "ci"},
		{name: "neither", key: "nope", code: keyward.DecisionNotFound},
		{name: "empty", key: "", code: keyward.DecisionMalformed},
	})

	for _, tt := range []struct {
		name    string
		chain   []keyward.KeyVerifier
		want    keyward.Decision
		wantErr bool
	}{
		{"none", nil, keyward.DecisionMalformed, false},
		{"first that knows wins", []keyward.KeyVerifier{code(keyward.DecisionNotFound), code(keyward.DecisionRevoked), valid}, keyward.DecisionRevoked, false},
		{"found after an outage", []keyward.KeyVerifier{down, valid}, keyward.DecisionValid, false},
		{"found after unavailable", []keyward.KeyVerifier{code(keyward.DecisionUnavailable), valid}, keyward.DecisionValid, false},
		{"outage beats not found", []keyward.KeyVerifier{code(keyward.DecisionNotFound), down}, "", true},
		{"unavailable beats not found", []keyward.KeyVerifier{code(keyward.DecisionMalformed), code(keyward.DecisionNotFound), code(keyward.DecisionUnavailable)}, keyward.DecisionUnavailable, false},
		{"not found beats malformed", []keyward.KeyVerifier{code(keyward.DecisionMalformed), code(keyward.DecisionNotFound)}, keyward.DecisionNotFound, false},
		{"no result no error is an error", []keyward.KeyVerifier{fixed{}}, "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, err := keystore.Chain(tt.chain...).VerifyKey(context.Background(), keyward.VerifyRequest{Key: "k"})
			if tt.wantErr {
				if err == nil || res != nil {
					t.Fatalf("VerifyKey = %+v, %v; want an error", res, err)
				}
				return
			}
			if err != nil || res.Code != tt.want {
				t.Fatalf("VerifyKey = %+v, %v; want %s", res, err, tt.want)
			}
		})
	}
	if _, err := keystore.Chain(down).VerifyKey(context.Background(), keyward.VerifyRequest{Key: "k"}); !errors.Is(err, down.err) {
		t.Errorf("the outage error is not returned: %v", err)
	}
}
