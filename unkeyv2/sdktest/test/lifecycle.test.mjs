// Runs the published @unkey/api SDK against the real keyward binary: the SDK's
// server URL is keyward's, its root key a keyward root key, and every call goes
// through the SDK's own request building and response validation.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, test } from "node:test";
import { setTimeout as sleepUntil } from "node:timers/promises";
import { Unkey } from "@unkey/api";
import * as errors from "@unkey/api/models/errors";
import { missingBinary, startKeyward } from "../../../sdk/typescript/scripts/server.mjs";

// With CI=true a missing binary fails the tests instead of skipping them.
const why = missingBinary();
if (why && process.env.CI === "true") throw new Error(`CI=true: ${why}`);
const skip = why || false;

let kw;
let unkey;
let apiId;

before(async () => {
  if (skip) return;
  kw = await startKeyward();
  unkey = new Unkey({ rootKey: kw.rootKey, serverURL: kw.url, retryConfig: { strategy: "none" } });
  apiId = (await unkey.apis.createApi({ name: "acme" })).data.apiId;
  // Named roles are keyward's own API: the SDK's roles name them.
  const res = await fetch(`${kw.url}/v1/accounts/${apiId}/roles`, {
    method: "POST",
    headers: { Authorization: `Bearer ${kw.rootKey}` },
    body: JSON.stringify({ name: "reader", permissions: ["docs.read"] }),
  });
  assert.equal(res.status, 201, await res.text());
});

after(async () => {
  await kw?.stop();
});

/** Expects fn to throw an error of class cls; returns it. */
async function refused(fn, cls) {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof cls, `${err.name}: ${err.message}`);
    return err;
  }
  assert.fail(`expected ${cls.name}`);
}

test("apis: create, get, delete", { skip }, async () => {
  const { data } = await unkey.apis.createApi({ name: "temp" });
  const got = await unkey.apis.getApi({ apiId: data.apiId });
  assert.deepEqual(got.data, { id: data.apiId, name: "temp" });
  assert.match(got.meta.requestId, /^req_/);
  await unkey.apis.deleteApi({ apiId: data.apiId });
  const err = await refused(() => unkey.apis.getApi({ apiId: data.apiId }), errors.NotFoundErrorResponse);
  assert.equal(err.error.status, 404);
});

test("the key lifecycle through the SDK", { skip }, async () => {
  const { data: created } = await unkey.keys.createKey({
    apiId,
    name: "ci",
    externalId: "user-1",
    meta: { plan: "pro" },
    roles: ["reader"],
    permissions: ["docs.write"],
    credits: { remaining: 3, refill: { interval: "daily", amount: 3 } },
    ratelimits: [{ name: "per-minute", limit: 2, duration: 60_000, autoApply: true }],
  });
  const { keyId, key } = created;
  assert.match(keyId, /^key_/);

  let v = (await unkey.keys.verifyKey({ key, permissions: "docs.read AND docs.write" })).data;
  assert.equal(v.valid, true);
  assert.equal(v.code, "VALID");
  assert.equal(v.keyId, keyId);
  assert.equal(v.name, "ci");
  assert.equal(v.credits, 2);
  assert.deepEqual(v.meta, { plan: "pro" });
  assert.deepEqual(v.roles, ["reader"]);
  assert.ok(v.permissions.includes("docs.read"));
  assert.equal(v.identity.externalId, "user-1");
  assert.equal(v.ratelimits[0].remaining, 1);

  v = (await unkey.keys.verifyKey({ key, permissions: "admin" })).data;
  assert.equal(v.code, "INSUFFICIENT_PERMISSIONS");
  assert.equal(v.valid, false);

  // A migrationId is accepted: keyward finds imported keys without one.
  assert.equal((await unkey.keys.verifyKey({ key, migrationId: "m1" })).data.code, "VALID");
  v = (await unkey.keys.verifyKey({ key })).data;
  assert.equal(v.code, "RATE_LIMITED");
  assert.equal(v.ratelimits[0].exceeded, true);

  // Lift the limit, then spend the last credit.
  await unkey.keys.updateKey({ keyId, ratelimits: [], name: "ci-2" });
  assert.equal((await unkey.keys.verifyKey({ key })).data.credits, 0);
  assert.equal((await unkey.keys.verifyKey({ key })).data.code, "USAGE_EXCEEDED");

  await unkey.keys.updateKey({ keyId, credits: { remaining: 100 }, enabled: false });
  v = (await unkey.keys.verifyKey({ key })).data;
  assert.equal(v.code, "DISABLED");
  assert.equal(v.enabled, false);
  await unkey.keys.updateKey({ keyId, enabled: true });

  const got = (await unkey.keys.getKey({ keyId })).data;
  assert.equal(got.name, "ci-2");
  assert.equal(got.enabled, true);
  assert.equal(got.credits.remaining, 100);
  assert.equal(got.identity.externalId, "user-1");
  assert.deepEqual((await unkey.keys.whoami({ key })).data.keyId, keyId);

  await unkey.keys.deleteKey({ keyId });
  assert.equal((await unkey.keys.verifyKey({ key })).data.code, "NOT_FOUND");
  await refused(() => unkey.keys.getKey({ keyId }), errors.NotFoundErrorResponse);
});

