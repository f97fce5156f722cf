package httpapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/keywardtest"
)

// principal is who calls a route in the role table.
type principal string

const (
	noKey      principal = "no key"
	malformed  principal = "malformed key"
	revoked    principal = "revoked key"
	root       principal = "root"
	adminOf    principal = "account_admin of the account"
	adminOther principal = "account_admin of another account"
	userOf     principal = "user of the account"
	userOther  principal = "user of another account"
)

// want gives the expected status for each authenticated principal; the
// unauthenticated ones (no key, malformed, revoked) always get 401.
type want map[principal]int

// The outcome of every route for roles that may not use it:
//   - 403 forbidden: the caller's role may never do this (a user listing
//     accounts, an account_admin deleting one, anyone but root creating
//     accounts), or the request would create a key outside the caller's
//     own account or user.
//   - 404 not found: the object lies in another account (or belongs to
//     another user), so that its existence is not revealed.
var (
	onlyRoot       = func(ok int) want { return want{root: ok, adminOf: 403, adminOther: 403, userOf: 403, userOther: 403} }
	accountManager = func(ok int) want { return want{root: ok, adminOf: ok, adminOther: 404, userOf: 403, userOther: 403} }
	keyOwner       = func(ok int) want { return want{root: ok, adminOf: ok, adminOther: 404, userOf: ok, userOther: 404} }
	anyKey         = func(ok int) want { return want{root: ok, adminOf: ok, adminOther: ok, userOf: ok, userOther: ok} }
)

