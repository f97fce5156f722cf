// One app of bench/typescript-sdk/bench.mjs. As a program, node app.mjs
// FRAMEWORK VARIANT PORT serves it on loopback for the load runs and prints
// "ready"; inproc.mjs drives its request listener without a socket.
// FRAMEWORK express|hono; VARIANT bare|noop|auth|route ("#n" may follow,
// to run one twice). GET /notes answers a small JSON; with noop behind a
// middleware that does nothing (the framework's own cost of one); with
// auth behind the SDK's middleware, keyward() in app.use; with route its
// handler wrapped in the SDK's per-route withKeyward (both a
// CachedVerifier in front of the keyward at KEYWARD_URL, authenticated by
// KEYWARD_API_KEY); with spin, the
// control: bare's handler after SPIN_NS nanoseconds of busy CPU and no SDK,
// so that the load runs show what adding that much work costs by itself).
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";
import { sdk } from "./sdk.mjs";

const notes = [{ id: 1, text: "hello" }];
// Without a caller the owner is a stand-in as long as an account id, so
// that every variant answers the same number of bytes.
const nobody = "acc_" + "0".repeat(22);

/**
 * spun returns handler run after SPIN_NS (default 1500) nanoseconds of busy
 * CPU, without allocating: the control variant.
 */
function spun(handler) {
  const ms = Number(process.env.SPIN_NS || 1500) / 1e6;
  return (...args) => {
    const until = performance.now() + ms;
    while (performance.now() < until);
    return handler(...args);
  };
}

/** listener returns the Node request listener of the app FRAMEWORK VARIANT. */
export async function listener(framework, variantArg) {
  const variant = variantArg.split("#")[0];
  if (!["bare", "noop", "auth", "route", "spin"].includes(variant)) throw new Error(`unknown variant ${variantArg}`);
  if (framework === "express") {
    const { default: express } = await sdk.dep("express");
    const { keyward, withKeyward } = await sdk.module("express");
    const app = express();
    if (variant === "auth") app.use(keyward());
    if (variant === "noop") app.use((req, res, next) => next());
    const handler = (req, res) => res.json({ owner: req.keyward?.account_id ?? nobody, notes });
    app.get("/notes", variant === "route" ? withKeyward(handler) : variant === "spin" ? spun(handler) : handler);
    return app;
  }
  if (framework === "hono") {
    const { Hono } = await sdk.dep("hono");
    const { getRequestListener } = await sdk.dep("@hono/node-server");
    const { keyward, withKeyward } = await sdk.module("hono");
    const app = new Hono();
    if (variant === "auth") app.use(keyward());
    if (variant === "noop") app.use((c, next) => next());
    const handler = (c) => c.json({ owner: c.get("keyward")?.account_id ?? nobody, notes });
    app.get("/notes", variant === "route" ? withKeyward(handler) : variant === "spin" ? spun(handler) : handler);
    // As @hono/node-server's serve() makes it.
    return getRequestListener(app.fetch, { hostname: "127.0.0.1" });
  }
  throw new Error(`unknown framework ${framework}: express or hono`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [framework, variant, port] = process.argv.slice(2);
  const server = createServer(await listener(framework, variant));
  server.listen(Number(port), "127.0.0.1", () => console.log("ready"));
}
