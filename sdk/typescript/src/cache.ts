import { KeywardError } from "./errors.js";
import type { CallOptions, Verifier } from "./client.js";
import type { Decision, VerifyRequest, VerifyResult } from "./types.js";

/** Defaults of CacheOptions, in milliseconds and entries: those of the Go SDK. */
export const DEFAULT_CACHE_TTL_MS = 15_000;
export const DEFAULT_NEGATIVE_CACHE_TTL_MS = 5_000;
export const DEFAULT_MAX_ENTRIES = 10_000;
export const DEFAULT_MAX_NEGATIVE = 10_000;
export const DEFAULT_VERIFY_TIMEOUT_MS = 5_000;

/** Options of a CachedVerifier. 0 or absent takes the default. */
export interface CacheOptions {
  /**
   * How long a VALID answer is reused (never past the key's expiry); also
   * how long a revocation can take to be seen. Negative: not cached.
   * Default 15000.
   */
  ttlMs?: number;
  /**
   * How long a refusal (NOT_FOUND, REVOKED, INSUFFICIENT_PERMISSIONS, ...)
   * is reused. RATE_LIMITED, USAGE_EXCEEDED and UNAVAILABLE never are, nor
   * any answer for a key with rate limits or credits. Negative: not cached.
   * Default 5000.
   */
  negativeTtlMs?: number;
  /** Bound on cached VALID answers. Default 10000. */
  maxEntries?: number;
  /** Separate bound on cached refusals, so a flood of bad keys cannot push out good ones. Default 10000. */
  maxNegative?: number;
  /** Bound on one call to keyward, shared by the requests waiting on it. Default 5000. */
  timeoutMs?: number;
  /** The clock of the TTLs, in milliseconds. Default Date.now. */
  now?: () => number;
}

/** Every decision keyward answers; an unknown one is never cached. */
const DECISIONS: ReadonlySet<string> = new Set<Decision>([
  "VALID",
  "MALFORMED",
  "NOT_FOUND",
  "DISABLED",
  "REVOKED",
  "EXPIRED",
  "IP_BLOCKED",
  "IP_NOT_ALLOWED",
  "INSUFFICIENT_PERMISSIONS",
  "RATE_LIMITED",
  "USAGE_EXCEEDED",
  "UNAVAILABLE",
]);

interface Entry {
  /** The cached answer (frozen, without an agent); null marks a metered key. */
  res: VerifyResult | null;
  expires: number;
}

/** evictScan bounds the entries looked at for an expired one to evict. */
const EVICT_SCAN = 8;

type SyncHash = (s: string) => string;

/**
 * syncSHA256 is node:crypto's SHA-256 where the runtime has it (Node,
 * Deno, Bun, workers with Node compatibility), found without a static
 * import so that the package still loads on edge runtimes, which fall back
 * to the asynchronous Web Crypto digest.
 */
const syncSHA256: SyncHash | undefined = (() => {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const c = proc?.getBuiltinModule?.("node:crypto") as
    | {
        hash?: (alg: string, data: string, enc: string) => string;
        createHash?: (alg: string) => { update(s: string): { digest(enc: string): string } };
      }
    | undefined;
  if (typeof c?.hash === "function") {
    const hash = c.hash;
    return (s) => hash("sha256", s, "base64");
  }
  if (typeof c?.createHash === "function") {
    const createHash = c.createHash;
    return (s) => createHash("sha256").update(s).digest("base64");
  }
  return undefined;
})();

const encoder = new TextEncoder();

async function webSHA256(s: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(s)));
  let out = "";
  for (const b of d) out += String.fromCharCode(b);
  return btoa(out);
}

/**
 * CachedVerifier asks another verifier, normally a Client talking to a
 * remote keyward, and remembers the answers, with the Go SDK's semantics:
 *
 * - VALID answers are reused for ttlMs (never past the key's expiry),
 *   refusals for negativeTtlMs, each bounded in number.
 * - Entries are keyed by a SHA-256 digest of the key, the permissions, the
 *   limits, the cost, the IP and the environment, query and role required:
 *   raw keys are held only while their call
 *   is in flight. The agent is not part of the entry; each answer carries
 *   the agent of its own request.
 * - Concurrent requests with the same uncached key make one call; a
 *   request whose signal aborts stops waiting without failing the others.
 * - Errors (keyward unreachable, its 503, the verifier key refused) are
 *   thrown and never cached, and neither is UNAVAILABLE, RATE_LIMITED or
 *   USAGE_EXCEEDED: the next request asks again.
 * - A key with rate limits or credits is metered: every request for it
 *   reaches keyward. For ttlMs the verifier remembers the key is metered
 *   and sends each of its requests on its own.
 *
 * What the cache trades: a revoked key keeps passing until its entry
 * expires (at most ttlMs). Use ttlMs: -1 where every request must reach
 * keyward.
 *
 * Answers are frozen: read them, never change them.
 */
