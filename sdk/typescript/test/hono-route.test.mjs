// withKeyward, the Hono per-route form: each protected route has one
// handler, wrapped; the behaviour is the middleware's (the conformance
// suite), /admin's permission asked of keyward.
import { Hono } from "hono";
import { withKeyward } from "../dist/hono.js";
import { conformance } from "./conformance.mjs";
import { listen } from "./helpers.mjs";

conformance(
  "Hono withKeyward",
  async ({ errorWriter, exempt, ...opts }) => {
    if (errorWriter) {
      opts.errorWriter = (c, d) => c.json({ error: d.detail }, d.status);
    }
    let reached = 0;
    const whoami = (c) => {
      reached++;
      return c.json(c.get("keyward"));
    };
    const app = new Hono();
    app.get("/whoami", withKeyward(whoami, opts));
    app.get("/admin", withKeyward(async (c) => whoami(c), { ...opts, permissions: [...(opts.permissions ?? []), "notes:admin"] }));
    const s = await listen(app.fetch);
    return { ...s, reached: () => reached };
  },
  { exempt: false, rawHeaders: true },
);