test("a limit with autoApply false counts when verifyKey names it", { skip }, async () => {
  const { data } = await unkey.keys.createKey({
    apiId,
    ratelimits: [
      { name: "requests", limit: 10, duration: 60_000, autoApply: true },
      { name: "tokens", limit: 1, duration: 60_000, autoApply: false },
    ],
  });
  const got = (await unkey.keys.getKey({ keyId: data.keyId })).data;
  assert.deepEqual(got.ratelimits.map((l) => [l.name, l.autoApply]), [["requests", true], ["tokens", false]]);
  let v = (await unkey.keys.verifyKey({ key: data.key })).data;
  assert.deepEqual(v.ratelimits.map((l) => l.name), ["requests"]);
  v = (await unkey.keys.verifyKey({ key: data.key, ratelimits: [{ name: "tokens" }] })).data;
  assert.equal(v.code, "VALID");
  assert.deepEqual(v.ratelimits.map((l) => [l.name, l.autoApply, l.remaining]), [["requests", true, 8], ["tokens", false, 0]]);
  v = (await unkey.keys.verifyKey({ key: data.key, ratelimits: [{ name: "tokens" }] })).data;
  assert.equal(v.code, "RATE_LIMITED");
  assert.equal((await unkey.keys.verifyKey({ key: data.key })).data.code, "VALID");
});

test("a monthly refill on a refillDay", { skip }, async () => {
  const { data } = await unkey.keys.createKey({
    apiId,
    credits: { remaining: 3, refill: { interval: "monthly", amount: 10, refillDay: 31 } },
  });
  const got = (await unkey.keys.getKey({ keyId: data.keyId })).data;
  assert.deepEqual(got.credits, { remaining: 3, refill: { interval: "monthly", amount: 10, refillDay: 31 } });
  assert.equal((await unkey.keys.verifyKey({ key: data.key })).data.credits, 2);
  await unkey.keys.updateCredits({ keyId: data.keyId, operation: "set", value: 7 });
  assert.equal((await unkey.keys.getKey({ keyId: data.keyId })).data.credits.refill.refillDay, 31);
});

test("an expired key", { skip }, async () => {
  const expires = Date.now() + 1000;
  const { data } = await unkey.keys.createKey({ apiId, expires });
  assert.equal((await unkey.keys.verifyKey({ key: data.key })).data.code, "VALID");
  // Expiry is the wall clock: wait until it has passed.
  await sleepUntil(Math.max(0, expires - Date.now() + 50));
  const v = (await unkey.keys.verifyKey({ key: data.key })).data;
  assert.equal(v.code, "EXPIRED");
  assert.equal(v.expires, expires);
});

test("listKeys pages with a cursor", { skip }, async () => {
  const { data } = await unkey.apis.createApi({ name: "paged" });
  const ids = [];
  for (let i = 0; i < 3; i++) ids.push((await unkey.keys.createKey({ apiId: data.apiId, externalId: "u" })).data.keyId);
  // The SDK's page iterator follows pagination.cursor until it is absent.
  const seen = [];
  const more = [];
  for await (const page of await unkey.apis.listKeys({ apiId: data.apiId, limit: 2 })) {
    seen.push(...page.result.data.map((k) => k.keyId));
    more.push(page.result.pagination.hasMore);
  }
  assert.deepEqual(more, [true, false]);
  // Ids order keys made within one millisecond by their random part.
  assert.deepEqual(seen.sort(), ids.sort());
});

