// The client against a real keyward: the admin operations a service needs,
// errors, configuration from the environment, and the plain-http refusal.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Client, Guard, KeywardError } from "../dist/index.js";
import { deadURL, setup, skipReason } from "./helpers.mjs";

describe("Client against a real keyward", { skip: skipReason() }, () => {
  let kw;
  before(async () => {
    kw = await setup();
  });
  after(() => kw?.stop());

  test("keys: create, get, list with filters, update, disable, enable, rotate, revoke, delete", async () => {
    const { root, account, user } = kw;
    const k = await root.createKey({ account_id: account.id, user_id: user.id, name: "laptop", permissions: ["notes:read"], meta: { plan: "pro" } });
    assert.match(k.key, /^kw_user_/);
    assert.equal(k.role, "user");
    assert.equal(k.name, "laptop");
    const got = await root.getKey(k.id);
    assert.equal(got.id, k.id);
    assert.equal(got.key, undefined, "a read never returns the secret");
    assert.deepEqual(got.meta, { plan: "pro" });

    const mine = await root.listKeys({ user_id: user.id });
    assert.ok(mine.items.some((x) => x.id === k.id));
    assert.ok(mine.items.every((x) => x.user_id === user.id));
    const admins = await root.listKeys({ account_id: account.id, role: "account_admin" });
    assert.ok(admins.items.length >= 1 && admins.items.every((x) => x.role === "account_admin"));
    const page = await root.listKeys({ limit: 1 });
    assert.equal(page.items.length, 1);
    assert.ok(page.next, "a first page of one has a next cursor");
    const next = await root.listKeys({ limit: 1, after: page.next });
    assert.notEqual(next.items[0].id, page.items[0].id);

    assert.equal((await root.updateKey(k.id, { name: "desk" })).name, "desk");
    assert.equal((await root.disableKey(k.id)).disabled, true);
    assert.equal((await root.verifyKey({ key: k.key })).code, "DISABLED");
    assert.equal((await root.enableKey(k.id)).disabled, false);
    assert.equal((await root.verifyKey({ key: k.key })).code, "VALID");

    const r = await root.rotateKey(k.id, { grace: "1h" });
    assert.notEqual(r.key, k.key);
    assert.equal(r.rotated_from, k.id);
    assert.equal((await root.verifyKey({ key: r.key })).code, "VALID");
    assert.equal((await root.verifyKey({ key: k.key })).code, "VALID", "the old key works during the grace");
    const now = await root.rotateKey(r.id);
    assert.equal((await root.verifyKey({ key: r.key })).code, "REVOKED", "without grace the old key stops at once");

    const rev = await root.revokeKey(now.id);
    assert.ok(rev.revoked_at);
    assert.equal((await root.verifyKey({ key: now.key })).code, "REVOKED");

    await root.deleteKey(k.id);
    await assert.rejects(root.getKey(k.id), (err) => err instanceof KeywardError && err.code === "not_found" && err.status === 404);
  });

  test("revoke with cascade lists the keys the revoked key created", async () => {
    const admin = await kw.root.createKey({ account_id: kw.account.id, role: "account_admin", permissions: ["notes:read"] });
    const asAdmin = new Client({ url: kw.url, apiKey: admin.key });
    const child = await asAdmin.createKey({ account_id: kw.account.id, user_id: kw.user.id, permissions: ["notes:read"] });
    const rev = await kw.root.revokeKey(admin.id, { cascade: true });
    assert.deepEqual(rev.cascaded, [child.id]);
    assert.equal((await kw.root.verifyKey({ key: child.key })).code, "REVOKED");
  });

  test("accounts and users", async () => {
    const { root } = kw;
    const a = await root.createAccount({ name: "globex" });
    assert.equal((await root.getAccount(a.id)).name, "globex");
    assert.equal((await root.updateAccount(a.id, { name: "globex2" })).name, "globex2");
    assert.ok((await root.listAccounts()).items.some((x) => x.id === a.id));
    const u = await root.createUser(a.id, { name: "bob", external_id: "b-1" });
    assert.equal((await root.getUser(a.id, u.id)).external_id, "b-1");
    assert.deepEqual((await root.listUsers(a.id)).items.map((x) => x.id), [u.id]);
    const updated = await root.updateUser(a.id, u.id, { external_id: "b-2", meta: { plan: "pro" }, secret_meta: { dsn: "postgres://bob" } });
    assert.equal(updated.external_id, "b-2");
    assert.equal(updated.has_secret_meta, true);
    assert.equal(updated.secret_meta, undefined, "a user never returns its secret metadata");
    assert.equal((await root.lookupUser(a.id, "b-2")).id, u.id);
    await assert.rejects(root.lookupUser(a.id, "b-1"), { code: "not_found" });
    const other = await root.createUser(a.id, { name: "carol", external_id: "c-1" });
    await assert.rejects(root.updateUser(a.id, other.id, { external_id: "b-2" }), { code: "conflict" });
    // The user's keys verify with its external id and inherit its meta.
    const k = await root.createKey({ account_id: a.id, user_id: u.id, meta: { region: "eu" } });
    const res = await root.verifyKey({ key: k.key });
    assert.equal(res.identity?.external_id, "b-2");
    assert.deepEqual(res.meta, { plan: "pro", region: "eu" });
    assert.deepEqual(res.secret_meta, { dsn: "postgres://bob" });
    await root.deleteUser(a.id, other.id);
    await root.deleteUser(a.id, u.id);
    await assert.rejects(root.getUser(a.id, u.id), { code: "not_found" });
    await root.deleteAccount(a.id);
    await assert.rejects(root.getAccount(a.id), { code: "not_found" });
    await assert.rejects(root.getAccount(""), { code: "not_found" }, "an empty id is not another route");
  });

  test("credits: get, set, top up, remove", async () => {
    const { root } = kw;
    const k = await root.createKey({ account_id: kw.account.id, user_id: kw.user.id, credits: { remaining: 2 } });
    assert.equal((await root.getCredits(k.id)).remaining, 2);
    assert.equal((await root.verifyKey({ key: k.key, cost: 2 })).credits_remaining, 0);
    assert.equal((await root.verifyKey({ key: k.key })).code, "USAGE_EXCEEDED");
    assert.equal((await root.topUpCredits(k.id, 5)).remaining, 5);
    assert.equal((await root.setCredits(k.id, { remaining: 1 })).remaining, 1);
    assert.equal(await root.setCredits(k.id, null), null);
    assert.equal((await root.verifyKey({ key: k.key })).credits_remaining, undefined);
  });

  test("verify: every outcome is a result; the verifier's own key refused is an error", async () => {
    const v = new Client({ url: kw.url, apiKey: kw.verifierKey });
    const k = await kw.userKey(["notes:read"]);
    const ok = await v.verifyKey({ key: k.key, permissions: ["notes:read"], agent: "claude" });
    assert.equal(ok.valid, true);
    assert.equal(ok.identity.key_id, k.id);
    assert.equal(ok.identity.agent, "claude");
    assert.equal((await v.verifyKey({ key: k.key, permissions: ["notes:write"] })).code, "INSUFFICIENT_PERMISSIONS");
    assert.equal((await v.verifyKey({ key: "nope" })).code, "MALFORMED");
    const user = new Client({ url: kw.url, apiKey: k.key });
    await assert.rejects(user.verifyKey({ key: k.key }), (err) => err.code === "forbidden" && err.status === 403 && /keys:verify/.test(err.message));
    const nobody = new Client({ url: kw.url, apiKey: "kw_user_bogus" });
    await assert.rejects(nobody.whoami(), { code: "unauthorized" });
  });

  test("portal: a session's link works once; branding set then read back; bad requests are refused", async () => {
    const { root, account, url } = kw;
    const u = await root.createUser(account.id, { name: "carol", external_id: "cust-portal" });
    const link = await root.createPortalSession({
      account_id: account.id,
      external_id: "cust-portal",
      return_url: "https://shop.example/",
      permissions: ["notes:read"],
      link_ttl: "2m",
    });
    assert.equal(link.user_id, u.id);
    assert.deepEqual(link.permissions, ["notes:read"]);
    assert.ok(link.url.startsWith(url + "/portal/link/"), link.url);
    assert.equal(link.started_at, undefined, "the link is not used yet");
    assert.equal(Date.parse(link.link_expires_at) - Date.parse(link.created_at), 120_000);

    const first = await fetch(link.url, { redirect: "manual" });
    await first.body?.cancel();
    assert.ok(first.status >= 300 && first.status < 400, `the link leads to the portal (status ${first.status})`);
    assert.match(first.headers.get("location") ?? "", /\/portal\/keys$/);
    assert.ok(first.headers.get("set-cookie"), "the link starts a session");
    const second = await fetch(link.url, { redirect: "manual" });
    await second.body?.cancel();
    assert.equal(second.status, 404, "a link works once");

    await assert.rejects(
      root.createPortalSession({ account_id: account.id, external_id: "cust-portal", return_url: "javascript:alert(1)" }),
      (err) => err instanceof KeywardError && err.code === "invalid" && err.status === 400,
    );
    await assert.rejects(
      root.createPortalSession({ account_id: account.id, external_id: "nobody", return_url: "https://shop.example/" }),
      (err) => err instanceof KeywardError && err.code === "not_found",
    );

    const empty = await root.getPortalBranding(account.id);
    assert.equal(empty.account_id, account.id);
    assert.equal(empty.title ?? "", "", "no branding set yet");
    const set = await root.setPortalBranding(account.id, { title: "Acme keys", accent_color: "#112233" });
    assert.equal(set.title, "Acme keys");
    assert.equal(set.accent_color, "#112233");
    const got = await root.getPortalBranding(account.id);
    assert.equal(got.title, "Acme keys");
    assert.equal(got.accent_color, "#112233");
    await assert.rejects(
      root.setPortalBranding(account.id, { accent_color: "red;}body{" }),
      (err) => err instanceof KeywardError && err.code === "invalid" && err.status === 400,
    );
    assert.equal((await root.getPortalBranding(account.id)).accent_color, "#112233", "a refused branding changes nothing");
  });

  test("whoami and the agent option", async () => {
    const id = await new Client({ url: kw.url, apiKey: kw.verifierKey, agent: "billing" }).whoami();
    assert.equal(id.role, "account_admin");
    assert.equal(id.agent, "billing");
  });

  test("configured from KEYWARD_URL and KEYWARD_API_KEY; explicit options win", async (t) => {
    const saved = { url: process.env.KEYWARD_URL, key: process.env.KEYWARD_API_KEY };
    t.after(() => {
      for (const [k, v] of [["KEYWARD_URL", saved.url], ["KEYWARD_API_KEY", saved.key]]) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    });
    process.env.KEYWARD_URL = kw.url + "/";
    process.env.KEYWARD_API_KEY = kw.verifierKey;
    const fromEnv = new Client();
    assert.equal(fromEnv.url, kw.url);
    assert.equal((await fromEnv.whoami()).role, "account_admin");
    assert.equal((await new Client({ apiKey: kw.rootKey }).whoami()).role, "root");
    process.env.KEYWARD_URL = await deadURL();
    assert.equal(new Client({ url: kw.url }).url, kw.url);
  });

  test("the API key is not in the client's printed or serialised form", () => {
    const c = new Client({ url: kw.url, apiKey: kw.rootKey });
    assert.ok(!JSON.stringify(c).includes(kw.rootKey));
    assert.ok(!String(Object.values(c)).includes(kw.rootKey));
  });
});

