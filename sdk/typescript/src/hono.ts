// Hono middleware: keyward({ permissions, exempt }) in front of routes,
// requirePermissions(...) on single routes, or withKeyward(handler, {
// permissions }) as a route's one handler. The identity is
// c.get("keyward"). Runs wherever Hono runs (Node, Bun, Deno, workers).
import type { Context, MiddlewareHandler, Next } from "hono";
import {
  fetchHeader,
  Guard,
  hasPermissions,
  problemResponse,
  rateLimitHeaders,
  rawHeader,
  refusalHeaders,
  type Denial,
  type GuardOptions,
  type GuardRequest,
  type Outcome,
  type Verdict,
} from "./guard.js";
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
    admit(c, out, opts.errorWriter);
    // A key without rate limits (every cached one) adds nothing to the response.
    const limits = out.result.rate_limits;
    if (!limits?.length) return next();
    return next().then(() => {
      const res = withHeaders(c.res, rateLimitHeaders(limits));
      if (res !== c.res) c.res = res;
    });
  };
  return (c, next) => {
    if (opts.exemptIf?.(c)) return next();
    const r = guardRequest(c, clientIp);
    // A cached answer goes on without a promise of the guard's.
    const now = guard.checkNow(r);
    return now ? pass(c, next, now) : guard.verify(r).then((out) => pass(c, next, out));
  };
}

/** Options of withKeyward: the middleware's, without exempt paths (a wrapped route always needs a key). */
export type HonoRouteOptions = Omit<HonoOptions, "exempt" | "exemptIf">;

/** A route handler behind withKeyward: c.get("keyward") is the caller. */
export type KeywardHandler<E extends KeywardEnv = KeywardEnv> = (c: Context<E, any, any>) => Response | Promise<Response>;

/**
 * withKeyward wraps one route's handler so that it runs only for a request
 * with a key keyward accepts (for opts.permissions, checked by keyward),
 * with c.get("keyward") and c.get("keywardResult") set. It refuses exactly
 * as keyward() does and fails closed (503 with Retry-After when keyward is
 * unreachable). A route with one handler keeps Hono's fast path (no
 * middleware chain, no promise on a cache hit), which keyward() in app.use
 * gives up: use it where throughput matters and each route names its own
 * permissions; use keyward() to protect every route at once.
 *
 *   app.get("/notes", withKeyward((c) => c.json(notesOf(c.get("keyward").account_id)), { permissions: ["notes:read"] }));
 */
export function withKeyward<E extends KeywardEnv = KeywardEnv>(handler: KeywardHandler<E>, opts: HonoRouteOptions = {}): KeywardHandler<E> {
  const guard = new Guard({ ...opts, exempt: undefined });
  const write = opts.errorWriter ?? defaultWriter;
  const clientIp = opts.clientIp ?? nodePeer;
  const run = (c: Context<E, any, any>, out: Verdict): Response | Promise<Response> => {
    if (!out.ok) return deny(c, write, out.denial);
    admit(c, out, opts.errorWriter);
    const limits = out.result.rate_limits;
    const res = handler(c);
    if (!limits?.length) return res;
    const h = rateLimitHeaders(limits);
    return res instanceof Promise ? res.then((r) => withHeaders(r, h)) : withHeaders(res, h);
  };
  return (c) => {
    const r = guardRequest(c, clientIp);
    // No exempt paths: checkNow answers refusals and cache hits, never "exempt".
    const now = guard.checkNow(r) as Verdict | undefined;
    return now ? run(c, now) : guard.verify(r).then((out) => run(c, out));
  };
}

/** guardRequest is what the guard reads of c. */
function guardRequest(c: Context, clientIp: (c: Context) => string | undefined): GuardRequest {
  return new HonoRequest(c, clientIp(c));
}

/**
 * The guard's view of a Hono request: methods, not a closure per request;
 * the path read only when asked. Under @hono/node-server the headers are
 * read from the Node request's raw headers, each value as sent (a
 * repeated header is seen as repeated, a comma is only a comma); elsewhere
 * from the Fetch API Headers (see fetchHeader). No signal: reading
 * c.req.raw.signal makes @hono/node-server build a whole Request, the
 * largest cost of a cached request.
 */
class HonoRequest implements GuardRequest {
  readonly c: Context;
  readonly ip: string | undefined;

  constructor(c: Context, ip: string | undefined) {
    this.c = c;
    this.ip = ip;
  }

  header(name: string): string[] {
    const raw = nodeIncoming(this.c)?.rawHeaders;
    return raw ? rawHeader(raw, name) : fetchHeader(this.c.req.raw.headers)(name);
  }

  get path(): string {
    return this.c.req.path;
  }

  get method(): string {
    return this.c.req.method;
  }
}

/** admit sets the caller of an admitted request on c, and the error writer for requirePermissions. */
function admit(c: Context, out: Extract<Verdict, { ok: true }>, writer: HonoErrorWriter | undefined): void {
  c.set("keyward", out.identity);
  c.set("keywardResult", out.result);
  if (writer) c.set(writerKey as never, writer as never);
}

/** withHeaders sets h on res, or on a copy when res's headers cannot change (a fetched response). */
function withHeaders(res: Response, h: Record<string, string>): Response {
  const entries = Object.entries(h);
  try {
    for (const [k, v] of entries) res.headers.set(k, v);
    return res;
  } catch {
    const out = new Response(res.body, res);
    for (const [k, v] of entries) out.headers.set(k, v);
    return out;
  }
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

/** nodeIncoming is the Node request under @hono/node-server, which puts it in c.env.incoming. */
function nodeIncoming(c: Context): NodeIncoming | undefined {
  return (c.env as { incoming?: NodeIncoming } | undefined)?.incoming;
}

/** What the guard reads of the Node request under @hono/node-server. */
type NodeIncoming = { rawHeaders?: string[]; socket?: { remoteAddress?: string } };

/** nodePeer is the peer address under @hono/node-server. */
function nodePeer(c: Context): string | undefined {
  return nodeIncoming(c)?.socket?.remoteAddress;
}
