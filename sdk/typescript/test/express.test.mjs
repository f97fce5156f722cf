// The Express middleware under both majors it supports: Express 5 (the
// "express" dev dependency) and Express 4 (the "express4" alias of
// express@4), whose router and request objects differ.
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import express5 from "express";
import express4 from "express4";
import { keyward, requirePermissions } from "../dist/express.js";
import { conformance } from "./conformance.mjs";

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
