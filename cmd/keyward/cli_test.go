package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

func TestServePrintsRootKeyOnce(t *testing.T) {
	s := startServer(t, nil)
	if _, ok := apikey.Parse(s.rootKey); !ok || !strings.HasPrefix(s.rootKey, "kw_root_") {
		t.Fatalf("root key %q is not a kw_root key; stdout:\n%s", s.rootKey, s.stdout)
	}
	out := s.stdout.String()
	if !strings.Contains(out, "root key: "+s.rootKey+"\n") || !strings.Contains(out, "will not show it again") {
		t.Errorf("stdout = %q", out)
	}
	s.stop(t)

	again := startServer(t, map[string]string{"KEYWARD_DATA": s.data})
	if again.rootKey != "" || strings.Contains(again.stdout.String(), "root key") {
		t.Errorf("second start printed a root key: %q", again.stdout)
	}
	var id keyward.Identity
	again.okJSON(t, s.rootKey, &id, "whoami")
	if id.Role != keyward.RoleRoot {
		t.Errorf("whoami = %+v", id)
	}
}

// TestLifecycle drives accounts, users and keys of every tier through the
// CLI against an in-process server.
func TestLifecycle(t *testing.T) {
	s := startServer(t, nil)
	root := s.rootKey

	// Accounts.
	var acme, other keyward.Account
	s.okJSON(t, root, &acme, "accounts", "create", "--name", "acme", "--key-prefix", "acme_live")
	s.okJSON(t, root, &other, "accounts", "create", "--name", "other")
	if acme.ID == "" || acme.Name != "acme" || acme.KeyPrefix != "acme_live" {
		t.Fatalf("created account = %+v", acme)
	}
	var accounts keyward.AccountList
	s.okJSON(t, root, &accounts, "accounts", "list")
	if len(accounts.Items) != 2 {
		t.Errorf("accounts list = %d items", len(accounts.Items))
	}
	if out := s.ok(t, root, "accounts", "list"); !strings.Contains(out, "NAME") || !strings.Contains(out, acme.ID) {
		t.Errorf("accounts table:\n%s", out)
	}
	var got keyward.Account
	s.okJSON(t, root, &got, "accounts", "get", acme.ID)
	if got.ID != acme.ID {
		t.Errorf("accounts get = %+v", got)
	}
	s.okJSON(t, root, &got, "accounts", "update", other.ID, "--name", "other-renamed")
	if got.Name != "other-renamed" {
		t.Errorf("accounts update = %+v", got)
	}

	// Users.
	var alice, bob keyward.User
	s.okJSON(t, root, &alice, "users", "create", "--account", acme.ID, "--name", "alice", "--external-id", "a-1")
	s.okJSON(t, root, &bob, "users", "create", "--account", acme.ID, "--name", "bob")
	var users keyward.UserList
	s.okJSON(t, root, &users, "users", "list", "--account", acme.ID)
	if len(users.Items) != 2 {
		t.Errorf("users list = %d items", len(users.Items))
	}
	var gotUser keyward.User
	s.okJSON(t, root, &gotUser, "users", "get", "--account", acme.ID, alice.ID)
	if gotUser.ExternalID != "a-1" {
		t.Errorf("users get = %+v", gotUser)
	}

	// Keys of each tier.
	var root2, admin, user keyward.CreatedKey
	s.okJSON(t, root, &root2, "keys", "create", "--role", "root", "--name", "ops")
	s.okJSON(t, root, &admin, "keys", "create", "--account", acme.ID, "--role", "account_admin", "--name", "ci",
		"--permission", "keys:verify", "--permission", "memories:read")
	s.okJSON(t, root, &user, "keys", "create", "--account", acme.ID, "--user", alice.ID, "--name", "laptop",
		"--permission", "memories:read", "--meta", `{"plan":"pro"}`, "--expires", "30d")
	for _, k := range []keyward.CreatedKey{root2, admin, user} {
		if _, ok := apikey.Parse(k.Secret); !ok {
			t.Fatalf("created key %s has no valid secret", k.ID)
		}
	}
	if user.Role != keyward.RoleUser || !strings.HasPrefix(user.Secret, "acme_live_") || user.ExpiresAt == nil ||
		compactJSON(user.Meta) != `{"plan":"pro"}` {
		t.Errorf("user key = %+v", user.Key)
	}
	// The table form shows the secret once with a warning.
	out := s.ok(t, root, "keys", "create", "--account", acme.ID, "--user", bob.ID)
	if !strings.Contains(out, "\nkey: acme_live_") || !strings.Contains(out, "will not show it again") {
		t.Errorf("keys create table:\n%s", out)
	}
	bobKey := strings.Fields(out[strings.Index(out, "\nkey: "):])[1]
	if _, ok := apikey.Parse(bobKey); !ok {
		t.Fatalf("cannot read the key from the table:\n%s", out)
	}

	// whoami for each tier.
	for _, tt := range []struct {
		key  string
		role keyward.Role
	}{{root2.Secret, keyward.RoleRoot}, {admin.Secret, keyward.RoleAccountAdmin}, {user.Secret, keyward.RoleUser}} {
		var id keyward.Identity
		s.okJSON(t, tt.key, &id, "whoami")
		if id.Role != tt.role {
			t.Errorf("whoami = %+v, want role %s", id, tt.role)
		}
	}

	// Lists never carry secrets and respect scope.
	var keys keyward.KeyList
	s.okJSON(t, admin.Secret, &keys, "keys", "list")
	for _, k := range keys.Items {
		if k.AccountID != acme.ID {
			t.Errorf("account admin sees key %s of account %q", k.ID, k.AccountID)
		}
	}
	listing := s.ok(t, root, "keys", "list", "-o", "json")
	for _, secret := range []string{root, root2.Secret, admin.Secret, user.Secret} {
		if strings.Contains(listing, secret) {
			t.Error("keys list shows a secret")
		}
	}
	var k keyward.Key
	s.okJSON(t, user.Secret, &k, "keys", "get", user.ID)
	if k.ID != user.ID {
		t.Errorf("keys get = %+v", k)
	}
	s.okJSON(t, admin.Secret, &k, "keys", "update", user.ID, "--name", "alice-laptop", "--no-expiry")
	if k.Name != "alice-laptop" || k.ExpiresAt != nil {
		t.Errorf("keys update = %+v", k)
	}

	// Verify: valid, missing permission, disabled, enabled.
	verifyAs := func(caller, key string, perms ...string) (keyward.VerifyResult, int) {
		t.Helper()
		args := []string{"verify", key, "-o", "json"}
		for _, p := range perms {
			args = append(args, "--permission", p)
		}
		r := s.cli(t, caller, args...)
		var res keyward.VerifyResult
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
			t.Fatalf("verify -o json: %v\n%s%s", err, r.stdout, r.stderr)
		}
		return res, r.code
	}
	verify := func(key string, perms ...string) (keyward.VerifyResult, int) {
		t.Helper()
		return verifyAs(admin.Secret, key, perms...)
	}
	if res, code := verify(user.Secret, "memories:read"); !res.Valid || code != 0 || res.Identity == nil || res.Identity.UserID != alice.ID {
		t.Errorf("verify valid key = %+v, exit %d", res, code)
	}
	if res, code := verify(user.Secret, "memories:write"); res.Valid || res.Code != keyward.DecisionInsufficientPermissions || code != ExitKeyInvalid {
		t.Errorf("verify without permission = %+v, exit %d", res, code)
	}
	// A query: the answer names what is missing; a bad one is a usage
	// error naming the position.
	var res keyward.VerifyResult
	if r := s.cli(t, admin.Secret, "verify", user.Secret, "-o", "json", "--query", "memories:read AND (memories:write OR search:run)"); r.code != ExitKeyInvalid ||
		json.Unmarshal([]byte(r.stdout), &res) != nil || !slices.Equal(res.MissingPermissions, []string{"memories:write", "search:run"}) {
		t.Errorf("verify --query: exit %d, %+v\n%s%s", r.code, res, r.stdout, r.stderr)
	}
	if r := s.cli(t, admin.Secret, "verify", user.Secret, "--query", "memories:read AND"); r.code != ExitUsage || !strings.Contains(r.stderr, "at position 18") {
		t.Errorf("verify with a bad query: exit %d, %s", r.code, r.stderr)
	}
	s.okJSON(t, admin.Secret, &k, "keys", "disable", user.ID)
	if !k.Disabled {
		t.Error("keys disable did not disable")
	}
	if res, _ := verify(user.Secret); res.Code != keyward.DecisionDisabled {
		t.Errorf("verify disabled key = %s", res.Code)
	}
	s.okJSON(t, admin.Secret, &k, "keys", "enable", user.ID)
	if res, _ := verify(user.Secret); res.Code != keyward.DecisionValid {
		t.Errorf("verify enabled key = %s", res.Code)
	}
	// verify - reads the key from stdin.
	m := &Main{Getenv: mapEnv(map[string]string{"KEYWARD_URL": s.url, "KEYWARD_API_KEY": admin.Secret}), Stdin: strings.NewReader(user.Secret + "\n")}
	var stdout, stderr strings.Builder
	if code := m.Run(t.Context(), []string{"verify", "-"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "VALID") {
		t.Errorf("verify -: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}

	// Rotate with grace: both work; revoke: the old one stops.
	var rotated keyward.CreatedKey
	s.okJSON(t, admin.Secret, &rotated, "keys", "rotate", user.ID, "--grace", "1d")
	if rotated.RotatedFrom != user.ID || rotated.Secret == "" {
		t.Errorf("rotate = %+v", rotated.Key)
	}
	if res, _ := verify(user.Secret); !res.Valid {
		t.Errorf("old key in grace = %s", res.Code)
	}
	if res, _ := verify(rotated.Secret); !res.Valid {
		t.Errorf("new key = %s", res.Code)
	}
	s.okJSON(t, admin.Secret, &k, "keys", "revoke", user.ID)
	if res, _ := verify(user.Secret); res.Code != keyward.DecisionRevoked {
		t.Errorf("revoked key = %s", res.Code)
	}
	s.ok(t, admin.Secret, "keys", "delete", rotated.ID)
	if res, _ := verify(rotated.Secret); res.Code != keyward.DecisionNotFound {
		t.Errorf("deleted key = %s", res.Code)
	}

	// Roles: what each tier must not do, as one error line and exit code.
	msg := s.fails(t, ExitForbidden, bobKey, "accounts", "create", "--name", "evil")
	if !strings.Contains(msg, "root") {
		t.Errorf("forbidden message %q", msg)
	}
	s.fails(t, ExitForbidden, admin.Secret, "keys", "create", "--role", "root")
	s.fails(t, ExitNotFound, admin.Secret, "accounts", "get", other.ID)
	s.fails(t, ExitUnauthorized, user.Secret, "whoami") // revoked
	s.fails(t, ExitConflict, root, "accounts", "create", "--name", "acme")

	s.fails(t, ExitForbidden, bobKey, "keys", "create", "--account", acme.ID, "--user", alice.ID)

	// Disabling an account disables its keys; enabling restores them.
	s.okJSON(t, root, &got, "accounts", "update", acme.ID, "--disabled")
	if res, _ := verifyAs(root, admin.Secret); res.Code != keyward.DecisionDisabled {
		t.Errorf("key of a disabled account = %s", res.Code)
	}
	s.okJSON(t, root, &got, "accounts", "update", acme.ID, "--disabled=false")
	if res, _ := verifyAs(root, bobKey); !res.Valid {
		t.Errorf("key of a re-enabled account = %s", res.Code)
	}

	// Deleting a user deletes its keys.
	s.ok(t, root, "users", "delete", "--account", acme.ID, bob.ID)
	s.fails(t, ExitNotFound, root, "users", "get", "--account", acme.ID, bob.ID)
	if res, _ := verifyAs(root, bobKey); res.Code != keyward.DecisionNotFound {
		t.Errorf("key of a deleted user = %s", res.Code)
	}
	if out := s.ok(t, root, "accounts", "delete", other.ID); !strings.Contains(out, "deleted "+other.ID) {
		t.Errorf("accounts delete: %q", out)
	}
	s.fails(t, ExitNotFound, root, "accounts", "get", other.ID)
}

func compactJSON(b []byte) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return string(b)
	}
	return buf.String()
}