// roleTable is the spec of the permission model: every admin route for
// objects of account A, called by each principal. {account} is A, {user}
// the user whose key "user of the account" is, {other_user} another user
// of A, {key} a key of {user}, {admin_key} an account_admin key of A.
var roleTable = []struct {
	route string
	body  string
	want  want
}{
	{"POST /v1/accounts", `{"name":"new {n}"}`, onlyRoot(201)},
	{"GET /v1/accounts", ``, onlyRoot(200)},
	{"GET /v1/accounts/{account}", ``, accountManager(200)},
	{"PATCH /v1/accounts/{account}", `{"name":"renamed {n}"}`, onlyRoot(200)},
	{"DELETE /v1/accounts/{account}", ``, onlyRoot(204)},

	{"POST /v1/accounts/{account}/users", `{"name":"new user"}`, accountManager(201)},
	{"GET /v1/accounts/{account}/users", ``, accountManager(200)},
	{"GET /v1/accounts/{account}/users/{user}", ``, want{root: 200, adminOf: 200, adminOther: 404, userOf: 200, userOther: 403}},
	{"GET /v1/accounts/{account}/users/{other_user}", ``, accountManager(200)},
	{"DELETE /v1/accounts/{account}/users/{user}", ``, accountManager(204)},

	{"POST /v1/keys", `{"account_id":"{account}","user_id":"{user}","role":"user","permissions":["memories:read"]}`,
		want{root: 201, adminOf: 201, adminOther: 403, userOf: 201, userOther: 403}},
	{"POST /v1/keys", `{"account_id":"{account}","role":"account_admin"}`,
		want{root: 201, adminOf: 201, adminOther: 403, userOf: 403, userOther: 403}},
	{"POST /v1/keys", `{"role":"root"}`, onlyRoot(201)},
	{"GET /v1/keys", ``, anyKey(200)},
	// A filter outside an admin's account: an account_id is not found, a
	// user_id finds nothing (an empty page). A user's filter on anyone but
	// itself finds nothing.
	{"GET /v1/keys?account_id={account}", ``, want{root: 200, adminOf: 200, adminOther: 404, userOf: 200, userOther: 200}},
	{"GET /v1/keys?user_id={user}", ``, anyKey(200)},
	{"GET /v1/keys/{key}", ``, keyOwner(200)},
	{"GET /v1/keys/{admin_key}", ``, want{root: 200, adminOf: 200, adminOther: 404, userOf: 404, userOther: 404}},
	{"PATCH /v1/keys/{key}", `{"name":"renamed"}`, keyOwner(200)},
	{"DELETE /v1/keys/{key}", ``, keyOwner(204)},
	{"POST /v1/keys/{key}/revoke", ``, keyOwner(200)},
	{"POST /v1/keys/{key}/rotate", `{"grace":"1h"}`, keyOwner(201)},
	{"POST /v1/keys/{key}/disable", ``, keyOwner(200)},
	{"POST /v1/keys/{key}/enable", ``, keyOwner(200)},
	{"POST /v1/keys/verify", `{"key":"{key_secret}"}`, onlyRoot(200)},
	// Leak reports: root, or a key holding keys:report_leak (none of
	// these), and then for keys of any account.
	{"POST /v1/leaks", `{"tokens":[{"token":"{key_secret}","source":"github"}]}`, onlyRoot(200)},

	// Metering: only root sets rate limits and credits; whoever may see a
	// key reads its credits.
	{"POST /v1/keys", `{"account_id":"{account}","role":"account_admin","rate_limits":[{"name":"m","limit":5,"window":"1m"}]}`, onlyRoot(201)},
	{"PATCH /v1/keys/{key}", `{"rate_limits":[]}`, want{root: 200, adminOf: 403, adminOther: 404, userOf: 403, userOther: 404}},
	{"PATCH /v1/accounts/{account}", `{"rate_limits":[{"name":"m","limit":5,"window":"1m"}]}`, onlyRoot(200)},
	{"GET /v1/keys/{metered_key}/credits", ``, keyOwner(200)},
	{"PUT /v1/keys/{metered_key}/credits", `{"remaining":10,"refill":{"amount":10,"interval":"24h"}}`, onlyRoot(200)},
	{"DELETE /v1/keys/{metered_key}/credits", ``, onlyRoot(204)},
	{"POST /v1/keys/{metered_key}/credits/top-up", `{"amount":5}`, onlyRoot(200)},
	{"GET /v1/anomalies", ``, want{root: 200, adminOf: 200, adminOther: 200, userOf: 403, userOther: 403}},
	{"GET /v1/anomalies?account_id={account}&type=brute_force", ``, accountManager(200)},

	// The audit log: root reads it all and verifies it; an account admin
	// reads its account's entries.
	{"GET /v1/audit", ``, want{root: 200, adminOf: 200, adminOther: 200, userOf: 403, userOther: 403}},
	{"GET /v1/audit?account_id={account}&action=key.create", ``, accountManager(200)},
	{"GET /v1/audit/verify", ``, onlyRoot(200)},
	{"GET /v1/audit/head", ``, onlyRoot(200)},
	{"GET /v1/usage", ``, want{root: 200, adminOf: 200, adminOther: 200, userOf: 403, userOther: 403}},
	{"GET /v1/usage?account_id={account}&granularity=hour", ``, accountManager(200)},
	{"GET /v1/whoami", ``, anyKey(200)},

	// Webhook endpoints: root's are global or of any account; an
	// account_admin's are of its own account; users have none.
	{"POST /v1/webhooks", `{"url":"https://hooks.example.com/{n8}"}`, want{root: 201, adminOf: 201, adminOther: 201, userOf: 403, userOther: 403}},
	{"POST /v1/webhooks", `{"account_id":"{account}","url":"https://hooks.example.com/a"}`, accountManager(201)},
	{"GET /v1/webhooks", ``, want{root: 200, adminOf: 200, adminOther: 200, userOf: 403, userOther: 403}},
	{"GET /v1/webhooks?account_id={account}", ``, accountManager(200)},

	// Provider connections: only root adds them (a connection points
	// keyward's requests and a password at a URL); root and the account's
	// admins use them and their credentials; users none. (The providers
	// are fakes: see fakeProviders.)
	{"POST /v1/providers", `{"account_id":"{account}","kind":"gitea","name":"git{n}","base_url":"https://git{n}.example.com","username":"admin","password":"admin-password"}`, onlyRoot(201)},
	{"POST /v1/providers", `{"kind":"n8n","name":"n8n","base_url":"https://n8n.example.com","username":"owner@example.com","password":"owner-password"}`,
		want{root: 400, adminOf: 403, adminOther: 403, userOf: 403, userOther: 403}},
	{"GET /v1/providers", ``, want{root: 200, adminOf: 200, adminOther: 200, userOf: 403, userOther: 403}},
	{"GET /v1/providers?account_id={account}", ``, accountManager(200)},
	{"GET /v1/credentials", ``, want{root: 200, adminOf: 200, adminOther: 200, userOf: 403, userOther: 403}},
	{"GET /v1/credentials?account_id={account}&status=active", ``, accountManager(200)},

	// IP rules: root manages global rules and any account's; an
	// account_admin its own account's; users none. A global rule is
	// outside an admin's scope (404), like another account's.
	{"POST /v1/ip-rules", `{"action":"block","cidr":"198.51.100.{n8}"}`, onlyRoot(201)},
	{"POST /v1/ip-rules", `{"account_id":"{account}","action":"block","cidr":"203.0.113.0/24","reason":"abuse"}`, onlyRoot(201).with(adminOf, 201)},
	{"POST /v1/ip-rules", `{"account_id":"{account}","action":"allow","cidr":"2001:db8::/32"}`, onlyRoot(201).with(adminOf, 201)},
	{"GET /v1/ip-rules", ``, want{root: 200, adminOf: 200, adminOther: 200, userOf: 403, userOther: 403}},
	{"GET /v1/ip-rules?account_id={account}", ``, accountManager(200)},
	{"GET /v1/ip-rules?scope=global", ``, onlyRoot(200)},
	{"DELETE /v1/ip-rules/{ip_rule}", ``, accountManager(204)},
	{"DELETE /v1/ip-rules/{global_rule}", ``, want{root: 204, adminOf: 404, adminOther: 404, userOf: 403, userOther: 403}},

	// Named roles: root, or the account's admins, and nobody puts in a
	// role, or attaches to a key through one, a permission they do not
	// hold (wildcards included: the admins hold memories:read and
	// memories:write, not memories:*). {role} is reader = [memories:read],
	// {wide_role} is wide = [memories:*].
	{"POST /v1/accounts/{account}/roles", `{"name":"r{n}","permissions":["memories:read","memories:write"]}`, accountManager(201)},
	{"POST /v1/accounts/{account}/roles", `{"name":"w{n}","permissions":["memories:*"]}`, accountManager(201).with(adminOf, 403)},
	{"POST /v1/accounts/{account}/roles", `{"name":"n{n}","permissions":["memories:*:read"]}`, accountManager(201).with(adminOf, 403)},
	{"POST /v1/accounts/{account}/roles", `{"name":"all","permissions":["*"]}`, accountManager(403)},
	{"POST /v1/accounts/{account}/roles", `{"name":"user","permissions":[]}`, accountManager(400)},
	{"GET /v1/accounts/{account}/roles", ``, accountManager(200)},
	{"GET /v1/accounts/{account}/roles/{role}", ``, accountManager(200)},
	{"PATCH /v1/accounts/{account}/roles/{role}", `{"permissions":["memories:read","memories:write"]}`, accountManager(200)},
	{"PATCH /v1/accounts/{account}/roles/{role}", `{"permissions":["memories:*"]}`, accountManager(200).with(adminOf, 403)},
	{"DELETE /v1/accounts/{account}/roles/{role}", ``, accountManager(204)},
	{"DELETE /v1/accounts/{account}/roles/{wide_role}", ``, accountManager(204)},
	{"POST /v1/keys", `{"account_id":"{account}","user_id":"{user}","roles":["{role}"]}`,
		want{root: 201, adminOf: 201, adminOther: 403, userOf: 201, userOther: 403}},
	{"POST /v1/keys", `{"account_id":"{account}","user_id":"{user}","roles":["{wide_role}"]}`, onlyRoot(201)},
	{"POST /v1/keys", `{"role":"root","roles":["{role}"]}`, onlyRoot(400)},
	{"PATCH /v1/keys/{key}", `{"roles":["{role}"]}`, keyOwner(200)},
	{"PATCH /v1/keys/{key}", `{"roles":["{wide_role}"]}`, keyOwner(200).with(adminOf, 403).with(userOf, 403)},
	{"PATCH /v1/keys/{key}", `{"roles":["nosuch"]}`, keyOwner(404)},

	// Rotation policies: root any, an account_admin those of its account
	// and its account's keys; users none (403, even for their own key).
	{"PUT /v1/accounts/{account}/rotation-policy", `{"max_age":"2160h","expire_after":"336h"}`, accountManager(200)},
	{"GET /v1/accounts/{account}/rotation-policy", ``, accountManager(200)},
	{"DELETE /v1/accounts/{account}/rotation-policy", ``, accountManager(204)},
	{"PUT /v1/keys/{key}/rotation-policy", `{"max_age":"720h"}`, accountManager(200)},
	{"GET /v1/keys/{key}/rotation-policy", ``, accountManager(200)},
	{"DELETE /v1/keys/{key}/rotation-policy", ``, accountManager(204)},
	{"PUT /v1/keys/{admin_key}/rotation-policy", `{"max_age":"720h"}`, accountManager(200)},

	// The end-user portal: root, or the account's admins, grant a user of
	// the account what they hold (the admins hold memories:read and
	// memories:write, not memories:*), and set the account's branding.
	{"POST /v1/portal/sessions", `{"account_id":"{account}","external_id":"{external_id}","permissions":["memories:read"],"return_url":"https://app.example.com/keys"}`, accountManager(201)},
	{"POST /v1/portal/sessions", `{"account_id":"{account}","external_id":"{external_id}","permissions":["memories:*"],"return_url":"https://app.example.com/keys"}`, accountManager(201).with(adminOf, 403)},
	{"GET /v1/accounts/{account}/portal-branding", ``, accountManager(200)},
	{"PUT /v1/accounts/{account}/portal-branding", `{"title":"Example","accent_color":"#1f6feb"}`, accountManager(200)},
}

