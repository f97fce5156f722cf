// The framework-neutral part of the middleware: reading the key, asking
// the verifier, and turning every outcome into an identity or a refusal,
// exactly as keyward's Go middleware does. The adapters (express, hono,
// next) only move headers and responses.
import { CachedVerifier, type CacheOptions } from "./cache.js";
import { Client, type ClientOptions, type Verifier } from "./client.js";
import { KeywardError } from "./errors.js";
import type { ErrorCode, Identity, LimitLevel, RateLimitStatus, VerifyRequest, VerifyResult } from "./types.js";

/** The challenge sent with every 401, as keyward's own. */
export const WWW_AUTHENTICATE = 'Bearer realm="keyward"';
/** The media type of refusals (RFC 9457). */
export const PROBLEM_CONTENT_TYPE = "application/problem+json";
/** Names the agent acting with a key; echoed in the identity, grants nothing. */
export const HEADER_AGENT = "X-Keyward-Agent";
/** Bound on X-Keyward-Agent, in bytes, as on the server. */
export const MAX_AGENT_LEN = 200;

const ERR_NO_KEY = 'no API key: send it as "Authorization: Bearer <key>" or "X-API-Key: <key>"';
const ERR_AMBIGUOUS = "Authorization and X-API-Key carry different keys: send one";
const ERR_BAD_AUTHORIZATION = 'Authorization must be "Bearer <key>"';
const ERR_BAD_AGENT = "X-Keyward-Agent must be printable text of at most 200 bytes";
const ERR_AGENT_CONFLICT = "the agent headers name different agents: send the agent in one header";
const ERR_INVALID_KEY = "invalid API key";
const ERR_UNAVAILABLE = "API keys cannot be checked right now: try again shortly";
const ERR_PERMISSIONS = "the API key lacks the required permissions";

/** A refused request: what the error writer gets. */
export interface Denial {
  /** 400, 401, 403, 429 or 503. */
  status: number;
  /** keyward's error code of status, the problem's "code". */
  code: ErrorCode;
  /** What went wrong, without saying which check failed: safe to show the client. */
  detail: string;
  /** The verifier's decision; absent when none was made. */
  decision?: VerifyResult["code"];
  /** The key presented, when the verifier found it. For logs. */
  keyId?: string;
  /** Why no decision could be made (a 503). For logs, never for the client. */
  cause?: unknown;
  /** The key's rate limits on a 429, from which the RateLimit fields are set. */
  rateLimits?: RateLimitStatus[];
  /**
   * On a 429, the level whose rate limits or credits refused the request:
   * the key's own, its user's or its account's (shared by all their keys).
   * problemBody shows it as limit_level.
   */
  limitLevel?: LimitLevel;
  /** The WWW-Authenticate challenge of a 401; absent: WWW_AUTHENTICATE. */
  challenge?: string;
}

/** Where refusals and verifier failures are logged. Raw keys never are. */
export interface Logger {
  warn(msg: string, fields: Record<string, unknown>): void;
  debug?(msg: string, fields: Record<string, unknown>): void;
}

/** Options every adapter takes. */
export interface GuardOptions {
  /**
   * Who verifies the keys. Default: a CachedVerifier in front of a Client
   * configured by `client` and `cache` (KEYWARD_URL and KEYWARD_API_KEY when
   * not passed), shared by every guard made without options.
   */
  verifier?: Verifier;
  /** Options of the default verifier's Client. */
  client?: ClientOptions;
  /** Options of the default verifier's cache. */
  cache?: CacheOptions;
  /** Permissions every request needs, checked by keyward (403 without them). */
  permissions?: string[];
  /**
   * A permission query every request's key must satisfy too, evaluated by
   * keyward: "notes:read AND (search:run OR admin:*)". A malformed one
   * refuses every request with 503 (the log names invalid_query).
   */
  query?: string;
  /**
   * The least role of the keys admitted: "root", "account_admin" or "user";
   * or a named role of their account they must hold, such as "reader".
   */
  requireRole?: "root" | "account_admin" | "user" | (string & {});
  /**
   * The environment keys must be in, e.g. "live": a key of another gets
   * 403, and so does an answer naming none (fail closed).
   */
  environment?: string;
  /**
   * Paths let through without a key: exact ("/healthz"), or a prefix when
   * ending in "*" ("/public/*"). A path that is not clean is never exempt.
   */
  exempt?: string[];
  /** Where failures (warn) and refusals (debug) go. Default: console.warn for failures. */
  logger?: Logger;
  /**
   * The WWW-Authenticate challenge sent with a 401, for clients that expect
   * another scheme (e.g. 'ApiKey realm="notes"'). Default: 'Bearer realm="keyward"'.
   */
  wwwAuthenticate?: string;
  /**
   * Headers read as the agent besides X-Keyward-Agent, for clients that
   * send their own (e.g. ["X-OpenViking-Agent"]). Each is checked as
   * X-Keyward-Agent is; headers naming different agents are refused (400),
   * as keyward refuses them.
   */
  agentHeaders?: string[];
}