func TestErrorLines(t *testing.T) {
	s := startServer(t, nil)
	root := s.rootKey
	wellFormedUnknown, _ := apikey.Generate("kw_root")
	tests := []struct {
		name string
		code int
		key  string
		args []string
		want string
	}{
		{"no api key", ExitUnauthorized, "", []string{"whoami"}, "KEYWARD_API_KEY"},
		{"malformed api key", ExitUnauthorized, "kw_root_nope", []string{"whoami"}, "invalid API key"},
		{"unknown api key", ExitUnauthorized, wellFormedUnknown.Reveal(), []string{"accounts", "list"}, "invalid API key"},
		{"not found", ExitNotFound, root, []string{"keys", "get", "key_doesnotexist"}, "not found"},
		{"unknown flag", ExitUsage, root, []string{"keys", "create", "--colour", "red"}, "unknown flag"},
		{"missing arg", ExitUsage, root, []string{"keys", "get"}, "missing KEY_ID"},
		{"extra arg", ExitUsage, root, []string{"whoami", "extra"}, "unexpected argument"},
		{"unknown command", ExitUsage, root, []string{"frobnicate"}, "unknown command"},
		{"required flag", ExitUsage, root, []string{"users", "list"}, `"account"`},
		{"bad role", ExitUsage, root, []string{"keys", "create", "--role", "god"}, "--role"},
		{"no role", ExitUsage, root, []string{"keys", "create", "--name", "x"}, "--role is required"},
		{"bad meta", ExitUsage, root, []string{"keys", "create", "--role", "root", "--meta", "[1]"}, "JSON object"},
		{"bad expiry", ExitUsage, root, []string{"keys", "create", "--role", "root", "--expires", "soon"}, "--expires"},
		{"bad output", ExitUsage, root, []string{"whoami", "-o", "yaml"}, "table or json"},
		{"invalid input", ExitUsage, root, []string{"accounts", "create", "--name", ""}, "name"},
		{"nothing to update", ExitUsage, root, []string{"keys", "update", "key_x"}, "nothing to update"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := s.fails(t, tt.code, tt.key, tt.args...)
			if !strings.Contains(msg, tt.want) {
				t.Errorf("message %q does not contain %q", msg, tt.want)
			}
			if tt.key != "" && len(tt.key) > 12 && strings.Contains(msg, tt.key) {
				t.Errorf("message holds the API key: %q", msg)
			}
		})
	}

	// A server that is not there is "unavailable".
	r := runCLI(t, map[string]string{"KEYWARD_URL": "http://127.0.0.1:1", "KEYWARD_API_KEY": root}, "whoami")
	checkFails(t, r, ExitUnavailable, []string{"whoami"})

	// A bad configuration stops serve with exit 3 naming the setting.
	r = runCLI(t, map[string]string{"KEYWARD_LOG_LEVEL": "loud"}, "serve", "--data", t.TempDir())
	if msg := checkFails(t, r, ExitConfig, []string{"serve"}); !strings.Contains(msg, "log_level") {
		t.Errorf("config error %q", msg)
	}
	r = runCLI(t, nil, "serve", "--listen", "127.0.0.1", "--data", t.TempDir())
	if msg := checkFails(t, r, ExitConfig, []string{"serve"}); !strings.Contains(msg, "listen") {
		t.Errorf("config error %q", msg)
	}
}

