// withKeyward in a real Next.js server, in both of its modes: `next dev`,
// and the production build (`next build`, then `next start`), serving the
// route handlers of test/fixtures/next-app, configured by KEYWARD_URL and
// KEYWARD_API_KEY like a deployed app, in front of the real keyward. The
// behaviour in every detail is in next.test.mjs; this checks that Next's
// requests, contexts and responses pass through the wrapper, compiled
// and bundled as Next compiles them for each mode.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import { freePort, get, setup, skipReason } from "./helpers.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const app = join(here, "fixtures", "next-app");
const nextBin = join(here, "..", "node_modules", "next", "dist", "bin", "next");
// A slow, shared machine builds the fixture in about two minutes.
const BUILD_TIMEOUT_MS = 300_000;

for (const mode of ["dev", "production"]) {
  describe(`withKeyward in a real Next.js server (${mode === "dev" ? "next dev" : "next build + next start"})`, { skip: skipReason() }, () => {
    let kw;
    let next;
    let url;
    let reader;
    before(async () => {
      kw = await setup();
      reader = await kw.userKey(["notes:read"]);
      // The build runs without keyward's settings: they are read when the server runs.
      const env = { ...process.env, NEXT_TELEMETRY_DISABLED: "1" };
      delete env.KEYWARD_URL;
      delete env.KEYWARD_API_KEY;
      if (mode === "production") {
        env.KEYWARD_TEST_NEXT_DIST_DIR = ".next-production";
        await promisify(execFile)(process.execPath, [nextBin, "build"], { cwd: app, env, timeout: BUILD_TIMEOUT_MS });
      }
      const port = await freePort();
      url = `http://127.0.0.1:${port}`;
      next = spawn(process.execPath, [nextBin, mode === "dev" ? "dev" : "start", "-H", "127.0.0.1", "-p", String(port)], {
        cwd: app,
        env: { ...env, KEYWARD_URL: kw.url, KEYWARD_API_KEY: kw.verifierKey },
        stdio: ["ignore", "pipe", "pipe"],
        detached: true, // its own process group: next starts workers
      });
      let log = "";
      await new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`next ${mode} was not ready within 120 s:\n${log}`)), 120_000);
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
          reject(new Error(`next ${mode} exited (${code}):\n${log}`));
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
}