export class CachedVerifier implements Verifier {
  readonly #v: Verifier;
  readonly #ttl: number;
  readonly #negTTL: number;
  readonly #maxPos: number;
  readonly #maxNeg: number;
  readonly #timeout: number;
  readonly #now: () => number;
  readonly #pos = new Map<string, Entry>();
  readonly #neg = new Map<string, Entry>();
  readonly #calls = new Map<string, Promise<VerifyResult>>();

  constructor(verifier: Verifier, opts: CacheOptions = {}) {
    if (!verifier || typeof verifier.verifyKey !== "function") {
      throw new KeywardError("invalid", "CachedVerifier needs a verifier (a Client)");
    }
    this.#v = verifier;
    this.#ttl = opts.ttlMs || DEFAULT_CACHE_TTL_MS;
    this.#negTTL = opts.negativeTtlMs || DEFAULT_NEGATIVE_CACHE_TTL_MS;
    this.#maxPos = opts.maxEntries && opts.maxEntries > 0 ? opts.maxEntries : DEFAULT_MAX_ENTRIES;
    this.#maxNeg = opts.maxNegative && opts.maxNegative > 0 ? opts.maxNegative : DEFAULT_MAX_NEGATIVE;
    this.#timeout = opts.timeoutMs && opts.timeoutMs > 0 ? opts.timeoutMs : DEFAULT_VERIFY_TIMEOUT_MS;
    this.#now = opts.now ?? Date.now;
  }

  /**
   * Answers from the cache when it holds an answer for req, else from the
   * verifier, sharing one call among concurrent requests for the same key.
   */
  async verifyKey(req: VerifyRequest, opts?: CallOptions): Promise<VerifyResult> {
    const material = materialOf(req);
    const d = syncSHA256 ? syncSHA256(material) : await webSHA256(material);
    const e = this.#cached(d, this.#now());
    if (e) {
      return e.res === null ? this.#direct(d, req, opts?.signal) : withAgent(e.res, req.agent);
    }
    let call = this.#calls.get(d);
    const own = call === undefined;
    if (call === undefined) {
      call = this.#fetch(d, req);
      // Every waiter may have given up before it fails: not an unhandled
      // rejection.
      call.catch(() => {});
      this.#calls.set(d, call);
    }
    const res = await waitFor(call, opts?.signal);
    if (!own && metered(res)) {
      // The shared call counted one request: this one must be counted too.
      return this.#direct(d, req, opts?.signal);
    }
    return withAgent(res, req.agent);
  }

  /**
   * lookup answers req from the cache alone, synchronously: the cached
   * answer (carrying req's agent), or undefined when keyward must be asked
   * (a miss, an expired entry, a metered key, or a runtime without a
   * synchronous SHA-256). The middleware asks it first, so that a cache
   * hit costs no promise.
   */
  lookup(req: VerifyRequest): VerifyResult | undefined {
    if (!syncSHA256) return undefined;
    const e = this.#cached(syncSHA256(materialOf(req)), this.#now());
    return e && e.res !== null ? withAgent(e.res, req.agent) : undefined;
  }