// with returns a copy of w with p expecting status.
func (w want) with(p principal, status int) want {
	out := want{}
	for k, v := range w {
		out[k] = v
	}
	out[p] = status
	return out
}

// world is a fresh set of objects for the calls of the role table (see
// TestRoleTable).
type world struct {
	callers map[principal]string
	vars    map[string]string
}

func (e *env) newWorld(n int) *world {
	e.t.Helper()
	perms := []string{"memories:read", "memories:write"}
	a := e.mustAccount(fmt.Sprintf("A %d", n))
	b := e.mustAccount(fmt.Sprintf("B %d", n))
	ua, ua2, ub := e.mustUser(a.ID, "ua"), e.mustUser(a.ID, "ua2"), e.mustUser(b.ID, "ub")
	if _, err := e.svc.Tenancy.CreateUser(e.rootCtx(), a.ID, keyward.UserCreate{Name: "customer", ExternalID: "cust-" + fmt.Sprint(n)}); err != nil {
		e.t.Fatalf("create user: %v", err)
	}
	adminA := e.mustKey(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin, Permissions: perms})
	adminB := e.mustKey(keyward.KeyCreate{AccountID: b.ID, Role: keyward.RoleAccountAdmin, Permissions: perms})
	userA := e.mustKey(keyward.KeyCreate{AccountID: a.ID, UserID: ua.ID, Role: keyward.RoleUser, Permissions: perms})
	userB := e.mustKey(keyward.KeyCreate{AccountID: b.ID, UserID: ub.ID, Role: keyward.RoleUser, Permissions: perms})
	target := e.mustKey(keyward.KeyCreate{AccountID: a.ID, UserID: ua.ID, Role: keyward.RoleUser, Permissions: []string{"memories:read"}})
	metered := e.mustKey(keyward.KeyCreate{AccountID: a.ID, UserID: ua.ID, Role: keyward.RoleUser, Credits: &keyward.Credits{Remaining: 3}})
	if err := e.store.CreateAnomaly(e.t.Context(), keyward.Change{}, &keyward.Anomaly{ID: fmt.Sprintf("anm_%d", n), Type: keyward.AnomalyBruteForce, Severity: keyward.SeverityHigh, AccountID: a.ID, CreatedAt: time.Now()}); err != nil {
		e.t.Fatalf("create anomaly: %v", err)
	}
	gone := e.mustKey(keyward.KeyCreate{AccountID: a.ID, Role: keyward.RoleAccountAdmin, Permissions: perms})
	if _, err := e.svc.Keys.RevokeKey(e.rootCtx(), gone.ID); err != nil {
		e.t.Fatalf("revoke: %v", err)
	}
	// Rules on documentation networks: they never match the test client.
	acctRule, err := e.svc.Abuse.CreateIPRule(e.rootCtx(), keyward.IPRuleCreate{AccountID: a.ID, Action: keyward.IPBlock, CIDR: "192.0.2.0/24"})
	if err != nil {
		e.t.Fatalf("create ip rule: %v", err)
	}
	globalRule, err := e.svc.Abuse.CreateIPRule(e.rootCtx(), keyward.IPRuleCreate{Action: keyward.IPBlock, CIDR: fmt.Sprintf("198.18.%d.0/24", n%256)})
	if err != nil {
		e.t.Fatalf("create ip rule: %v", err)
	}
	// The named roles of the rows on roles.
	for _, r := range []keyward.RoleCreate{{Name: "reader", Permissions: []string{"memories:read"}}, {Name: "wide", Permissions: []string{"memories:*"}}} {
		if _, err := e.svc.Roles.CreateRole(e.rootCtx(), a.ID, r); err != nil {
			e.t.Fatalf("create role: %v", err)
		}
	}
	// Rotation policies of the account and of {key}, for the GET and
	// DELETE rows.
	for _, sc := range []keyward.RotationScope{{AccountID: a.ID}, {KeyID: target.ID}} {
		if _, err := e.svc.Keys.SetRotationPolicy(e.rootCtx(), sc, keyward.RotationPolicySet{MaxAge: keyward.Duration(90 * 24 * time.Hour)}); err != nil {
			e.t.Fatalf("set rotation policy: %v", err)
		}
	}
	return &world{
		callers: map[principal]string{
			noKey:      "",
			malformed:  "kw_user_notarealkeyatall",
			revoked:    gone.Secret,
			root:       e.root.Reveal(),
			adminOf:    adminA.Secret,
			adminOther: adminB.Secret,
			userOf:     userA.Secret,
			userOther:  userB.Secret,
		},
		vars: map[string]string{
			"{account}":     a.ID,
			"{user}":        ua.ID,
			"{other_user}":  ua2.ID,
			"{key}":         target.ID,
			"{key_secret}":  target.Secret,
			"{metered_key}": metered.ID,
			"{admin_key}":   adminA.ID,
			"{role}":        "reader",
			"{wide_role}":   "wide",
			"{ip_rule}":     acctRule.ID,
			"{global_rule}": globalRule.ID,
			"{external_id}": "cust-" + fmt.Sprint(n),
			"{n}":           fmt.Sprint(n),
			"{n8}":          fmt.Sprint(n % 256), // for an IPv4 address
		},
	}
}

