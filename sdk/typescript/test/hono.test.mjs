import { Hono } from "hono";
import { keyward, requirePermissions } from "../dist/hono.js";
import { conformance } from "./conformance.mjs";
import { listen } from "./helpers.mjs";

conformance("Hono", async ({ errorWriter, ...opts }) => {
  const app = new Hono();
  if (errorWriter) {
    opts.errorWriter = (c, d) => c.json({ error: d.detail }, d.status);
  }
  let reached = 0;
  const whoami = (c) => {
    reached++;
    return c.json(c.get("keyward"));
  };
  app.use(keyward(opts));
  app.get("/whoami", whoami);
  app.get("/admin", requirePermissions("notes:admin"), whoami);
  app.get("/healthz", (c) => c.text("ok"));
  app.get("/public/*", (c) => c.text("public"));
  return { ...(await listen(app.fetch)), reached: () => reached };
});