describe("Client without a keyward", () => {
  test("plain http to a host that is not loopback is refused unless allowed", () => {
    for (const url of ["http://keyward.example.com", "http://10.0.0.5:8080", "http://[2001:db8::1]/"]) {
      assert.throws(() => new Client({ url, apiKey: "k" }), (err) => err instanceof KeywardError && err.code === "invalid" && /allowInsecureHttp/.test(err.message));
      assert.equal(new Client({ url, allowInsecureHttp: true }).url, url.replace(/\/$/, ""));
    }
    for (const url of ["http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080", "https://keyward.example.com"]) {
      assert.doesNotThrow(() => new Client({ url }));
    }
    assert.throws(() => new Client({ url: "ftp://keyward.example.com" }), { code: "invalid" });
    assert.throws(() => new Client({ url: "https://user:pw@keyward.example.com" }), { code: "invalid" });
  });

  test("the plain-http check applies to KEYWARD_URL too", (t) => {
    const saved = process.env.KEYWARD_URL;
    t.after(() => (saved === undefined ? delete process.env.KEYWARD_URL : (process.env.KEYWARD_URL = saved)));
    process.env.KEYWARD_URL = "http://keyward.internal";
    assert.throws(() => new Client(), { code: "invalid" });
  });

  test("middleware options are checked when the middleware is made", () => {
    const verifier = new Client();
    assert.throws(() => new Guard({ verifier, exempt: ["healthz"] }), { code: "invalid" });
    assert.throws(() => new Guard({ verifier, wwwAuthenticate: "Bearer\r\nX-Evil: 1" }), { code: "invalid" });
    assert.throws(() => new Guard({ client: { url: "http://keyward.internal" } }), (err) => /allowInsecureHttp/.test(err.message));
    assert.doesNotThrow(() => new Guard({ verifier, exempt: ["/healthz"], wwwAuthenticate: 'ApiKey realm="notes"' }));
  });

  test("keyward unreachable: a KeywardError with code unavailable", async () => {
    const c = new Client({ url: await deadURL(), apiKey: "k" });
    await assert.rejects(c.verifyKey({ key: "x" }), (err) => err instanceof KeywardError && err.code === "unavailable" && /cannot reach keyward/.test(err.message));
  });
});
