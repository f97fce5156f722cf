// Express middleware: keyward({ permissions, exempt }) in front of routes,
// requirePermissions(...) on single routes, or withKeyward(handler, {
// permissions }) as a route's one handler. The identity is req.keyward.
import type { NextFunction, Request, RequestHandler, Response } from "express";
import { IncomingMessage } from "node:http";
import {
  Guard,
  hasPermissions,
  PROBLEM_CONTENT_TYPE,
  problemBody,
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

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The caller, set by keyward's middleware; undefined on exempt paths. */
      keyward?: Identity;
      /** The whole verification result (meta, expiry, rate limits); read-only. */
      keywardResult?: VerifyResult;
    }
  }
}

/** Writes a refusal; the headers of refusalHeaders are already set. */
export type ExpressErrorWriter = (req: Request, res: Response, denial: Denial) => void;

/** Options of the Express middleware. */
export interface ExpressOptions extends GuardOptions {
  /** Lets requests for which it returns true through without a key (e.g. CORS preflight). */
  exemptIf?: (req: Request) => boolean;
  /** Replaces the problem+json refusal, for services with their own error format. */
  errorWriter?: ExpressErrorWriter;
}

/** What keyward() or withKeyward left for a request: the caller, and the error writer for requirePermissions. */
interface Admitted {
  identity?: Identity | undefined;
  result?: VerifyResult | undefined;
  writer?: ExpressErrorWriter | undefined;
}

/**
 * The admitted requests. req.keyward and req.keywardResult are accessors
 * reading it, not properties of each request: adding properties to a
 * request whose prototype Express has switched (to app.request) costs
 * V8 a new hidden class per request, several microseconds and garbage.
 */
const admitted = new WeakMap<object, Admitted>();

/** Set on the prototype holding the accessors. */
const accessorsKey = Symbol("keyward.accessors");

/**
 * withAccessors defines req.keyward and req.keywardResult, once, on
 * Express's request prototype (the one below IncomingMessage's, shared by
 * every app and sub-app), or on req itself when it has none.
 */
function withAccessors(req: Request): void {
  if ((req as unknown as Record<symbol, unknown>)[accessorsKey] === true) return;
  let p: object | null = Object.getPrototypeOf(req);
  while (p !== null && Object.getPrototypeOf(p) !== IncomingMessage.prototype) p = Object.getPrototypeOf(p);
  const entry = (r: object): Admitted => {
    let a = admitted.get(r);
    if (!a) admitted.set(r, (a = {}));
    return a;
  };
  Object.defineProperties(p ?? req, {
    keyward: {
      configurable: true,
      get(this: object) {
        return admitted.get(this)?.identity;
      },
      set(this: object, v: Identity | undefined) {
        entry(this).identity = v;
      },
    },
    keywardResult: {
      configurable: true,
      get(this: object) {
        return admitted.get(this)?.result;
      },
      set(this: object, v: VerifyResult | undefined) {
        entry(this).result = v;
      },
    },
    [accessorsKey]: { configurable: true, value: true },
  });
}

/**
 * keyward returns middleware that admits a request only with a key keyward
 * accepts, read from "Authorization: Bearer" or "X-API-Key". It fails
 * closed: no key, a refused key, or keyward unreachable (503 with
 * Retry-After) never reach the routes behind it. The client address is
 * req.ip, so Express's "trust proxy" setting decides whether
 * X-Forwarded-For counts.
 *
 *   app.use(keyward({ exempt: ["/healthz"] }));
 *   app.get("/notes", (req, res) => res.json(notesOf(req.keyward!.account_id)));
 */
export function keyward(opts: ExpressOptions = {}): RequestHandler {
  const guard = new Guard(opts);
  const write = opts.errorWriter ?? writeProblem;
  return (req: Request, res: Response, next: NextFunction) => {
    if (opts.exemptIf?.(req)) return next();
    const gr = guardRequest(req);
    const pass = (out: Outcome) => {
      if (out.ok === "exempt") return next();
      if (!out.ok) return deny(req, res, write, out.denial);
      admit(req, res, out, opts.errorWriter);
      next();
    };
    // A cached answer passes the request on at once, without a promise.
    const now = guard.checkNow(gr);
    if (now) return pass(now);
    guard.verify(gr).then(pass).catch(next);
  };
}

/** Options of withKeyward: the middleware's, without exempt paths (a wrapped route always needs a key). */
export type ExpressRouteOptions = Omit<ExpressOptions, "exempt" | "exemptIf">;