func TestBootstrapCommand(t *testing.T) {
	data := t.TempDir() + "/data"
	r := runCLI(t, nil, "bootstrap", "--data", data)
	if r.code != 0 {
		t.Fatalf("bootstrap: exit %d, %s", r.code, r.stderr)
	}
	key := strings.TrimSpace(r.stdout)
	if prefix, ok := apikey.Parse(key); !ok || prefix != apikey.PrefixRoot || strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("bootstrap printed %q, want a bare root key", r.stdout)
	}
	if strings.Contains(r.stderr, key) {
		t.Error("bootstrap logged the key")
	}
	r = runCLI(t, nil, "bootstrap", "--data", data)
	if msg := checkFails(t, r, ExitConflict, []string{"bootstrap"}); !strings.Contains(msg, "already exists") {
		t.Errorf("second bootstrap: %q", msg)
	}
	if r.stdout != "" {
		t.Errorf("second bootstrap printed %q", r.stdout)
	}

	// serve on the bootstrapped store prints nothing and accepts the key.
	s := startServer(t, map[string]string{"KEYWARD_DATA": data})
	if s.stdout.String() != "" {
		t.Errorf("serve after bootstrap printed %q", s.stdout)
	}
	var id keyward.Identity
	s.okJSON(t, key, &id, "whoami")
	if id.Role != keyward.RoleRoot {
		t.Errorf("whoami = %+v", id)
	}
}

