// One app for the load runs of bench/typescript-sdk/bench.mjs, in its own
// process: node app.mjs FRAMEWORK VARIANT PORT, FRAMEWORK express|hono,
// VARIANT bare|noop|auth. GET /notes answers a small JSON; with noop behind
// a middleware that does nothing (the framework's own cost of one); with
// auth behind the SDK's middleware (a CachedVerifier in front of the keyward at KEYWARD_URL,
// authenticated by KEYWARD_API_KEY). Prints "ready" when listening.
import { sdk } from "./sdk.mjs";

const [framework, variant, port] = process.argv.slice(2);
const auth = variant === "auth";
const noop = variant === "noop";
const notes = [{ id: 1, text: "hello" }];

if (framework === "express") {
  const { default: express } = await sdk.dep("express");
  const { keyward } = await sdk.module("express");
  const app = express();
  if (auth) app.use(keyward());
  if (noop) app.use((req, res, next) => next());
  app.get("/notes", (req, res) => res.json({ owner: req.keyward?.account_id ?? null, notes }));
  app.listen(Number(port), "127.0.0.1", () => console.log("ready"));
} else if (framework === "hono") {
  const { Hono } = await sdk.dep("hono");
  const { serve } = await sdk.dep("@hono/node-server");
  const { keyward } = await sdk.module("hono");
  const app = new Hono();
  if (auth) app.use(keyward());
  if (noop) app.use((c, next) => next());
  app.get("/notes", (c) => c.json({ owner: c.get("keyward")?.account_id ?? null, notes }));
  serve({ fetch: app.fetch, port: Number(port), hostname: "127.0.0.1" }, () => console.log("ready"));
} else {
  console.error("usage: node app.mjs express|hono bare|noop|auth PORT");
  process.exit(2);
}