/** What a framework gives the guard about a request. */
export interface GuardRequest {
  /**
   * Every value of a header, by lower-case name, one per time the header
   * was sent (repeated headers are refused). A Fetch API Headers object
   * joins repeated headers with ", ": read it with fetchHeader.
   */
  header(name: string): string[];
  /** The request path, as routed. */
  path: string;
  method: string;
  /** The client's address, for the key's IP rules. */
  ip?: string | undefined;
  signal?: AbortSignal | undefined;
}

/** The outcome of a check: the caller, or a refusal. */
export type Verdict = { ok: true; identity: Identity; result: VerifyResult } | { ok: false; denial: Denial };

/** The outcome of a check: a verdict, or an exempt path. */
export type Outcome = Verdict | { ok: "exempt" };

const EXEMPT: Outcome = Object.freeze({ ok: "exempt" as const });

const defaultLogger: Logger = {
  warn(msg, fields) {
    console.warn(`keyward: ${msg}`, fields);
  },
};

let sharedVerifier: Verifier | undefined;

/** The verifier of guards made without one: one per process. */
function defaultVerifier(opts: GuardOptions): Verifier {
  if (opts.client || opts.cache) return new CachedVerifier(new Client(opts.client), opts.cache);
  sharedVerifier ??= new CachedVerifier(new Client());
  return sharedVerifier;
}

/**
 * Guard admits a request only with a key its verifier accepts. Made once
 * per middleware; its options are checked when it is made (a bad URL,
 * plain http to a remote host, an exempt path without "/" throw).
 */
export class Guard {
  readonly verifier: Verifier;
  readonly #perms: string[] | undefined;
  readonly #needs: Pick<VerifyRequest, "query" | "require_role" | "environment">;
  readonly #hasNeeds: boolean;
  readonly #exempt: readonly string[];
  readonly #log: Logger;
  readonly #challenge: string | undefined;
  readonly #agentHeaders: readonly string[];