func (w *world) expand(s string) string {
	for k, v := range w.vars {
		s = strings.ReplaceAll(s, k, v)
	}
	return s
}

// TestRoleTable runs every route of roleTable as every principal. The
// principals of a row share a world: a refused call changes nothing, and
// neither does a GET, so the next principal meets the world as the first
// did; a call of another method that succeeds spends the world (it may have
// deleted, renamed or created what the next call names), and the next
// principal gets a fresh one.
func TestRoleTable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	principals := []principal{noKey, malformed, revoked, root, adminOf, adminOther, userOf, userOther}
	n := 0
	for _, row := range roleTable {
		var w *world
		for _, p := range principals {
			name := fmt.Sprintf("%s %s as %s", row.route, row.body, p)
			t.Run(name, func(t *testing.T) {
				if w == nil {
					n++
					w = e.newWorld(n)
				}
				method, path, _ := strings.Cut(w.expand(row.route), " ")
				r := e.send(request{method: method, path: path, header: bearer(w.callers[p]), body: w.expand(row.body)})
				if method != http.MethodGet && r.status < 300 {
					w = nil
				}
				wantStatus, ok := row.want[p]
				switch p {
				case noKey, malformed, revoked:
					wantStatus, ok = http.StatusUnauthorized, true
				}
				if !ok {
					t.Fatalf("roleTable has no expectation for %s", p)
				}
				if r.status != wantStatus {
					t.Fatalf("status = %d, want %d; body: %s", r.status, wantStatus, r.body)
				}
				if wantStatus >= 400 {
					pr := r.problem(t)
					if pr.Status != wantStatus {
						t.Errorf("problem status = %d, want %d", pr.Status, wantStatus)
					}
				}
				switch p {
				case noKey:
					wantUnauthorized(t, r, "Authorization: Bearer <key>")
				case malformed, revoked:
					wantUnauthorized(t, r, "invalid API key")
				}
			})
		}
	}
}

