// The Express middleware under both majors it supports: Express 5 (the
// "express" dev dependency) and Express 4 (the "express4" alias of
// express@4), whose router and request objects differ.
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { after, before, describe, test } from "node:test";
import express5 from "express";
import express4 from "express4";
import { CachedVerifier, Client } from "../dist/index.js";
import { keyward, requirePermissions, withKeyward } from "../dist/express.js";
import { conformance } from "./conformance.mjs";
import { get, setup, skipReason } from "./helpers.mjs";

const require = createRequire(import.meta.url);

for (const [major, express, pkg, publicRoute] of [
  [5, express5, "express", "/public/{*rest}"],
  [4, express4, "express4", "/public/*"],
]) {
  assert.equal(require(`${pkg}/package.json`).version.split(".")[0], String(major), `${pkg} is Express ${major}`);
  conformance(`Express ${major}`, async ({ errorWriter, ...opts }) => {
    const app = express();
    if (errorWriter) {
      opts.errorWriter = (req, res, d) => res.status(d.status).json({ error: d.detail });
    }
    let reached = 0;
    const whoami = (req, res) => {
      reached++;
      res.json(req.keyward);
    };
    app.use(keyward(opts));
    app.get("/whoami", whoami);
    app.get("/admin", requirePermissions("notes:admin"), whoami);
    app.get("/healthz", (req, res) => res.send("ok"));
    app.get(publicRoute, (req, res) => res.send("public"));
    const server = await new Promise((resolve) => {
      const s = app.listen(0, "127.0.0.1", () => resolve(s));
    });
    return {
      url: `http://127.0.0.1:${server.address().port}`,
      reached: () => reached,
      close: () => new Promise((resolve) => server.close(resolve)),
    };
  });
}

/** serve listens with app on a loopback port: { url, close }. */
async function serve(app) {
  const server = await new Promise((resolve) => {
    const s = app.listen(0, "127.0.0.1", () => resolve(s));
  });
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((resolve) => server.close(resolve)) };
}

for (const [major, express] of [
  [5, express5],
  [4, express4],
]) {
  describe(`Express ${major}: the request's identity and address`, { skip: skipReason() }, () => {
    let kw;
    let verifier;
    const servers = [];
    const start = async (app) => {
      const s = await serve(app);
      servers.push(s);
      return s.url;
    };
    before(async () => {
      kw = await setup();
      verifier = new CachedVerifier(new Client({ url: kw.url, apiKey: kw.verifierKey }));
    });
    after(async () => {
      for (const s of servers) await s.close();
      await kw?.stop();
    });

    test("req.keyward is the request's own: seen in a sub-app and after it, replaceable by the app, absent on exempt paths", async () => {
      const reader = await kw.userKey(["notes:read"]);
      const app = express();
      app.use(keyward({ verifier, exempt: ["/healthz"] }));
      const sub = express();
      sub.get("/who", (req, res) => res.json({ sub: req.keyward?.key_id ?? null }));
      app.use("/sub", sub);
      app.get("/healthz", (req, res) => res.json({ id: req.keyward ?? null, result: req.keywardResult ?? null }));
      app.get("/mine", (req, res, next) => {
        req.keyward = { ...req.keyward, key_id: "replaced" };
        next();
      });
      app.get(["/mine", "/who"], (req, res) => res.json({ id: req.keyward.key_id, valid: req.keywardResult.valid, own: Object.keys(req).includes("keyward") }));
      const url = await start(app);
      const auth = { Authorization: `Bearer ${reader.key}` };
      assert.deepEqual((await get(url + "/sub/who", auth)).body, { sub: reader.id });
      assert.deepEqual((await get(url + "/who", auth)).body, { id: reader.id, valid: true, own: false });
      assert.deepEqual((await get(url + "/mine", auth)).body, { id: "replaced", valid: true, own: false }, "a handler may replace req.keyward");
      assert.deepEqual((await get(url + "/who", auth)).body.id, reader.id, "the replacement stayed with its request");
      assert.deepEqual((await get(url + "/healthz", auth)).body, { id: null, result: null }, "an exempt path has no identity");
    });

    test("the address sent to keyward is req.ip: X-Forwarded-For counts only under trust proxy", async () => {
      const fenced = await kw.userKey([], { ip_allow: ["10.1.2.3/32"] });
      const auth = { Authorization: `Bearer ${fenced.key}` };
      const direct = express();
      direct.get("/x", withKeyward((req, res) => res.json(req.keyward), { verifier }));
      const proxied = express();
      proxied.set("trust proxy", "loopback");
      proxied.use(keyward({ verifier }));
      proxied.get("/x", (req, res) => res.json(req.keyward));
      const [d, p] = [await start(direct), await start(proxied)];
      assert.equal((await get(p + "/x", { ...auth, "X-Forwarded-For": "10.1.2.3" })).status, 200, "behind a trusted proxy the forwarded address counts");
      assert.equal((await get(p + "/x", auth)).status, 403, "without the header the peer (127.0.0.1) counts");
      assert.equal((await get(d + "/x", { ...auth, "X-Forwarded-For": "10.1.2.3" })).status, 403, "without trust proxy the header is ignored");
    });
  });
}