  constructor(opts: GuardOptions = {}) {
    for (const p of opts.exempt ?? []) {
      if (!p.startsWith("/")) throw new KeywardError("invalid", `exempt path ${JSON.stringify(p)} must start with /`);
    }
    this.verifier = opts.verifier ?? defaultVerifier(opts);
    this.#perms = opts.permissions?.length ? [...opts.permissions] : undefined;
    this.#needs = {
      ...(opts.query ? { query: opts.query } : {}),
      ...(opts.requireRole ? { require_role: opts.requireRole } : {}),
      ...(opts.environment ? { environment: opts.environment } : {}),
    };
    this.#hasNeeds = Object.keys(this.#needs).length > 0;
    this.#exempt = [...(opts.exempt ?? [])];
    this.#log = opts.logger ?? defaultLogger;
    if (opts.wwwAuthenticate !== undefined && !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+( [\x20-\x7e]*)?$/.test(opts.wwwAuthenticate)) {
      throw new KeywardError("invalid", `wwwAuthenticate ${JSON.stringify(opts.wwwAuthenticate)} must be an auth scheme, optionally followed by printable parameters`);
    }
    this.#challenge = opts.wwwAuthenticate;
    this.#agentHeaders = agentHeaderNames(opts.agentHeaders ?? []);
  }

  /** isExempt reports whether path may pass without a key. */
  isExempt(path: string): boolean {
    if (this.#exempt.length === 0 || !isClean(path)) return false;
    for (const e of this.#exempt) {
      if (e.endsWith("*") ? path.startsWith(e.slice(0, -1)) : path === e) return true;
    }
    return false;
  }

  /** check lets an exempt path through, else verifies r; it never throws. */
  check(r: GuardRequest): Promise<Outcome> {
    const now = this.checkNow(r);
    return now ? Promise.resolve(now) : this.verify(r);
  }

  /**
   * checkNow is check without waiting, for the outcomes that need no call
   * to keyward: an exempt path, a request refused for its headers, or a
   * key whose answer the verifier (a CachedVerifier) holds. Undefined when
   * keyward must be asked: then call verify. It never throws.
   */
  checkNow(r: GuardRequest): Outcome | undefined {
    if (this.#exempt.length > 0 && this.isExempt(r.path)) return EXEMPT;
    const read = this.#read(r);
    if ("status" in read) return this.#deny(r, read);
    const res = this.verifier instanceof CachedVerifier ? this.verifier.lookup(read.req) : undefined;
    return res && this.#decide(r, res, read.agent);
  }

  /** verify reads the key of r and asks the verifier; it never throws. */
  async verify(r: GuardRequest): Promise<Verdict> {
    const read = this.#read(r);
    if ("status" in read) return this.#deny(r, read);
    let res: VerifyResult;
    try {
      res = await this.verifier.verifyKey(read.req, { signal: r.signal });
    } catch (err) {
      return this.#deny(r, unavailable(err));
    }
    return this.#decide(r, res, read.agent);
  }

  /** The verification r asks for, and its agent; or the refusal of its headers. */
  #read(r: GuardRequest): { req: VerifyRequest; agent: string } | Denial {
    const key = keyOf(r);
    if (typeof key !== "string") return key;
    let agent = agentOf(r.header("x-keyward-agent"));
    for (const name of this.#agentHeaders) {
      if (agent === null) break;
      const a = agentOf(r.header(name));
      if (a === null || (a !== "" && agent !== "" && a !== agent)) {
        return { status: 400, code: "invalid", detail: a === null ? ERR_BAD_AGENT : ERR_AGENT_CONFLICT };
      }
      agent ||= a;
    }
    if (agent === null) return { status: 400, code: "invalid", detail: ERR_BAD_AGENT };
    const req: VerifyRequest = { key, permissions: this.#perms, agent: agent || undefined, ip: unmapped(r.ip) };
    if (this.#hasNeeds) Object.assign(req, this.#needs);
    return { req, agent };
  }

  /** The verdict of the verifier's answer res to r. */
  #decide(r: GuardRequest, res: VerifyResult, agent: string): Verdict {
    if (!res || typeof res !== "object") {
      return this.#deny(r, unavailable(new KeywardError("internal", "the verifier returned neither a result nor an error")));
    }
    if (!res.valid || res.code !== "VALID") return this.#deny(r, denialOf(res));
    const env = this.#needs.environment;
    if (env !== undefined && res.environment !== env) {
      // A verifier that answered without the environment asked for (one
      // that knows none) fails closed, as keyward's middleware does.
      return this.#deny(r, denialOf({ ...res, valid: false, code: "WRONG_ENVIRONMENT" }));
    }
    return { ok: true, identity: identityOf(res, agent), result: res };
  }

  /** The refusal of a request whose identity lacks one of perms (401 without an identity). */
  static requirePermissions(identity: Identity | undefined, perms: readonly string[]): Denial | undefined {
    if (!identity) return { status: 401, code: "unauthorized", detail: ERR_NO_KEY };
    if (!hasPermissions(identity, perms)) {
      return { status: 403, code: "forbidden", detail: ERR_PERMISSIONS, decision: "INSUFFICIENT_PERMISSIONS", keyId: identity.key_id };
    }
    return undefined;
  }

  #deny(r: GuardRequest, d: Denial): Verdict {
    if (d.status === 401 && this.#challenge) d.challenge = this.#challenge;
    // Logs carry the method, never the path: a path can hold anything a
    // client typed, a raw key included.
    if (d.cause !== undefined && !r.signal?.aborted) {
      this.#log.warn("API key could not be checked", { method: r.method, err: String((d.cause as Error)?.message ?? d.cause) });
    } else {
      this.#log.debug?.("request refused", { method: r.method, status: d.status, decision: d.decision, key_id: d.keyId });
    }
    return { ok: false, denial: d };
  }
}

/**
 * fetchHeader reads a Fetch API Headers object for GuardRequest.header.
 * Headers joins a header sent twice into one value with ", ", so a value
 * with a comma is taken as repeated: a repeated X-Keyward-Agent is then
 * refused (400), as keyward refuses it, and so is one agent holding a
 * comma, which cannot be told apart from two (keys hold no comma).
 */
export function fetchHeader(headers: Headers): (name: string) => string[] {
  return (name) => {
    const v = headers.get(name);
    if (v === null) return [];
    return v.includes(",") ? v.split(",") : [v];
  };
}

/**
 * rawHeader returns every value of header name (lower case) from a Node
 * request's rawHeaders, one per time it was sent: Node's parsed headers
 * keep only the first of several Authorization headers.
 */
export function rawHeader(raw: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (n.length === name.length && n.toLowerCase() === name) out.push(raw[i + 1]!);
  }
  return out;
}

