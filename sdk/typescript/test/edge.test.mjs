// The SDK where there is no `process` (edge runtimes): options come only
// from what is passed, and the cache digests keys with Web Crypto.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { setup, skipReason } from "./helpers.mjs";

describe("without process (edge runtimes)", { skip: skipReason() }, () => {
  let kw;
  before(async () => {
    kw = await setup();
  });
  after(() => kw?.stop());

  test("Hono behind keyward() verifies, caches and refuses with Web Crypto and no environment", async () => {
    const k = await kw.userKey();
    const child = fileURLToPath(new URL("./fixtures/edge.mjs", import.meta.url));
    const { stdout } = await promisify(execFile)(process.execPath, [child, kw.url, kw.verifierKey, k.key], {
      env: { ...process.env, KEYWARD_URL: "https://ignored.example" },
    });
    const seen = JSON.parse(stdout);
    assert.equal(seen.hasProcess, false);
    assert.equal(seen.defaultURL, "http://127.0.0.1:8080", "no environment: the CLI's default");
    assert.deepEqual(seen.statuses, [200, 200, 401]);
    assert.equal(seen.keyId, k.id);
    assert.equal(seen.calls, 1, "the second request was a cache hit");
  });
});