  /** The call of the requests waiting on d: it outlives any one of them. */
  async #fetch(d: string, req: VerifyRequest): Promise<VerifyResult> {
    try {
      return await this.#ask(d, req, undefined);
    } finally {
      this.#calls.delete(d);
    }
  }

  /** Asks for req alone, without the cache or sharing the call, and caches the answer. */
  async #direct(d: string, req: VerifyRequest, signal: AbortSignal | undefined): Promise<VerifyResult> {
    return withAgent(await this.#ask(d, req, signal), req.agent);
  }

  async #ask(d: string, req: VerifyRequest, signal: AbortSignal | undefined): Promise<VerifyResult> {
    const start = this.#now();
    const timeout = AbortSignal.timeout(this.#timeout);
    const res = await this.#v.verifyKey(req, { signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
    if (!res || typeof res !== "object") {
      throw new KeywardError("internal", "the verifier returned neither a result nor an error");
    }
    const frozen = freeze(res);
    this.#store(d, frozen, start);
    return frozen;
  }

  /** The unexpired entry for d. */
  #cached(d: string, now: number): Entry | undefined {
    for (const m of [this.#pos, this.#neg]) {
      const e = m.get(d);
      if (e === undefined) continue;
      if (now < e.expires) return e;
      m.delete(d);
    }
    return undefined;
  }

  /** Caches res, asked for at now, if its kind is cacheable. */
  #store(d: string, res: VerifyResult, now: number): void {
    const code = res.code;
    if (res.valid !== (code === "VALID")) return; // inconsistent: refused, not kept
    if (metered(res)) {
      // Remember the key is metered, so its requests are neither answered
      // from the cache nor made to share a call.
      if (this.#ttl < 0) return;
      this.#neg.delete(d);
      put(this.#pos, this.#maxPos, d, { res: null, expires: now + this.#ttl }, now);
      return;
    }
    if (code === "VALID") {
      if (this.#ttl < 0) return;
      let expires = now + this.#ttl;
      const exp = res.expires_at ? Date.parse(res.expires_at) : NaN;
      if (exp < expires) expires = exp;
      put(this.#pos, this.#maxPos, d, { res, expires }, now);
      return;
    }
    if (code === "UNAVAILABLE" || code === "RATE_LIMITED" || code === "USAGE_EXCEEDED" || !DECISIONS.has(code)) return;
    if (this.#negTTL < 0) return;
    this.#pos.delete(d);
    put(this.#neg, this.#maxNeg, d, { res, expires: now + this.#negTTL }, now);
  }
}

/** put adds e to m, first evicting, when m is full, an expired entry among the oldest few, else the oldest. */
function put(m: Map<string, Entry>, max: number, d: string, e: Entry, now: number): void {
  if (!m.has(d) && m.size >= max) {
    let victim: string | undefined;
    let n = 0;
    for (const [k, old] of m) {
      victim ??= k;
      if (now >= old.expires) {
        victim = k;
        break;
      }
      if (++n === EVICT_SCAN) break;
    }
    if (victim !== undefined) m.delete(victim);
  }
  m.set(d, e);
}

/** metered reports whether res is of a key with rate limits or credits, whose every request must reach keyward. */
export function metered(res: VerifyResult): boolean {
  return (res.rate_limits?.length ?? 0) > 0 || typeof res.credits_remaining === "number";
}

/**
 * materialOf is what decides a verification, hashed into the cache key:
 * the key, the sets of permissions and of limits (order and duplicates do
 * not matter), the cost, the IP, the environment, the query and the role
 * required. Every part is length-prefixed, so no two requests share it by
 * concatenation.
 */
function materialOf(req: VerifyRequest): string {
  const ip = req.ip ?? "";
  const env = req.environment ?? "";
  const q = req.query ?? "";
  const role = req.require_role ?? "";
  return `${req.key.length}:${req.key}${setOf(req.permissions)}${setOf(req.limits)}${req.cost || 0};${ip.length}:${ip}${env.length}:${env}${q.length}:${q}${role.length}:${role}`;
}

/** setOf encodes the distinct strings of ss, sorted, after their number. */
function setOf(ss: readonly string[] | undefined): string {
  if (!ss || ss.length === 0) return "0;";
  const set = ss.length === 1 ? ss : [...new Set(ss)].sort();
  let out = `${set.length};`;
  for (const s of set) out += `${s.length}:${s}`;
  return out;
}

/** waitFor resolves with call, or rejects when signal aborts first; the call goes on. */
function waitFor<T>(call: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return call;
  if (signal.aborted) return Promise.reject(aborted(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(aborted(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    call.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (err) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}

function aborted(signal: AbortSignal): KeywardError {
  return new KeywardError("unavailable", "verifying the key: the request was aborted", { cause: signal.reason });
}

/**
 * withAgent returns the frozen answer res for a request by agent: res
 * itself when it names no agent and none is asked for, else a frozen copy
 * whose identity carries the request's own agent.
 */
function withAgent(res: VerifyResult, agent: string | undefined): VerifyResult {
  const id = res.identity;
  if (!id || (id.agent || undefined) === (agent || undefined)) return res;
  const { agent: _old, ...rest } = id;
  return Object.freeze({ ...res, identity: Object.freeze(agent ? { ...rest, agent } : rest) });
}

/** freeze deep-freezes an answer, so that what the cache hands out cannot be changed. */
function freeze<T>(v: T): T {
  if (v !== null && typeof v === "object" && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v as object)) freeze(x);
  }
  return v;
}
