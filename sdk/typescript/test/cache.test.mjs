// CachedVerifier in front of a real keyward: what is cached, for how long,
// what never is, and what happens when keyward goes away.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { CachedVerifier, Client, KeywardError } from "../dist/index.js";
import { startKeyward } from "../scripts/server.mjs";
import { deadURL, fakeClock, setup, skipReason } from "./helpers.mjs";

/** counting wraps a real Client and counts the calls that reach keyward. */
function counting(client) {
  const c = {
    calls: 0,
    verifyKey(req, opts) {
      c.calls++;
      return client.verifyKey(req, opts);
    },
  };
  return c;
}

describe("CachedVerifier against a real keyward", { skip: skipReason() }, () => {
  let kw;
  let remote;
  before(async () => {
    kw = await setup();
    remote = new Client({ url: kw.url, apiKey: kw.verifierKey });
  });
  after(() => kw?.stop());

  test("a VALID answer is reused for the TTL, then asked again; revocation is seen then", async () => {
    const clock = fakeClock();
    const inner = counting(remote);
    const v = new CachedVerifier(inner, { ttlMs: 10_000, now: clock.now });
    const k = await kw.userKey(["notes:read"]);
    assert.equal((await v.verifyKey({ key: k.key })).code, "VALID");
    assert.equal((await v.verifyKey({ key: k.key })).code, "VALID");
    assert.equal(inner.calls, 1);
    await kw.root.revokeKey(k.id);
    clock.advance(9_999);
    assert.equal((await v.verifyKey({ key: k.key })).code, "VALID", "within the TTL the revocation is not seen");
    assert.equal(inner.calls, 1);
    clock.advance(1);
    assert.equal((await v.verifyKey({ key: k.key })).code, "REVOKED");
    assert.equal(inner.calls, 2);
  });

  test("lookup answers from the cache alone: undefined on a miss, after the TTL and for a metered key", async () => {
    const clock = fakeClock();
    const inner = counting(remote);
    const v = new CachedVerifier(inner, { ttlMs: 10_000, now: clock.now });
    const k = await kw.userKey(["notes:read"]);
    assert.equal(v.lookup({ key: k.key }), undefined);
    await v.verifyKey({ key: k.key });
    const hit = v.lookup({ key: k.key, agent: "claude" });
    assert.equal(hit.code, "VALID");
    assert.equal(hit.identity.key_id, k.id);
    assert.equal(hit.identity.agent, "claude", "the hit carries the request's agent");
    assert.equal(v.lookup({ key: k.key, permissions: ["other"] }), undefined, "another permission set is another entry");
    assert.equal((await v.verifyKey({ key: "kw_user_nope" })).code, "MALFORMED");
    assert.equal(v.lookup({ key: "kw_user_nope" }).code, "MALFORMED", "refusals are cached too");
    clock.advance(10_000);
    assert.equal(v.lookup({ key: k.key }), undefined, "expired");
    const limited = await kw.root.createKey({ account_id: kw.account.id, user_id: kw.user.id, rate_limits: [{ name: "m", limit: 100, window: "1m" }] });
    await v.verifyKey({ key: limited.key });
    assert.equal(v.lookup({ key: limited.key }), undefined, "a metered key must reach keyward every time");
    assert.equal(inner.calls, 3);
  });

  test("the entry depends on the permissions (as a set) and the IP, not on the agent", async () => {
    const inner = counting(remote);
    const v = new CachedVerifier(inner);
    const k = await kw.userKey(["a", "b"]);
    await v.verifyKey({ key: k.key, permissions: ["a", "b"] });
    await v.verifyKey({ key: k.key, permissions: ["b", "a", "a"] });
    assert.equal(inner.calls, 1);
    assert.equal((await v.verifyKey({ key: k.key, permissions: ["c"] })).code, "INSUFFICIENT_PERMISSIONS");
    await v.verifyKey({ key: k.key, permissions: ["a", "b"], ip: "127.0.0.2" });
    assert.equal(inner.calls, 3);
    const a = await v.verifyKey({ key: k.key, permissions: ["a", "b"], agent: "claude" });
    const b = await v.verifyKey({ key: k.key, permissions: ["a", "b"] });
    assert.equal(inner.calls, 3);
    assert.equal(a.identity.agent, "claude");
    assert.equal(b.identity.agent, undefined);
    assert.ok(Object.isFrozen(b) && Object.isFrozen(b.identity), "cached answers cannot be changed by a handler");
  });

  test("refusals are cached for the negative TTL", async () => {
    const clock = fakeClock();
    const inner = counting(remote);
    const v = new CachedVerifier(inner, { negativeTtlMs: 2_000, now: clock.now });
    const bad = { key: "kw_user_" + "A".repeat(49) };
    assert.equal((await v.verifyKey(bad)).code, "MALFORMED");
    assert.equal((await v.verifyKey(bad)).code, "MALFORMED");
    assert.equal(inner.calls, 1);
    clock.advance(2_000);
    await v.verifyKey(bad);
    assert.equal(inner.calls, 2);
  });

  test("negative TTLs turn caching off", async () => {
    const inner = counting(remote);
    const v = new CachedVerifier(inner, { ttlMs: -1, negativeTtlMs: -1 });
    const k = await kw.userKey();
    await v.verifyKey({ key: k.key });
    await v.verifyKey({ key: k.key });
    await v.verifyKey({ key: "nope" });
    await v.verifyKey({ key: "nope" });
    assert.equal(inner.calls, 4);
  });

  test("a key with rate limits or credits is never cached: every request is counted by keyward", async () => {
    const inner = counting(remote);
    const v = new CachedVerifier(inner);
    const limited = await kw.root.createKey({ account_id: kw.account.id, user_id: kw.user.id, rate_limits: [{ name: "m", limit: 3, window: "1m" }] });
    const remaining = [];
    for (let i = 0; i < 4; i++) {
      const r = await v.verifyKey({ key: limited.key });
      remaining.push(r.code === "VALID" ? r.rate_limits[0].remaining : r.code);
    }
    assert.deepEqual(remaining, [2, 1, 0, "RATE_LIMITED"]);
    assert.equal(inner.calls, 4);
    const paid = await kw.root.createKey({ account_id: kw.account.id, user_id: kw.user.id, credits: { remaining: 10 } });
    await v.verifyKey({ key: paid.key });
    await v.verifyKey({ key: paid.key });
    assert.equal((await kw.root.getCredits(paid.id)).remaining, 8);
  });

  test("concurrent requests for an uncached key make one call; metered keys do not share it", async () => {
    const inner = counting(remote);
    const v = new CachedVerifier(inner);
    const k = await kw.userKey();
    const res = await Promise.all(Array.from({ length: 20 }, () => v.verifyKey({ key: k.key })));
    assert.ok(res.every((r) => r.code === "VALID"));
    assert.equal(inner.calls, 1);
    const paid = await kw.root.createKey({ account_id: kw.account.id, user_id: kw.user.id, credits: { remaining: 100 } });
    await Promise.all(Array.from({ length: 5 }, () => v.verifyKey({ key: paid.key })));
    assert.equal((await kw.root.getCredits(paid.id)).remaining, 95, "each request spent its credit");
  });

  test("an answer is not kept past the key's expiry", async () => {
    const clock = fakeClock();
    const inner = counting(remote);
    const v = new CachedVerifier(inner, { ttlMs: 7_200_000, now: clock.now });
    const k = await kw.userKey([], { expires_at: new Date(Date.now() + 3_600_000).toISOString() });
    const expires = Date.parse((await v.verifyKey({ key: k.key })).expires_at);
    clock.advance(expires - clock.now() - 1);
    await v.verifyKey({ key: k.key });
    assert.equal(inner.calls, 1);
    clock.advance(1);
    await v.verifyKey({ key: k.key });
    assert.equal(inner.calls, 2);
  });

  test("errors are thrown and never cached", async () => {
    const refused = counting(new Client({ url: kw.url, apiKey: (await kw.userKey()).key }));
    const v = new CachedVerifier(refused);
    const k = await kw.userKey();
    for (let i = 0; i < 2; i++) {
      await assert.rejects(v.verifyKey({ key: k.key }), { code: "forbidden" });
    }
    assert.equal(refused.calls, 2);
  });

  test("a request whose signal aborts stops waiting; the others still get the answer", async () => {
    let release;
    const gate = new Promise((r) => (release = r));
    const slow = { verifyKey: async (req, opts) => (await gate, remote.verifyKey(req, opts)) };
    const v = new CachedVerifier(slow);
    const k = await kw.userKey();
    const ac = new AbortController();
    const first = v.verifyKey({ key: k.key }, { signal: ac.signal });
    const second = v.verifyKey({ key: k.key });
    ac.abort();
    await assert.rejects(first, (err) => err instanceof KeywardError && err.code === "unavailable");
    release();
    assert.equal((await second).code, "VALID");
  });

  test("keyward gone: cached keys keep working, uncached ones fail with unavailable", async () => {
    const other = await startKeyward();
    try {
      const root = new Client({ url: other.url, apiKey: other.rootKey });
      const a = await root.createKey({ role: "root" });
      const b = await root.createKey({ role: "root" });
      const v = new CachedVerifier(new Client({ url: other.url, apiKey: other.rootKey }));
      assert.equal((await v.verifyKey({ key: a.key })).code, "VALID");
      await other.stop();
      assert.equal((await v.verifyKey({ key: a.key })).code, "VALID");
      await assert.rejects(v.verifyKey({ key: b.key }), { code: "unavailable" });
    } finally {
      await other.stop();
    }
  });
});

describe("CachedVerifier without a keyward", () => {
  test("a request aborted before its call fails leaves no unhandled rejection", async (t) => {
    const rejections = [];
    const onUnhandled = (reason) => rejections.push(reason);
    process.on("unhandledRejection", onUnhandled);
    t.after(() => process.off("unhandledRejection", onUnhandled));
    let settled;
    const done = new Promise((r) => (settled = r));
    const client = new Client({ url: await deadURL() });
    const v = new CachedVerifier({ verifyKey: (req, opts) => client.verifyKey(req, opts).finally(settled) });
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(v.verifyKey({ key: "k" }, { signal: ac.signal }), { code: "unavailable" });
    await done; // the shared call has failed by now
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(rejections, []);
  });

  test("an unreachable keyward is an error every time, never a cached refusal", async () => {
    const inner = counting(new Client({ url: await deadURL() }));
    const v = new CachedVerifier(inner);
    for (let i = 0; i < 2; i++) await assert.rejects(v.verifyKey({ key: "k" }), { code: "unavailable" });
    assert.equal(inner.calls, 2);
  });
});
