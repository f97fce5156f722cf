// withKeyward in a real Next.js server: `next dev` serving the route
// handlers of test/fixtures/next-app, configured by KEYWARD_URL and
// KEYWARD_API_KEY like a deployed app, in front of the real keyward. The
// behaviour in every detail is in next.test.mjs; this checks that Next's
// requests, contexts and responses pass through the wrapper.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { freePort, get, setup, skipReason } from "./helpers.mjs";

const here = dirname(fileURLToPath(import.meta.url));

describe("withKeyward in a real Next.js server", { skip: skipReason() }, () => {
  let kw;
  let next;
  let url;
  let reader;
  before(async () => {
    kw = await setup();
    reader = await kw.userKey(["notes:read"]);
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    next = spawn(process.execPath, [join(here, "..", "node_modules", "next", "dist", "bin", "next"), "dev", "-H", "127.0.0.1", "-p", String(port)], {
      cwd: join(here, "fixtures", "next-app"),
      env: { ...process.env, KEYWARD_URL: kw.url, KEYWARD_API_KEY: kw.verifierKey, NEXT_TELEMETRY_DISABLED: "1" },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true, // its own process group: next dev starts workers
    });
    let log = "";
    await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`next dev was not ready within 120 s:\n${log}`)), 120_000);
      const onData = (s) => {
        log += s;
        if (/Ready in/.test(log)) {
          clearTimeout(t);
          resolve();
        }
      };
      next.stdout.setEncoding("utf8").on("data", onData);
      next.stderr.setEncoding("utf8").on("data", onData);
      next.once("exit", (code) => {
        clearTimeout(t);
        reject(new Error(`next dev exited (${code}):\n${log}`));
      });
    });
  });
  after(async () => {
    if (next && next.exitCode === null) {
      const exited = new Promise((r) => next.once("exit", r));
      process.kill(-next.pid, "SIGTERM");
      await exited;
    }
    await kw?.stop();
  });

  test("no key: keyward's 401", async () => {
    const r = await get(url + "/whoami");
    assert.equal(r.status, 401);
    assert.equal(r.headers.get("www-authenticate"), 'Bearer realm="keyward"');
    assert.equal(r.headers.get("cache-control"), "no-store");
    assert.equal(r.body.code, "unauthorized");
    assert.equal(r.body.instance, "/whoami");
  });

  test("a valid key: the handler gets the identity, with the agent", async () => {
    const r = await get(url + "/whoami", { Authorization: `Bearer ${reader.key}`, "X-Keyward-Agent": "claude" });
    assert.equal(r.status, 200);
    assert.equal(r.body.key_id, reader.id);
    assert.equal(r.body.account_id, kw.account.id);
    assert.equal(r.body.agent, "claude");
    assert.equal((await get(url + "/whoami", { "X-API-Key": "kw_user_nope" })).status, 401);
  });

  test("the route's permissions: 403 without, 200 with", async () => {
    assert.equal((await get(url + "/admin", { Authorization: `Bearer ${reader.key}` })).status, 403);
    const admin = await kw.userKey(["notes:admin"]);
    assert.equal((await get(url + "/admin", { Authorization: `Bearer ${admin.key}` })).status, 200);
  });

  test("Next's context (dynamic params) reaches the handler", async () => {
    const r = await get(url + "/notes/n-42", { Authorization: `Bearer ${reader.key}` });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { id: "n-42", key_id: reader.id });
  });
});
