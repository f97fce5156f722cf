// Express middleware: keyward({ permissions, exempt }) in front of routes,
// requirePermissions(...) on single routes. The identity is req.keyward.
import type { NextFunction, Request, RequestHandler, Response } from "express";
import { Guard, hasPermissions, PROBLEM_CONTENT_TYPE, problemBody, rateLimitHeaders, refusalHeaders, type Denial, type GuardOptions, type Outcome } from "./guard.js";
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

/** Where keyward() leaves its error writer on the request, for requirePermissions. */
const writerKey = Symbol("keyward.errorWriter");

type WithWriter = Request & { [writerKey]?: ExpressErrorWriter };

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
    const gr = { header: (name: string) => headerValues(req, name), path: pathOf(req), method: req.method, ip: req.ip };
    const pass = (out: Outcome) => {
      if (out.ok === "exempt") return next();
      if (!out.ok) return deny(req, res, write, out.denial);
      req.keyward = out.identity;
      req.keywardResult = out.result;
      if (opts.errorWriter) (req as WithWriter)[writerKey] = write;
      if (out.result.rate_limits?.length) {
        for (const [k, v] of Object.entries(rateLimitHeaders(out.result.rate_limits))) res.setHeader(k, v);
      }
      next();
    };
    // A cached answer passes the request on at once, without a promise.
    const now = guard.checkNow(gr);
    if (now) return pass(now);
    guard.verify(gr).then(pass).catch(next);
  };
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
    deny(req, res, (req as WithWriter)[writerKey] ?? writeProblem, d);
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

/**
 * headerValues returns every value of a header as sent, from the raw
 * headers: Node keeps only the first of several Authorization headers.
 */
function headerValues(req: Request, name: string): string[] {
  const raw = req.rawHeaders;
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === name.length && raw[i]!.toLowerCase() === name) out.push(raw[i + 1]!);
  }
  return out;
}