/**
 * withKeyward wraps one route's handler so that it runs only for a request
 * with a key keyward accepts (for opts.permissions, checked by keyward),
 * with req.keyward and req.keywardResult set. It refuses exactly as
 * keyward() does and fails closed (503 with Retry-After when keyward is
 * unreachable). The route keeps one handler (no middleware layer in front
 * of the router, none added to the route); on a cache hit the handler is
 * called at once. Use it where each route names its own permissions; use
 * keyward() to protect every route at once.
 *
 *   app.get("/notes", withKeyward((req, res) => res.json(notesOf(req.keyward!.account_id)), { permissions: ["notes:read"] }));
 */
export function withKeyward<P = Request["params"], ResBody = any, ReqBody = any, ReqQuery = Request["query"], Locals extends Record<string, any> = Record<string, any>>(
  handler: RequestHandler<P, ResBody, ReqBody, ReqQuery, Locals>,
  opts: ExpressRouteOptions = {},
): RequestHandler<P, ResBody, ReqBody, ReqQuery, Locals> {
  const guard = new Guard({ ...opts, exempt: undefined });
  const write = opts.errorWriter ?? writeProblem;
  type Req = Request<P, ResBody, ReqBody, ReqQuery, Locals>;
  type Res = Response<ResBody, Locals>;
  const run = (req: Req, res: Res, next: NextFunction, out: Verdict) => {
    if (!out.ok) return deny(req as Request, res, write, out.denial);
    admit(req as Request, res, out, opts.errorWriter);
    return handler(req, res, next);
  };
  return (req, res, next) => {
    const gr = guardRequest(req as Request);
    // No exempt paths: checkNow answers refusals and cache hits, never "exempt".
    const now = guard.checkNow(gr) as Verdict | undefined;
    if (now) return run(req, res, next, now);
    // The handler's own rejection, if it returns a promise, goes to next too.
    guard.verify(gr).then((out) => run(req, res, next, out)).catch(next);
  };
}

/** guardRequest is what the guard reads of req. */
function guardRequest(req: Request): GuardRequest {
  return new ExpressRequest(req);
}

/** The guard's view of an Express request: methods, not a closure per request; the path read only when asked. */
class ExpressRequest implements GuardRequest {
  readonly req: Request;
  readonly method: string;
  readonly ip: string | undefined;

  constructor(req: Request) {
    this.req = req;
    this.method = req.method;
    // req.ip, Express's proxy-addr walk of X-Forwarded-For under its "trust
    // proxy" setting, is the socket's peer whatever the setting when the
    // header is absent: read that directly then.
    this.ip = req.headers["x-forwarded-for"] === undefined ? req.socket?.remoteAddress : req.ip;
  }

  header(name: string): string[] {
    return rawHeader(this.req.rawHeaders, name);
  }

  get path(): string {
    return pathOf(this.req);
  }
}

/** admit sets the caller of an admitted request on req, its rate limits on res, and the error writer for requirePermissions. */
function admit(req: Request, res: Response, out: Extract<Verdict, { ok: true }>, writer: ExpressErrorWriter | undefined): void {
  withAccessors(req);
  admitted.set(req, { identity: out.identity, result: out.result, writer });
  if (out.result.rate_limits?.length) {
    for (const [k, v] of Object.entries(rateLimitHeaders(out.result.rate_limits))) res.setHeader(k, v);
  }
}

/**
 * requirePermissions returns middleware for one route that lets a request
 * through only when req.keyward holds every one of perms (root holds all):
 * 401 without an identity, 403 when a permission is missing.
 *
 *   app.delete("/notes/:id", requirePermissions("notes:delete"), deleteNote);
 */
export function requirePermissions(...perms: string[]): RequestHandler {
  const need = [...perms];
  return (req: Request, res: Response, next: NextFunction) => {
    const d = Guard.requirePermissions(req.keyward, need);
    if (!d) return next();
    deny(req, res, admitted.get(req)?.writer ?? writeProblem, d);
  };
}

export { hasPermissions };

function deny(req: Request, res: Response, write: ExpressErrorWriter, d: Denial): void {
  for (const [k, v] of Object.entries(refusalHeaders(d))) res.setHeader(k, v);
  write(req, res, d);
}

/** writeProblem is the default refusal: keyward's problem+json. */
export function writeProblem(req: Request, res: Response, d: Denial): void {
  res.status(d.status);
  res.setHeader("Content-Type", PROBLEM_CONTENT_TYPE);
  res.setHeader("X-Content-Type-Options", "nosniff");
  res.end(problemBody(d, pathOf(req)));
}

/** pathOf is the path of the whole URL, not the part below the mount point. */
function pathOf(req: Request): string {
  const u = req.originalUrl || req.url;
  const q = u.indexOf("?");
  return q < 0 ? u : u.slice(0, q);
}