/**
 * hasPermissions reports whether identity holds every one of perms; root
 * holds all. A held wildcard covers as keyward's does (see covers).
 */
export function hasPermissions(identity: Identity | undefined, perms: readonly string[]): boolean {
  if (!identity) return false;
  if (identity.role === "root") return true;
  const held = identity.permissions ?? [];
  return perms.every((p) => held.some((h) => covers(h, p)));
}

/** cut returns the first segment of p, what follows its separator, and the separator ("" for the last). */
function cut(p: string): [string, string, string] {
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === ":" || c === ".") return [p.slice(0, i), p.slice(i + 1), c];
  }
  return [p, "", ""];
}

/**
 * covers reports whether the held permission covers wanted, segment by
 * segment as keyward matches them: segments are separated by ":" or ".";
 * a "*" segment stands for any one segment, and as the last segment for
 * any rest of one segment or more ("memories:*" covers "memories:read"
 * and "memories:notes.read", not "memories"); "*" covers everything.
 */
export function covers(held: string, wanted: string): boolean {
  let h = held;
  let g = wanted;
  for (;;) {
    const [hs, hrest, hsep] = cut(h);
    const [gs, grest, gsep] = cut(g);
    if (hs === "*" && hsep === "") return true;
    if (gs === "*" && gsep === "") return false;
    if ((hs !== "*" && hs !== gs) || hsep !== gsep) return false;
    if (hsep === "") return true;
    h = hrest;
    g = grest;
  }
}

/**
 * keyOf reads the key as keyward does: "Authorization: Bearer KEY" or
 * "X-API-Key: KEY", each at most once, both only with the same key; never
 * the query string. A comma means a header was sent twice and joined (keys
 * hold none).
 */
