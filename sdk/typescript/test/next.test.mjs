// withKeyward wraps Next.js App Router route handlers, (Request, context)
// => Response. They run here as Next runs them: a web Request in, a web
// Response out, served by a Node HTTP server on loopback.
import { withKeyward } from "../dist/next.js";
import { conformance } from "./conformance.mjs";
import { listen } from "./helpers.mjs";

conformance(
  "Next.js route handler",
  async ({ errorWriter, exempt: _, permissions, ...opts }) => {
    if (errorWriter) {
      opts.errorWriter = (req, d) => Response.json({ error: d.detail }, { status: d.status });
    }
    let reached = 0;
    const whoami = (req, ctx, identity) => {
      reached++;
      return Response.json(identity);
    };
    const routes = {
      "/whoami": withKeyward(whoami, { ...opts, permissions }),
      "/admin": withKeyward(whoami, {
        ...opts,
        permissions: [...(permissions ?? []), "notes:admin"],
      }),
      "/healthz": () => new Response("ok"),
    };
    const s = await listen((req) => {
      const route = routes[new URL(req.url).pathname];
      return route ? route(req, { params: Promise.resolve({}) }) : new Response("not found", { status: 404 });
    });
    return { ...s, reached: () => reached };
  },
  { exempt: false, rawHeaders: true },
);