// wantUnauthorized checks a 401: the challenge header and the detail
// (exactly "invalid API key" for a refused key, or a how-to).
func wantUnauthorized(t *testing.T, r *response, detail string) {
	t.Helper()
	if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="keyward"` {
		t.Errorf("WWW-Authenticate = %q", got)
	}
	p := r.problem(t)
	if p.Code != keyward.EUNAUTHORIZED {
		t.Errorf("code = %q, want unauthorized", p.Code)
	}
	if detail == "invalid API key" && p.Detail != detail || !strings.Contains(p.Detail, detail) {
		t.Errorf("detail = %q, want %q", p.Detail, detail)
	}
}

// TestNoPrivilegeEscalation: no caller creates or updates a key to more
// power than its own.
func TestNoPrivilegeEscalation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.newWorld(0)
	a, ua, ua2 := w.vars["{account}"], w.vars["{user}"], w.vars["{other_user}"]
	b := e.mustAccount("B other")
	admin, user := keyward.Secret(w.callers[adminOf]), keyward.Secret(w.callers[userOf])

	cases := []struct {
		name   string
		caller keyward.Secret
		create keyward.KeyCreate
		want   string // "" for allowed
	}{
		{"admin creates a root key", admin, keyward.KeyCreate{Role: keyward.RoleRoot}, keyward.EFORBIDDEN},
		{"admin creates an admin key in another account", admin, keyward.KeyCreate{AccountID: b.ID, Role: keyward.RoleAccountAdmin}, keyward.EFORBIDDEN},
		{"admin creates a key with a permission it lacks", admin, keyward.KeyCreate{AccountID: a, UserID: ua, Role: keyward.RoleUser, Permissions: []string{"billing:write"}}, keyward.EFORBIDDEN},
		{"admin creates a user key with its permissions", admin, keyward.KeyCreate{AccountID: a, UserID: ua, Role: keyward.RoleUser, Permissions: []string{"memories:write"}}, ""},
		{"user creates an admin key", user, keyward.KeyCreate{AccountID: a, Role: keyward.RoleAccountAdmin}, keyward.EFORBIDDEN},
		{"user creates a root key", user, keyward.KeyCreate{Role: keyward.RoleRoot}, keyward.EFORBIDDEN},
		{"user creates a key for another user", user, keyward.KeyCreate{AccountID: a, UserID: ua2, Role: keyward.RoleUser}, keyward.EFORBIDDEN},
		{"user creates a key with a permission it lacks", user, keyward.KeyCreate{AccountID: a, UserID: ua, Role: keyward.RoleUser, Permissions: []string{"memories:read", "keys:verify"}}, keyward.EFORBIDDEN},
		{"user creates a key with a subset of its permissions", user, keyward.KeyCreate{AccountID: a, UserID: ua, Role: keyward.RoleUser, Permissions: []string{"memories:read"}}, ""},
		{"admin creates a key with keys:verify_secrets it lacks", admin, keyward.KeyCreate{AccountID: a, Role: keyward.RoleAccountAdmin, Permissions: []string{keyward.PermissionVerifySecrets}}, keyward.EFORBIDDEN},
		{"admin creates a key with secret metadata", admin, keyward.KeyCreate{AccountID: a, UserID: ua, Role: keyward.RoleUser, SecretMeta: []byte(`{"dsn":"postgres://tenant"}`)}, ""},
		{"user creates a key with secret metadata", user, keyward.KeyCreate{AccountID: a, UserID: ua, Role: keyward.RoleUser, SecretMeta: []byte(`{"dsn":"postgres://elsewhere"}`)}, keyward.EFORBIDDEN},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k, err := e.client(c.caller).CreateKey(t.Context(), c.create)
			if k != nil && k.Secret != "" {
				e.remember(k.Secret)
			}
			if got := keyward.ErrorCode(err); got != c.want {
				t.Fatalf("CreateKey: code %q (%v), want %q", got, err, c.want)
			}
		})
	}

	t.Run("a key cannot outlive the key that grants it", func(t *testing.T) {
		exp := keywardtest.Now().Add(48 * time.Hour)
		short := e.mustKey(keyward.KeyCreate{AccountID: a, UserID: ua, Role: keyward.RoleUser, Permissions: []string{"memories:read"}, ExpiresAt: &exp})
		_, err := e.client(keyward.Secret(short.Secret)).CreateKey(t.Context(), keyward.KeyCreate{AccountID: a, UserID: ua, Role: keyward.RoleUser})
		if keyward.ErrorCode(err) != keyward.EFORBIDDEN {
			t.Fatalf("CreateKey without expiry by an expiring key: %v, want forbidden", err)
		}
	})

	// Update: permissions may not grow beyond the caller's.
	target := w.vars["{key}"]
	for _, c := range []struct {
		name   string
		caller keyward.Secret
		perms  []string
		want   string
	}{
		{"admin adds a permission it lacks", admin, []string{"memories:read", "billing:write"}, keyward.EFORBIDDEN},
		{"user adds a permission it lacks", user, []string{"memories:read", "keys:verify"}, keyward.EFORBIDDEN},
		{"user sets permissions it holds", user, []string{"memories:read", "memories:write"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.client(c.caller).UpdateKey(t.Context(), target, keyward.KeyUpdate{Permissions: &c.perms})
			if got := keyward.ErrorCode(err); got != c.want {
				t.Fatalf("UpdateKey: code %q (%v), want %q", got, err, c.want)
			}
		})
	}
	t.Run("user cannot disable its way into another user's key", func(t *testing.T) {
		other := e.mustKey(keyward.KeyCreate{AccountID: a, UserID: ua2, Role: keyward.RoleUser})
		_, err := e.client(user).DisableKey(t.Context(), other.ID)
		if keyward.ErrorCode(err) != keyward.ENOTFOUND {
			t.Fatalf("DisableKey of another user's key: %v, want not_found", err)
		}
	})
}