test("refusals reach the SDK as its error classes", { skip }, async () => {
  let err = await refused(() => unkey.keys.createKey({ apiId, recoverable: true }), errors.BadRequestErrorResponse);
  assert.equal(err.error.errors[0].location, "body.recoverable");
  err = await refused(
    () => unkey.keys.createKey({ apiId, credits: { remaining: 1, refill: { interval: "monthly", amount: 1 } } }),
    errors.BadRequestErrorResponse,
  );
  assert.equal(err.error.errors[0].location, "body.credits.refill.refillDay");
  err = await refused(() => unkey.keys.verifyKey({ key: "x", tags: ["a"] }), errors.BadRequestErrorResponse);
  assert.equal(err.error.errors[0].location, "body.tags");
  const stranger = new Unkey({ rootKey: "kw_root_" + "A".repeat(49), serverURL: kw.url, retryConfig: { strategy: "none" } });
  err = await refused(() => stranger.apis.getApi({ apiId }), errors.UnauthorizedErrorResponse);
  assert.equal(err.error.status, 401);
});

test("reroll, credits, permissions and roles through the SDK", { skip }, async () => {
  const { data } = await unkey.keys.createKey({ apiId, externalId: "user-2", credits: { remaining: 5 } });
  const rolled = (await unkey.keys.rerollKey({ keyId: data.keyId, expiration: 0 })).data;
  assert.notEqual(rolled.keyId, data.keyId);
  assert.equal((await unkey.keys.verifyKey({ key: data.key })).data.code, "NOT_FOUND");
  const v = (await unkey.keys.verifyKey({ key: rolled.key })).data;
  assert.equal(v.code, "VALID");
  assert.equal(v.identity.externalId, "user-2");

  let credits = (await unkey.keys.updateCredits({ keyId: rolled.keyId, operation: "set", value: 10 })).data;
  assert.equal(credits.remaining, 10);
  credits = (await unkey.keys.updateCredits({ keyId: rolled.keyId, operation: "increment", value: 5 })).data;
  assert.equal(credits.remaining, 15);
  credits = (await unkey.keys.updateCredits({ keyId: rolled.keyId, operation: "decrement", value: 6 })).data;
  assert.equal(credits.remaining, 9);
  credits = (await unkey.keys.updateCredits({ keyId: rolled.keyId, operation: "decrement", value: 100 })).data;
  assert.equal(credits.remaining, 0);
  assert.equal((await unkey.keys.verifyKey({ key: rolled.key })).data.code, "USAGE_EXCEEDED");
  credits = (await unkey.keys.updateCredits({ keyId: rolled.keyId, operation: "set", value: null })).data;
  assert.equal(credits.remaining, null);

  const perms = (await unkey.keys.addPermissions({ keyId: rolled.keyId, permissions: ["docs.write"] })).data;
  assert.deepEqual(perms.map((p) => p.slug), ["docs.write"]);
  const roles = (await unkey.keys.setRoles({ keyId: rolled.keyId, roles: ["reader"] })).data;
  assert.deepEqual(roles.map((r) => r.name), ["reader"]);
  assert.equal((await unkey.keys.verifyKey({ key: rolled.key, permissions: "docs.read AND docs.write" })).data.code, "VALID");
  await unkey.keys.removePermissions({ keyId: rolled.keyId, permissions: ["docs.write"] });
  await unkey.keys.removeRoles({ keyId: rolled.keyId, roles: ["reader"] });
  assert.equal((await unkey.keys.verifyKey({ key: rolled.key, permissions: "docs.read" })).data.code, "INSUFFICIENT_PERMISSIONS");
  await unkey.keys.setPermissions({ keyId: rolled.keyId, permissions: ["docs.read"] });
  assert.equal((await unkey.keys.verifyKey({ key: rolled.key, permissions: "docs.read" })).data.code, "VALID");
});

test("migrate a key by its hash, then verify it", { skip }, async () => {
  const raw = "uk_5Tq9LmZx2RbW7cYn4KdP8s";
  const hash = createHash("sha256").update(raw).digest("base64");
  assert.equal((await unkey.keys.verifyKey({ key: raw })).data.code, "NOT_FOUND");
  const { data } = await unkey.keys.migrateKeys({
    migrationId: "from-unkey",
    apiId,
    keys: [{ hash, name: "migrated", externalId: "user-3", permissions: ["docs.read"], meta: { plan: "pro" } }],
  });
  assert.deepEqual(data.failed, []);
  assert.equal(data.migrated[0].hash, hash);
  // A digest imported and not yet used is a conflict.
  const err = await refused(() => unkey.keys.migrateKeys({ migrationId: "again", apiId, keys: [{ hash }] }), errors.UnkeyError);
  assert.equal(err.statusCode, 409);
  const v = (await unkey.keys.verifyKey({ key: raw, permissions: "docs.read" })).data;
  assert.equal(v.code, "VALID");
  assert.equal(v.keyId, data.migrated[0].keyId);
  assert.equal(v.identity.externalId, "user-3");
  assert.deepEqual(v.meta, { plan: "pro" });
});

