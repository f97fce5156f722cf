import express from "express";
import { keyward, requirePermissions } from "../dist/express.js";
import { conformance } from "./conformance.mjs";

conformance("Express", async ({ errorWriter, ...opts }) => {
  const app = express();
  if (errorWriter) {
    opts.errorWriter = (req, res, d) => res.status(d.status).json({ error: d.detail });
  }
  app.use(keyward(opts));
  app.get("/whoami", (req, res) => res.json(req.keyward));
  app.get("/admin", requirePermissions("notes:admin"), (req, res) => res.json(req.keyward));
  app.get("/healthz", (req, res) => res.send("ok"));
  app.get("/public/{*rest}", (req, res) => res.send("public"));
  const server = await new Promise((resolve) => {
    const s = app.listen(0, "127.0.0.1", () => resolve(s));
  });
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
});
