// withKeyward, the Express per-route form, under Express 5 and 4: each
// protected route has one handler, wrapped; the behaviour is the
// middleware's (the conformance suite), /admin's permission asked of keyward.
import express5 from "express";
import express4 from "express4";
import { withKeyward } from "../dist/express.js";
import { conformance } from "./conformance.mjs";

for (const [major, express] of [
  [5, express5],
  [4, express4],
]) {
  conformance(
    `Express ${major} withKeyward`,
    async ({ errorWriter, exempt, ...opts }) => {
      if (errorWriter) {
        opts.errorWriter = (req, res, d) => res.status(d.status).json({ error: d.detail });
      }
      let reached = 0;
      const whoami = (req, res) => {
        reached++;
        res.json(req.keyward);
      };
      const app = express();
      app.get("/whoami", withKeyward(whoami, opts));
      app.get("/admin", withKeyward(whoami, { ...opts, permissions: [...(opts.permissions ?? []), "notes:admin"] }));
      const server = await new Promise((resolve) => {
        const s = app.listen(0, "127.0.0.1", () => resolve(s));
      });
      return {
        url: `http://127.0.0.1:${server.address().port}`,
        reached: () => reached,
        close: () => new Promise((resolve) => server.close(resolve)),
      };
    },
    { exempt: false, rawHeaders: true },
  );
}