test("ratelimit.limit: a standalone limit through the SDK", { skip }, async () => {
  const ask = (identifier) => unkey.ratelimit.limit({ namespace: "email", identifier, limit: 2, duration: 60_000 });
  const first = (await ask("user_1")).data;
  assert.equal(first.success, true);
  assert.equal(first.limit, 2);
  assert.equal(first.remaining, 1);
  assert.equal((await ask("user_1")).data.remaining, 0);
  const third = (await ask("user_1")).data;
  assert.equal(third.success, false, "the third call in the window is refused");
  assert.ok(third.reset > Date.now() - 1000, "reset is a time in the window, in milliseconds");
  assert.equal((await ask("user_2")).data.success, true, "another identifier counts apart");
});

test("identities and roles through the SDK, in the API the header names", { skip }, async () => {
  // The deployment has several APIs by now: a root key names the one
  // identities and roles belong to.
  const inApi = { headers: { "X-Keyward-Api-Id": apiId } };
  const err = await refused(() => unkey.identities.listIdentities({}), errors.BadRequestErrorResponse);
  assert.equal(err.error.errors[0].location, "header.X-Keyward-Api-Id");

  const orgLimit = { name: "org", limit: 100, duration: 60_000, autoApply: true };
  const { identityId } = (
    await unkey.identities.createIdentity({ externalId: "org-1", meta: { tier: "gold" }, ratelimits: [orgLimit] }, inApi)
  ).data;
  let idn = (await unkey.identities.getIdentity({ identity: "org-1" }, inApi)).data;
  assert.equal(idn.id, identityId);
  assert.deepEqual(idn.meta, { tier: "gold" });
  assert.deepEqual(idn.ratelimits, [{ id: "org", name: "org", limit: 100, duration: 60_000, autoApply: true }]);

  const { key } = (await unkey.keys.createKey({ apiId, externalId: "org-1", name: "org key" })).data;
  let v = (await unkey.keys.verifyKey({ key })).data;
  assert.equal(v.name, "org key");
  assert.equal(v.identity.id, identityId);
  assert.deepEqual(v.identity.meta, { tier: "gold" });
  assert.equal(v.identity.ratelimits[0].name, "org");

  idn = (await unkey.identities.updateIdentity({ identity: identityId, meta: { tier: "silver" }, ratelimits: [] }, inApi)).data;
  assert.deepEqual(idn.meta, { tier: "silver" });
  assert.equal(idn.ratelimits, undefined);
  const listed = [];
  for await (const page of await unkey.identities.listIdentities({ limit: 50 }, inApi)) {
    listed.push(...page.result.data.map((i) => i.externalId));
  }
  assert.ok(listed.includes("org-1"), listed.join(","));

  await unkey.identities.deleteIdentity({ identity: "org-1" }, inApi);
  await refused(() => unkey.identities.getIdentity({ identity: "org-1" }, inApi), errors.NotFoundErrorResponse);
  v = (await unkey.keys.verifyKey({ key })).data;
  assert.equal(v.code, "VALID");
  assert.equal(v.identity, undefined);

  // Roles: named roles of the API, granted to keys by name.
  assert.equal((await unkey.permissions.createRole({ name: "editor", permissions: ["docs.edit"] }, inApi)).data.roleId, "editor");
  const role = (await unkey.permissions.getRole({ role: "editor" }, inApi)).data;
  assert.deepEqual(role.permissions.map((p) => p.slug), ["docs.edit"]);
  const roles = [];
  for await (const page of await unkey.permissions.listRoles({ limit: 1 }, inApi)) {
    roles.push(...page.result.data.map((r) => r.name));
  }
  assert.deepEqual(roles.sort(), ["editor", "reader"]);
  const perms = (await unkey.permissions.setRolePermissions({ roleId: "editor", permissions: ["docs.edit", "docs.publish"] }, inApi)).data;
  assert.deepEqual(perms.map((p) => p.slug), ["docs.edit", "docs.publish"]);
  await unkey.keys.addRoles({ keyId: (await unkey.keys.whoami({ key })).data.keyId, roles: ["editor"] });
  assert.equal((await unkey.keys.verifyKey({ key, permissions: "docs.publish" })).data.code, "VALID");
  await unkey.permissions.deleteRole({ role: "editor" }, inApi);
  assert.equal((await unkey.keys.verifyKey({ key, permissions: "docs.publish" })).data.code, "INSUFFICIENT_PERMISSIONS");
  const perm = await refused(() => unkey.permissions.createPermission({ name: "docs.edit", slug: "docs.edit" }), errors.BadRequestErrorResponse);
  assert.equal(perm.error.errors[0].location, "path");
});
