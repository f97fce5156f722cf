// Next.js App Router route handlers (and any (req: Request) => Response
// handler: Remix, SvelteKit endpoints, workers): withKeyward(handler)
// checks the key before the handler runs and passes it the identity.
import { fetchHeader, Guard, problemResponse, rateLimitHeaders, refusalHeaders, type Denial, type GuardOptions, type Outcome } from "./guard.js";
import type { Identity, VerifyResult } from "./types.js";

/** A route handler behind withKeyward: Next's (request, context) and the caller. */
export type KeywardHandler<R extends Request, C> = (req: R, ctx: C, identity: Identity, result: VerifyResult) => Response | Promise<Response>;

/** Returns the refusal; the headers of refusalHeaders are added to it. */
export type FetchErrorWriter = (req: Request, denial: Denial) => Response | Promise<Response>;

/** Options of withKeyward. */
export interface NextOptions extends Omit<GuardOptions, "exempt"> {
  /** Replaces the problem+json refusal, for services with their own error format. */
  errorWriter?: FetchErrorWriter;
  /**
   * The client address sent to keyward for the key's IP rules. Default:
   * none, as route handlers are not told the peer; read a header set by
   * your platform here (e.g. the last X-Forwarded-For entry Vercel adds).
   */
  clientIp?: (req: Request) => string | undefined;
}

/**
 * withKeyward wraps a route handler so that it runs only for a request with
 * a key keyward accepts (for opts.permissions, checked by keyward), with
 * the caller as its third argument. It fails closed: no key, a refused key,
 * or keyward unreachable (503 with Retry-After) never reach the handler.
 * Make the wrapper once per route (at module level): it shares the
 * process's default verifier unless given one.
 *
 *   export const GET = withKeyward(async (req, ctx, id) => Response.json(await notesOf(id.account_id)),
 *     { permissions: ["notes:read"] });
 */
export function withKeyward<R extends Request = Request, C = unknown>(
  handler: KeywardHandler<R, C>,
  opts: NextOptions = {},
): (req: R, ctx: C) => Promise<Response> {
  const guard = new Guard(opts);
  const write = opts.errorWriter ?? ((req: Request, d: Denial) => problemResponse(d, new URL(req.url).pathname));
  return async (req, ctx) => {
    const r = {
      header: fetchHeader(req.headers),
      path: new URL(req.url).pathname,
      method: req.method,
      ip: opts.clientIp?.(req),
      signal: req.signal,
    };
    // Next's wrapper has no exempt paths: checkNow answers refusals and cache hits.
    const out = (guard.checkNow(r) as Exclude<Outcome, { ok: "exempt" }> | undefined) ?? (await guard.verify(r));
    if (!out.ok) {
      const res = await write(req, out.denial);
      const refused = new Response(res.body, res);
      for (const [k, v] of Object.entries(refusalHeaders(out.denial))) refused.headers.set(k, v);
      return refused;
    }
    const res = await handler(req, ctx, out.identity, out.result);
    const limits = rateLimitHeaders(out.result.rate_limits);
    if (Object.keys(limits).length === 0) return res;
    const withLimits = new Response(res.body, res);
    for (const [k, v] of Object.entries(limits)) withLimits.headers.set(k, v);
    return withLimits;
  };
}