function keyOf(r: GuardRequest): string | Denial {
  const auths = r.header("authorization");
  const keys = r.header("x-api-key");
  const unauthorized = (detail: string): Denial => ({ status: 401, code: "unauthorized", detail });
  if (auths.length > 1 || keys.length > 1) return unauthorized(ERR_AMBIGUOUS);
  let bearer = "";
  let key = "";
  if (auths.length === 1) {
    const a = auths[0]!.trim();
    const sp = a.indexOf(" ");
    const token = sp < 0 ? "" : a.slice(sp + 1).trim();
    if (sp < 0 || a.slice(0, sp).toLowerCase() !== "bearer" || token === "") return unauthorized(ERR_BAD_AUTHORIZATION);
    bearer = token;
  }
  if (keys.length === 1) {
    key = keys[0]!.trim();
    if (key === "") return unauthorized(ERR_NO_KEY);
  }
  if (bearer.includes(",") || key.includes(",")) return unauthorized(ERR_AMBIGUOUS);
  if (bearer && key && bearer !== key) return unauthorized(ERR_AMBIGUOUS);
  return bearer || key || unauthorized(ERR_NO_KEY);
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * agentHeaderNames checks the agentHeaders option as keyward checks its
 * agent_headers setting and returns the names in lower case: header names,
 * neither X-Keyward-Agent (always read) nor a credential header, each once.
 */
function agentHeaderNames(names: readonly string[]): string[] {
  const out: string[] = [];
  for (const n of names) {
    const lower = n.toLowerCase();
    let problem = "";
    if (!/^[A-Za-z0-9_-]+$/.test(n)) problem = "is not a header name: use letters, digits and '-', e.g. X-OpenViking-Agent";
    else if (lower === "x-keyward-agent") problem = "is always read: list only other names";
    else if (lower === "authorization" || lower === "x-api-key") problem = "is a credential header: pick another name";
    else if (out.includes(lower)) problem = "is listed twice: list it once";
    if (problem) throw new KeywardError("invalid", `agent header ${JSON.stringify(n)} ${problem}`);
    out.push(lower);
  }
  return out;
}

/**
 * agentOf returns X-Keyward-Agent checked as the server does: "" when
 * absent, null when sent twice, too long, not UTF-8 or holding controls.
 * Header values arrive as one character per byte.
 */
function agentOf(values: string[]): string | null {
  if (values.length === 0) return "";
  if (values.length > 1) return null;
  let a = values[0]!.trim();
  if (a.length > MAX_AGENT_LEN) return null;
  if (/[^\x20-\x7e]/.test(a)) {
    const bytes = new Uint8Array(a.length);
    for (let i = 0; i < a.length; i++) {
      const c = a.charCodeAt(i);
      if (c > 0xff) return null;
      bytes[i] = c;
    }
    try {
      a = utf8.decode(bytes);
    } catch {
      return null;
    }
    if (/[\u0000-\u001f\u007f-\u009f]/.test(a)) return null;
  }
  return a;
}

/**
 * isClean reports whether p is an absolute path without empty, "." or ".."
 * segments (a trailing slash is allowed) nor an encoded dot, slash or
 * backslash, so prefix matching cannot be walked around.
 */
function isClean(p: string): boolean {
  if (!p.startsWith("/") || /%2e|%2f|%5c|\\/i.test(p)) return false;
  const segs = p.slice(1).split("/");
  return segs.every((s, i) => (s === "" ? i === segs.length - 1 : s !== "." && s !== ".."));
}

/** unmapped returns an IPv4-mapped IPv6 address (a dual-stack socket's "::ffff:10.0.0.1") as IPv4. */
function unmapped(ip: string | undefined): string | undefined {
  if (!ip) return undefined;
  return ip.startsWith("::ffff:") && ip.includes(".") ? ip.slice(7) : ip;
}

function unavailable(cause: unknown): Denial {
  return { status: 503, code: "unavailable", detail: ERR_UNAVAILABLE, cause };
}

/** denialOf maps a refused result to its status and client-safe detail, as keyward does for its own routes. */
function denialOf(res: VerifyResult): Denial {
  const base = { decision: res.code, keyId: res.key_id };
  switch (res.code) {
    case "MALFORMED":
    case "NOT_FOUND":
    case "DISABLED":
    case "REVOKED":
    case "EXPIRED":
      return { ...base, status: 401, code: "unauthorized", detail: ERR_INVALID_KEY };
    case "INSUFFICIENT_PERMISSIONS":
      return { ...base, status: 403, code: "forbidden", detail: ERR_PERMISSIONS };
    case "WRONG_ENVIRONMENT":
      return { ...base, status: 403, code: "forbidden", detail: "the API key is for another environment: use a key of this service's environment" };
    case "IP_BLOCKED":
    case "IP_NOT_ALLOWED":
      return { ...base, status: 403, code: "forbidden", detail: "requests from this address are not allowed" };
    case "RATE_LIMITED":
      return { ...base, status: 429, code: "rate_limited", detail: "rate limit exceeded: slow down", rateLimits: res.rate_limits, limitLevel: res.limit_level };
    case "USAGE_EXCEEDED":
      return { ...base, status: 429, code: "rate_limited", detail: "usage quota exhausted", rateLimits: res.rate_limits, limitLevel: res.limit_level };
    case "UNAVAILABLE":
      return { ...base, status: 503, code: "unavailable", detail: ERR_UNAVAILABLE };
  }
  // An unknown code, or VALID with valid false: fail closed.
  return {
    ...base,
    status: 503,
    code: "unavailable",
    detail: ERR_UNAVAILABLE,
    cause: new KeywardError("internal", `the verifier answered code ${JSON.stringify(res.code)} with valid=${res.valid}`),
  };
}

/** identityOf returns the identity of a valid result for this request, with the request's own agent. */
function identityOf(res: VerifyResult, agent: string): Identity {
  // A CachedVerifier's answers are frozen, with the request's own agent.
  if (res.identity && Object.isFrozen(res.identity) && (res.identity.agent ?? "") === agent && res.identity.key_id) return res.identity;
  const id: Identity = res.identity
    ? { ...res.identity }
    : { key_id: res.key_id ?? "", role: "user", permissions: res.permissions, expires_at: res.expires_at ?? undefined };
  if (!id.key_id) id.key_id = res.key_id ?? "";
  if (agent) id.agent = agent;
  else delete id.agent;
  return Object.freeze(id);
}

const titles: Partial<Record<ErrorCode, string>> = {
  invalid: "Invalid request",
  unauthorized: "Unauthorized",
  forbidden: "Forbidden",
  rate_limited: "Rate limited",
  unavailable: "Unavailable",
};

const statusTexts: Record<number, string> = { 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 429: "Too Many Requests", 503: "Service Unavailable" };

/**
 * refusalHeaders are the headers every refusal carries, set before any
 * error writer runs: Cache-Control, WWW-Authenticate on 401, the RateLimit
 * fields on 429, Retry-After on 429 (when a limit refused) and 503.
 */
export function refusalHeaders(d: Denial): Record<string, string> {
  const h: Record<string, string> = { "Cache-Control": "no-store" };
  if (d.status === 401) h["WWW-Authenticate"] = d.challenge ?? WWW_AUTHENTICATE;
  else if (d.status === 429) Object.assign(h, rateLimitHeaders(d.rateLimits));
  else if (d.status === 503) h["Retry-After"] = "1";
  return h;
}

/** problemBody is d as keyward's own problem+json, for the request path instance. */
export function problemBody(d: Denial, instance: string): string {
  return JSON.stringify({
    type: "urn:keyward:error:" + d.code,
    title: titles[d.code] ?? statusTexts[d.status] ?? "Error",
    status: d.status,
    detail: d.detail,
    code: d.code,
    instance,
    ...(d.limitLevel ? { limit_level: d.limitLevel } : {}),
  });
}

/** problemResponse is the default refusal of the fetch-based adapters: problem+json with refusalHeaders. */
export function problemResponse(d: Denial, instance: string): Response {
  return new Response(problemBody(d, instance), {
    status: d.status,
    headers: { ...refusalHeaders(d), "Content-Type": PROBLEM_CONTENT_TYPE, "X-Content-Type-Options": "nosniff" },
  });
}

/**
 * rateLimitHeaders renders a result's rate limits as keyward does:
 * RateLimit-Policy and RateLimit (structured fields), and Retry-After when
 * a limit refused. Empty for none.
 */
export function rateLimitHeaders(ss: readonly RateLimitStatus[] | undefined): Record<string, string> {
  if (!ss || ss.length === 0) return {};
  const h: Record<string, string> = {
    "RateLimit-Policy": ss.map((s) => `${sfString(s.name)};q=${sfInt(s.limit)};w=${sfInt(Math.ceil(durationMs(s.window) / 1000))}`).join(", "),
    RateLimit: ss.map((s) => `${sfString(s.name)};r=${sfInt(s.remaining)};t=${sfInt(Math.ceil(s.reset_ms / 1000))}`).join(", "),
  };
  const denied = ss.filter((s) => !s.allowed);
  if (denied.length > 0) {
    const wait = Math.max(0, ...denied.map((s) => s.retry_after_ms ?? 0));
    h["Retry-After"] = String(Math.max(Math.ceil(wait / 1000), 1));
  }
  return h;
}

function sfInt(v: number): number {
  return Math.min(Math.max(Math.trunc(v) || 0, 0), 999_999_999_999_999);
}

function sfString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.charCodeAt(0);
    if (ch === '"' || ch === "\\") out += "\\" + ch;
    else if (c < 0x20 || c > 0x7e) out += "?";
    else out += ch;
  }
  return out + '"';
}

const units: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, "μs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** durationMs parses a Go duration ("1m0s", "24h", "1.5s") into milliseconds; 0 when malformed. */
function durationMs(s: string): number {
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/gy;
  let total = 0;
  let end = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * units[m[2]!]!;
    end = re.lastIndex;
  }
  return end === s.length ? total : 0;
}