func TestConfigCheck(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // created by no one: config check creates nothing
	env := map[string]string{"KEYWARD_PEPPERS": "1:" + testPepperHex + ",2:hex:" + strings.Repeat("cd", 32), "KEYWARD_DATA": dir}
	r := runCLI(t, env, "config", "check", "--log-level", "debug")
	if r.code != 0 {
		t.Fatalf("config check: exit %d, %s", r.code, r.stderr)
	}
	for _, want := range []string{"REDACTED", "2: REDACTED (current)", "env KEYWARD_PEPPERS", "flag --log-level", "configuration OK"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("config check output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = runCLI(t, env, "config", "check", "-o", "json")
	var eff effectiveConfig
	if err := json.Unmarshal([]byte(r.stdout), &eff); err != nil {
		t.Fatal(err)
	}
	if eff.Peppers[1] != "REDACTED" || eff.PepperCurrent != 2 || eff.Sources["data"] != "env KEYWARD_DATA" {
		t.Errorf("config check json = %+v", eff)
	}
	for _, out := range []string{r.stdout, r.stderr} {
		if strings.Contains(out, strings.TrimPrefix(testPepperHex, "hex:")) || strings.Contains(out, string(testPepperBytes)) {
			t.Error("config check shows the pepper")
		}
	}
	r = runCLI(t, map[string]string{"KEYWARD_PEPPER": "hex:0011"}, "config", "check")
	if msg := checkFails(t, r, ExitConfig, []string{"config", "check"}); !strings.Contains(msg, "peppers") || !strings.Contains(msg, "at least 32") {
		t.Errorf("short pepper: %q", msg)
	}
}

func TestConfigCheckShowsEverySetting(t *testing.T) {
	dir := t.TempDir()
	ks := filepath.Join(dir, "keys.yaml")
	if err := os.WriteFile(ks, []byte("keys:\n  "+strings.Repeat("ab", 32)+": {id: ci, role: root}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "keyward.yaml")
	if err := os.WriteFile(cfg, []byte("gateway_listen: 127.0.0.1:8081\ngateway:\n  routes:\n    - {prefix: /, upstream: http://127.0.0.1:9000}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const storePW, redisPW, legacy = "st0re-pa55", "red1s-pa55", "legacy-admin-key-0123456789abcdef"
	env := map[string]string{
		"KEYWARD_CONFIG":          cfg,
		"KEYWARD_PEPPER":          testPepperHex,
		"KEYWARD_DATA":            filepath.Join(dir, "data"),
		"KEYWARD_STORE":           "postgres://keyward:" + storePW + "@db.internal:5432/keyward?sslmode=disable",
		"KEYWARD_REDIS_URL":       "redis://:" + redisPW + "@127.0.0.1:6379/0",
		"KEYWARD_BUS_CHANNEL":     "cluster_a",
		"KEYWARD_KEYSTORE":        ks,
		"KEYWARD_ADMIN_API_KEY":   legacy,
		"KEYWARD_TRUSTED_PROXIES": "10.0.0.0/8,127.0.0.1",
	}
	args := []string{"config", "check", "--bus-down-cache-ttl", "3s"}
	r := runCLI(t, env, args...)
	if r.code != 0 {
		t.Fatalf("config check: exit %d, %s", r.code, r.stderr)
	}
	for _, want := range []string{
		"postgres://keyward:xxxxx@db.internal:5432/keyward?sslmode=disable", "env KEYWARD_STORE",
		"redis://:xxxxx@127.0.0.1:6379/0", "env KEYWARD_REDIS_URL",
		"cluster_a", "3s", "flag --bus-down-cache-ttl", "127.0.0.1:8081", "file " + cfg,
		"10.0.0.0/8,127.0.0.1", "env KEYWARD_TRUSTED_PROXIES", ks, "env KEYWARD_KEYSTORE",
		"dev_mode", "admin_api_key", "env KEYWARD_ADMIN_API_KEY", "gateway.routes", "configuration OK",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("config check output lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, secret := range []string{storePW, redisPW, legacy, strings.TrimPrefix(testPepperHex, "hex:")} {
		if strings.Contains(r.stdout+r.stderr, secret) {
			t.Errorf("config check shows a secret %q:\n%s", secret, r.stdout)
		}
	}

	r = runCLI(t, env, append(args, "-o", "json")...)
	var eff effectiveConfig
	if err := json.Unmarshal([]byte(r.stdout), &eff); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	if eff.Store != "postgres://keyward:xxxxx@db.internal:5432/keyward?sslmode=disable" || eff.Redis != "redis://:xxxxx@127.0.0.1:6379/0" ||
		eff.BusChannel != "cluster_a" || eff.BusDownCacheTTL != "3s" || eff.Keystore != ks || eff.DevMode ||
		eff.AdminAPIKey != "REDACTED" || eff.GatewayListen != "127.0.0.1:8081" || len(eff.TrustedProxies) != 2 ||
		eff.Sources["store"] != "env KEYWARD_STORE" || eff.Sources["redis"] != "env KEYWARD_REDIS_URL" || eff.Sources["keystore"] != "env KEYWARD_KEYSTORE" ||
		eff.Sources["dev_mode"] != "default" || eff.Sources["gateway_listen"] != "file "+cfg || eff.GatewayRoutes != 1 {
		t.Errorf("config check json = %+v", eff)
	}
	for _, secret := range []string{storePW, redisPW, legacy} {
		if strings.Contains(r.stdout, secret) {
			t.Errorf("config check json shows a secret %q", secret)
		}
	}

	// Dev mode, shown as such.
	r = runCLI(t, map[string]string{"KEYWARD_DATA": filepath.Join(dir, "data")}, "config", "check", "--dev")
	if r.code != 0 || !strings.Contains(r.stdout, "NO AUTHENTICATION") || !strings.Contains(r.stdout, "flag --dev") {
		t.Errorf("config check --dev: exit %d %s\n%s", r.code, r.stderr, r.stdout)
	}
	// What serve or gateway would refuse, config check refuses too.
	for _, tt := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"missing keystore", nil, []string{"--keystore", filepath.Join(dir, "nope.yaml")}, "keystore: file "},
		{"dev mode off loopback", nil, []string{"--dev", "--listen", "0.0.0.0:8080"}, "dev_mode: "},
		{"shared store without a pepper", nil, []string{"--store", "postgres://keyward@db.internal/keyward"}, "peppers: none configured"},
		{"bad store", nil, []string{"--store", "mysql://u:" + storePW + "@db/k"}, "store: "},
	} {
		env := map[string]string{"KEYWARD_DATA": filepath.Join(dir, "data")}
		r := runCLI(t, env, append([]string{"config", "check"}, tt.args...)...)
		if msg := checkFails(t, r, ExitConfig, []string{"config", "check"}); !strings.Contains(msg, tt.want) || strings.Contains(msg, storePW) {
			t.Errorf("%s: %q", tt.name, msg)
		}
	}
}

func TestVersion(t *testing.T) {
	r := runCLI(t, nil, "version", "-o", "json")
	var b buildInfo
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &b) != nil || b.Version != "test" || b.GoVersion == "" {
		t.Errorf("version: exit %d %q", r.code, r.stdout)
	}
}
