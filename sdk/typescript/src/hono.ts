// Hono middleware: keyward({ permissions, exempt }) in front of routes,
// requirePermissions(...) on single routes. The identity is
// c.get("keyward"). Runs wherever Hono runs (Node, Bun, Deno, workers).
import type { Context, MiddlewareHandler, Next } from "hono";
import { fetchHeader, Guard, hasPermissions, problemResponse, rateLimitHeaders, refusalHeaders, type Denial, type GuardOptions, type Outcome } from "./guard.js";
import type { Identity, VerifyResult } from "./types.js";

/** The variables the middleware sets on the context. */
export interface KeywardVariables {
  /** The caller; undefined on exempt paths. */
  keyward: Identity;
  /** The whole verification result (meta, expiry, rate limits); read-only. */
  keywardResult: VerifyResult;
}

/** The Hono environment of routes behind the middleware. */
export interface KeywardEnv {
  Variables: KeywardVariables;
}

/** Returns the refusal; the headers of refusalHeaders are added to it. */
export type HonoErrorWriter = (c: Context, denial: Denial) => Response | Promise<Response>;

/** Options of the Hono middleware. */
export interface HonoOptions extends GuardOptions {
  /** Lets requests for which it returns true through without a key (e.g. CORS preflight). */
  exemptIf?: (c: Context) => boolean;
  /** Replaces the problem+json refusal, for services with their own error format. */
  errorWriter?: HonoErrorWriter;
  /**
   * The client address sent to keyward for the key's IP rules. Default:
   * the socket's peer under @hono/node-server; elsewhere none (read your
   * platform's header here, e.g. CF-Connecting-IP, only behind that platform).
   */
  clientIp?: (c: Context) => string | undefined;
}

const writerKey = "keywardErrorWriter";

/**
 * keyward returns middleware that admits a request only with a key keyward
 * accepts, read from "Authorization: Bearer" or "X-API-Key". It fails
 * closed: no key, a refused key, or keyward unreachable (503 with
 * Retry-After) never reach the handlers behind it; there is no handler to
 * add for that.
 *
 *   const app = new Hono<KeywardEnv>();
 *   app.use(keyward({ exempt: ["/healthz"] }));
 *   app.get("/notes", (c) => c.json(notesOf(c.get("keyward").account_id)));
 */
export function keyward(opts: HonoOptions = {}): MiddlewareHandler<KeywardEnv> {
  const guard = new Guard(opts);
  const write = opts.errorWriter ?? defaultWriter;
  const clientIp = opts.clientIp ?? nodePeer;
  /** Lets the request on after the verdict out, or refuses it. */
  const pass = (c: Context<KeywardEnv>, next: Next, out: Outcome): Promise<Response | void> => {
    if (out.ok === "exempt") return next();
    if (!out.ok) return deny(c, write, out.denial);
    c.set("keyward", out.identity);
    c.set("keywardResult", out.result);
    if (opts.errorWriter) c.set(writerKey as never, write as never);
    // A key without rate limits (every cached one) adds nothing to the response.
    const limits = out.result.rate_limits;
    if (!limits?.length) return next();
    return next().then(() => {
      const h = Object.entries(rateLimitHeaders(limits));
      try {
        for (const [k, v] of h) c.res.headers.set(k, v);
      } catch {
        // The handler returned a response whose headers cannot change (a
        // fetched one): copy it.
        c.res = new Response(c.res.body, c.res);
        for (const [k, v] of h) c.res.headers.set(k, v);
      }
    });
  };
  return (c, next) => {
    if (opts.exemptIf?.(c)) return next();
    const r = {
      header: fetchHeader(c.req.raw.headers),
      path: c.req.path,
      method: c.req.method,
      ip: clientIp(c),
      // No signal: reading c.req.raw.signal makes @hono/node-server build
      // a whole Request, the largest cost of a cached request.
    };
    // A cached answer goes on without a promise of the guard's.
    const now = guard.checkNow(r);
    return now ? pass(c, next, now) : guard.verify(r).then((out) => pass(c, next, out));
  };
}

/**
 * requirePermissions returns middleware for one route that lets a request
 * through only when c.get("keyward") holds every one of perms (root holds
 * all): 401 without an identity, 403 when a permission is missing.
 *
 *   app.delete("/notes/:id", requirePermissions("notes:delete"), deleteNote);
 */
export function requirePermissions(...perms: string[]): MiddlewareHandler<KeywardEnv> {
  const need = [...perms];
  return async (c, next) => {
    const d = Guard.requirePermissions(c.get("keyward"), need);
    if (!d) return next();
    return deny(c, (c.get(writerKey as never) as HonoErrorWriter | undefined) ?? defaultWriter, d);
  };
}

export { hasPermissions };

async function deny(c: Context, write: HonoErrorWriter, d: Denial): Promise<Response> {
  const res = await write(c, d);
  const out = new Response(res.body, res);
  for (const [k, v] of Object.entries(refusalHeaders(d))) out.headers.set(k, v);
  return out;
}

function defaultWriter(c: Context, d: Denial): Response {
  return problemResponse(d, c.req.path);
}

/** nodePeer is the peer address under @hono/node-server, which puts the Node request in c.env.incoming. */
function nodePeer(c: Context): string | undefined {
  const env = c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined;
  return env?.incoming?.socket?.remoteAddress;
}
