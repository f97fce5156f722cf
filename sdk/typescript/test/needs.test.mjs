// A guard's query, least role and environment: asked of the real keyward,
// answered apart in the cache, and failing closed on an answer without the
// environment asked for.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { CachedVerifier, Client, Guard } from "../dist/index.js";
import { setup, skipReason } from "./helpers.mjs";

const request = (key) => ({ header: (n) => (n === "authorization" ? [`Bearer ${key}`] : []), path: "/x", method: "GET" });

describe("guard needs", { skip: skipReason() }, () => {
  let kw;
  before(async () => {
    kw = await setup();
  });
  after(() => kw?.stop());

  test("query, require_role and environment are keyward's to answer, cached apart", async () => {
    const verifier = new CachedVerifier(new Client({ url: kw.url, apiKey: kw.verifierKey }));
    const query = "notes:read AND (search:run OR admin:*)";
    const plain = new Guard({ verifier, permissions: ["notes:read"] });
    const searching = new Guard({ verifier, query });
    const admins = new Guard({ verifier, requireRole: "account_admin" });
    const testOnly = new Guard({ verifier, environment: "test" });
    const both = await kw.userKey(["notes:read", "search:run"]);
    const wild = await kw.userKey(["notes:*", "admin:*"]);
    const reader = await kw.userKey(["notes:read"]);

    assert.equal((await searching.check(request(both.key))).ok, true);
    assert.equal((await searching.check(request(wild.key))).ok, true);
    // Cached as valid for the plain guard, still refused the query it does not meet.
    assert.equal((await plain.check(request(reader.key))).ok, true);
    const refused = await searching.check(request(reader.key));
    assert.equal(refused.ok, false);
    assert.equal(refused.denial.status, 403);
    assert.equal(refused.denial.decision, "INSUFFICIENT_PERMISSIONS");
    assert.equal((await admins.check(request(both.key))).denial?.status, 403);
    const env = await testOnly.check(request(both.key));
    assert.equal(env.ok, false);
    assert.equal(env.denial.decision, "WRONG_ENVIRONMENT");
    const res = await verifier.verifyKey({ key: reader.key, query });
    assert.equal(res.code, "INSUFFICIENT_PERMISSIONS");
    assert.ok(res.missing_permissions?.includes("search:run"));
  });

  test("an answer without the environment asked for is refused", async () => {
    const valid = { valid: true, code: "VALID", key_id: "key_1", permissions: [] };
    const guard = new Guard({ verifier: { verifyKey: async () => valid }, environment: "live" });
    const v = await guard.check(request("kw_user_x"));
    assert.equal(v.ok, false);
    assert.equal(v.denial.status, 403);
    assert.equal(v.denial.decision, "WRONG_ENVIRONMENT");
  });
});
