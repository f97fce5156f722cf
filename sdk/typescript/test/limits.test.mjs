// Shared limits of users and accounts against a real keyward: the client
// sets, reads and removes them, a verification refused by them names the
// level (limit_level), and the guard's refusal carries it to the client.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Client, Guard, problemBody } from "../dist/index.js";
import { setup, skipReason } from "./helpers.mjs";

const request = (key) => ({ header: (n) => (n === "authorization" ? [`Bearer ${key}`] : []), path: "/x", method: "GET" });

describe("shared limits", { skip: skipReason() }, () => {
  let kw;
  before(async () => {
    kw = await setup();
  });
  after(() => kw?.stop());

  test("a user's limit binds all its keys; the refusal names the user level", async () => {
    const { root } = kw;
    const account = await root.createAccount({ name: "shared" });
    const user = await root.createUser(account.id, { name: "ann" });
    const keys = [];
    for (let i = 0; i < 3; i++) keys.push(await root.createKey({ account_id: account.id, user_id: user.id, credits: { remaining: 10 } }));
    await assert.rejects(root.getLimits(account.id, user.id), { code: "not_found" });
    const set = await root.setLimits(account.id, user.id, { rate_limits: [{ name: "min", limit: 2, window: "1m" }] });
    assert.equal(set.level, "user");
    assert.equal(set.id, user.id);
    assert.equal((await root.verifyKey({ key: keys[0].key })).valid, true);
    const second = await root.verifyKey({ key: keys[1].key });
    assert.equal(second.valid, true);
    assert.equal(second.rate_limits?.[0].level, "user");
    const third = await root.verifyKey({ key: keys[2].key });
    assert.equal(third.code, "RATE_LIMITED");
    assert.equal(third.limit_level, "user");
    assert.equal((await root.getCredits(keys[2].id)).remaining, 10, "a refused request spends none of the key's own credits");

    const guard = new Guard({ verifier: new Client({ url: kw.url, apiKey: kw.rootKey }) });
    const refused = await guard.check(request(keys[0].key));
    assert.equal(refused.ok, false);
    assert.equal(refused.denial.status, 429);
    assert.equal(refused.denial.limitLevel, "user");
    assert.equal(JSON.parse(problemBody(refused.denial, "/x")).limit_level, "user");

    assert.equal(await root.setLimits(account.id, user.id, null), null);
    assert.equal((await root.verifyKey({ key: keys[2].key })).valid, true);

    const shared = await root.setLimits(account.id, undefined, { credits: { remaining: 1 } });
    assert.equal(shared.level, "account");
    assert.equal((await root.verifyKey({ key: keys[0].key })).valid, true);
    const spent = await root.verifyKey({ key: keys[1].key });
    assert.equal(spent.code, "USAGE_EXCEEDED");
    assert.equal(spent.limit_level, "account");
    assert.equal((await root.getLimits(account.id)).credits?.remaining, 0);
    await assert.rejects(new Client({ url: kw.url, apiKey: keys[0].key }).setLimits(account.id, user.id, { credits: { remaining: 5 } }), { code: "forbidden" });
  });
});
