import { checkURL, DEFAULT_URL, env } from "./config.js";
import { codeOfStatus, KeywardError } from "./errors.js";
import type { paths } from "./openapi.js";
import type {
  Account,
  AccountCreate,
  AccountList,
  AccountUpdate,
  CreatedKey,
  Credits,
  Identity,
  Key,
  KeyCreate,
  KeyList,
  KeyRevocation,
  KeyRotate,
  KeyUpdate,
  Meter,
  MeterSet,
  PortalBranding,
  PortalBrandingSet,
  PortalLink,
  PortalSessionCreate,
  Role,
  User,
  UserCreate,
  UserList,
  UserUpdate,
  VerifyRequest,
  VerifyResult,
} from "./types.js";

/** Default bound on one call to keyward, in milliseconds. */
export const DEFAULT_TIMEOUT_MS = 30_000;

/** Options of a Client. Anything not passed is read as the CLI reads it. */
export interface ClientOptions {
  /** keyward's base URL. Default: KEYWARD_URL, else http://127.0.0.1:8080. */
  url?: string;
  /**
   * The key the client acts with (Authorization: Bearer). Default:
   * KEYWARD_API_KEY. To verify keys it must be root or hold keys:verify.
   */
  apiKey?: string;
  /** Sent as X-Keyward-Agent: names the agent acting with the key. */
  agent?: string;
  /**
   * Allow a plain http URL to a host that is not loopback. Off by default:
   * keys would cross the network in clear.
   */
  allowInsecureHttp?: boolean;
  /** Bound on one call, in milliseconds. Default 30000. */
  timeoutMs?: number;
  /** The fetch to use. Default: the global fetch. */
  fetch?: typeof fetch;
}

/** Per-call options. */
export interface CallOptions {
  /** Aborts the call (it then fails with code "unavailable"). */
  signal?: AbortSignal;
}

/** A page of a list: start after the cursor `next` of the previous page; limit 1 to 1000. */
export interface Page {
  after?: string;
  limit?: number;
}

/** Which keys listKeys returns. */
export interface KeyFilter extends Page {
  account_id?: string;
  user_id?: string;
  role?: Role;
}

/** Anything that verifies keys: a Client, a CachedVerifier, or a test double. */
export interface Verifier {
  verifyKey(req: VerifyRequest, opts?: CallOptions): Promise<VerifyResult>;
}

type Method = "get" | "post" | "put" | "patch" | "delete";
type Methods<P extends keyof paths> = { [M in Method]: [paths[P][M]] extends [undefined] ? never : M }[Method];
type Op<P extends keyof paths, M extends Method> = NonNullable<paths[P][M]>;
type JSONOf<C> = C extends { content: { "application/json": infer T } } ? T : never;
type BodyOf<O> = O extends { requestBody?: infer B } ? JSONOf<NonNullable<B>> : never;
type SuccessOf<O> = O extends { responses: infer R }
  ? R extends { 200: infer S }
    ? JSONOf<S>
    : R extends { 201: infer S }
      ? JSONOf<S>
      : void
  : never;
type PathOf<O> = O extends { parameters: { path: infer P } } ? P : undefined;
type QueryOf<O> = O extends { parameters: { query?: infer Q } } ? Q : undefined;

interface Call<O> {
  path?: PathOf<O>;
  query?: QueryOf<O>;
  body?: BodyOf<O>;
  signal?: AbortSignal | undefined;
}

/**
 * Client talks to keyward's HTTP API. Every method resolves to the API's
 * answer or rejects with a KeywardError carrying keyward's error code.
 *
 *   const kw = new Client(); // KEYWARD_URL, KEYWARD_API_KEY
 *   const res = await kw.verifyKey({ key, permissions: ["notes:read"] });
 */
export class Client implements Verifier {
  /** keyward's base URL, without a trailing slash. */
  readonly url: string;
  /** Sent as X-Keyward-Agent, when set. */
  readonly agent: string | undefined;
  readonly #apiKey: string | undefined;
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;

  constructor(opts: ClientOptions = {}) {
    const url = opts.url ?? env("KEYWARD_URL") ?? DEFAULT_URL;
    checkURL(url, opts.allowInsecureHttp === true);
    this.url = url.replace(/\/+$/, "");
    this.#apiKey = opts.apiKey ?? env("KEYWARD_API_KEY");
    this.agent = opts.agent;
    this.#timeoutMs = opts.timeoutMs && opts.timeoutMs > 0 ? opts.timeoutMs : DEFAULT_TIMEOUT_MS;
    const f = opts.fetch ?? globalThis.fetch;
    if (typeof f !== "function") {
      throw new KeywardError("invalid", "no global fetch in this runtime: pass the fetch option");
    }
    this.#fetch = f;
  }

  /**
   * Asks keyward whether req.key is valid (for req.permissions, from
   * req.ip). Every outcome for the key is a result (see its code); a
   * rejection is about the client's own key or an outage.
   */
  verifyKey(req: VerifyRequest, opts?: CallOptions): Promise<VerifyResult> {
    return this.#call("post", "/v1/keys/verify", { body: req, signal: opts?.signal });
  }

  /** The identity of the client's own key. */
  whoami(opts?: CallOptions): Promise<Identity> {
    return this.#call("get", "/v1/whoami", { signal: opts?.signal });
  }

  /** Creates an account (root only). */
  createAccount(body: AccountCreate, opts?: CallOptions): Promise<Account> {
    return this.#call("post", "/v1/accounts", { body, signal: opts?.signal });
  }

  /** Returns an account. */
  getAccount(id: string, opts?: CallOptions): Promise<Account> {
    return this.#call("get", "/v1/accounts/{id}", { path: { id }, signal: opts?.signal });
  }

  /** Returns one page of accounts (root only). */
  listAccounts(page: Page = {}, opts?: CallOptions): Promise<AccountList> {
    return this.#call("get", "/v1/accounts", { query: page, signal: opts?.signal });
  }

  /** Changes the fields of an account that body sets. */
  updateAccount(id: string, body: AccountUpdate, opts?: CallOptions): Promise<Account> {
    return this.#call("patch", "/v1/accounts/{id}", { path: { id }, body, signal: opts?.signal });
  }

  /** Deletes an account with its users and keys. */
  deleteAccount(id: string, opts?: CallOptions): Promise<void> {
    return this.#call("delete", "/v1/accounts/{id}", { path: { id }, signal: opts?.signal });
  }

  /** Creates a user in an account. */
  createUser(accountId: string, body: UserCreate, opts?: CallOptions): Promise<User> {
    return this.#call("post", "/v1/accounts/{id}/users", { path: { id: accountId }, body, signal: opts?.signal });
  }

  /** Returns a user of an account. */
  getUser(accountId: string, id: string, opts?: CallOptions): Promise<User> {
    return this.#call("get", "/v1/accounts/{id}/users/{uid}", { path: { id: accountId, uid: id }, signal: opts?.signal });
  }

  /** Returns one page of an account's users. */
  listUsers(accountId: string, page: Page = {}, opts?: CallOptions): Promise<UserList> {
    return this.#call("get", "/v1/accounts/{id}/users", { path: { id: accountId }, query: page, signal: opts?.signal });
  }

  /** Returns the account's user with that external id (not_found if none). */
  lookupUser(accountId: string, externalId: string, opts?: CallOptions): Promise<User> {
    return this.#call("get", "/v1/accounts/{id}/users/lookup", {
      path: { id: accountId },
      query: { external_id: externalId },
      signal: opts?.signal,
    });
  }

  /**
   * Changes the fields of a user that body sets. Its keys inherit its meta
   * and secret metadata at verify; a taken external_id is a conflict.
   */
  updateUser(accountId: string, id: string, body: UserUpdate, opts?: CallOptions): Promise<User> {
    return this.#call("patch", "/v1/accounts/{id}/users/{uid}", { path: { id: accountId, uid: id }, body, signal: opts?.signal });
  }

  /** Deletes a user and its keys. */
  deleteUser(accountId: string, id: string, opts?: CallOptions): Promise<void> {
    return this.#call("delete", "/v1/accounts/{id}/users/{uid}", { path: { id: accountId, uid: id }, signal: opts?.signal });
  }

  /** Issues a key; the result's key field is its secret, shown this once. */
  createKey(body: KeyCreate, opts?: CallOptions): Promise<CreatedKey> {
    return this.#call("post", "/v1/keys", { body, signal: opts?.signal });
  }

  /** Returns a key (never its secret). */
  getKey(id: string, opts?: CallOptions): Promise<Key> {
    return this.#call("get", "/v1/keys/{id}", { path: { id }, signal: opts?.signal });
  }

  /** Returns one page of the keys matching filter. */
  listKeys(filter: KeyFilter = {}, opts?: CallOptions): Promise<KeyList> {
    return this.#call("get", "/v1/keys", { query: filter, signal: opts?.signal });
  }

  /** Changes the fields of a key that body sets. */
  updateKey(id: string, body: KeyUpdate, opts?: CallOptions): Promise<Key> {
    return this.#call("patch", "/v1/keys/{id}", { path: { id }, body, signal: opts?.signal });
  }

  /** Disables a key until enableKey. */
  disableKey(id: string, opts?: CallOptions): Promise<Key> {
    return this.#call("post", "/v1/keys/{id}/disable", { path: { id }, signal: opts?.signal });
  }

  /** Enables a disabled key. */
  enableKey(id: string, opts?: CallOptions): Promise<Key> {
    return this.#call("post", "/v1/keys/{id}/enable", { path: { id }, signal: opts?.signal });
  }

  /**
   * Makes a key stop working at once. With cascade, the keys it created
   * (and theirs) are revoked too and listed in the result's cascaded.
   */
  revokeKey(id: string, opts?: CallOptions & { cascade?: boolean }): Promise<KeyRevocation> {
    const query = opts?.cascade ? { cascade: "true" as const } : undefined;
    return this.#call("post", "/v1/keys/{id}/revoke", { path: { id }, query, signal: opts?.signal });
  }

  /**
   * Issues a replacement for a key; the old one keeps working for
   * body.grace (a Go duration such as "24h"; absent: it stops at once).
   */
  rotateKey(id: string, body: KeyRotate = {}, opts?: CallOptions): Promise<CreatedKey> {
    return this.#call("post", "/v1/keys/{id}/rotate", { path: { id }, body, signal: opts?.signal });
  }

  /** Deletes a key. */
  deleteKey(id: string, opts?: CallOptions): Promise<void> {
    return this.#call("delete", "/v1/keys/{id}", { path: { id }, signal: opts?.signal });
  }

  /** Returns the live credits of a key. */
  getCredits(keyId: string, opts?: CallOptions): Promise<Credits> {
    return this.#call("get", "/v1/keys/{id}/credits", { path: { id: keyId }, signal: opts?.signal });
  }

  /** Replaces a key's credits (root only); null removes them. */
  async setCredits(keyId: string, credits: Credits | null, opts?: CallOptions): Promise<Credits | null> {
    if (credits === null) {
      await this.#call("delete", "/v1/keys/{id}/credits", { path: { id: keyId }, signal: opts?.signal });
      return null;
    }
    return this.#call("put", "/v1/keys/{id}/credits", { path: { id: keyId }, body: credits, signal: opts?.signal });
  }

  /** Adds amount credits to a key (root only). */
  topUpCredits(keyId: string, amount: number, opts?: CallOptions): Promise<Credits> {
    return this.#call("post", "/v1/keys/{id}/credits/top-up", { path: { id: keyId }, body: { amount }, signal: opts?.signal });
  }

  /**
   * Returns the shared rate limits and live credits of an account, or of
   * one of its users when userId is given.
   */
  getLimits(accountId: string, userId?: string, opts?: CallOptions): Promise<Meter> {
    if (userId === undefined) {
      return this.#call("get", "/v1/accounts/{id}/limits", { path: { id: accountId }, signal: opts?.signal });
    }
    return this.#call("get", "/v1/accounts/{id}/users/{uid}/limits", { path: { id: accountId, uid: userId }, signal: opts?.signal });
  }

  /**
   * Replaces the shared rate limits and credits of an account, or of one of
   * its users when userId is given (root only); null removes them.
   */
  async setLimits(accountId: string, userId: string | undefined, limits: MeterSet | null, opts?: CallOptions): Promise<Meter | null> {
    if (userId === undefined) {
      const path = { id: accountId };
      if (limits === null) {
        await this.#call("delete", "/v1/accounts/{id}/limits", { path, signal: opts?.signal });
        return null;
      }
      return this.#call("put", "/v1/accounts/{id}/limits", { path, body: limits, signal: opts?.signal });
    }
    const path = { id: accountId, uid: userId };
    if (limits === null) {
      await this.#call("delete", "/v1/accounts/{id}/users/{uid}/limits", { path, signal: opts?.signal });
      return null;
    }
    return this.#call("put", "/v1/accounts/{id}/users/{uid}/limits", { path, body: limits, signal: opts?.signal });
  }

  /**
   * Creates a portal session for the user of body.external_id (root, or an
   * account_admin of the account, which may leave account_id out) and
   * returns its link: send the customer's browser to url, which works once,
   * before link_expires_at. Permissions granted must be held by the caller.
   */
  createPortalSession(body: PortalSessionCreate, opts?: CallOptions): Promise<PortalLink> {
    return this.#call("post", "/v1/portal/sessions", { body, signal: opts?.signal });
  }

  /** Returns the portal branding of an account (empty fields when none is set). */
  getPortalBranding(accountId: string, opts?: CallOptions): Promise<PortalBranding> {
    return this.#call("get", "/v1/accounts/{id}/portal-branding", { path: { id: accountId }, signal: opts?.signal });
  }

  /** Replaces the portal branding of an account: title and #rrggbb colours; a field left out is reset. */
  setPortalBranding(accountId: string, body: PortalBrandingSet, opts?: CallOptions): Promise<PortalBranding> {
    return this.#call("put", "/v1/accounts/{id}/portal-branding", { path: { id: accountId }, body, signal: opts?.signal });
  }

  /**
   * Sends one request, typed by the operation of path and method in the
   * served OpenAPI document, and resolves to its 2xx JSON body.
   */
  async #call<P extends keyof paths, M extends Methods<P>>(method: M, path: P, c: Call<Op<P, M>>): Promise<SuccessOf<Op<P, M>>> {
    let url = this.url + expand(path, c.path as Record<string, string> | undefined);
    const q = queryString(c.query as Record<string, unknown> | undefined);
    if (q) url += "?" + q;
    const headers: Record<string, string> = { Accept: "application/json, application/problem+json" };
    if (this.#apiKey) headers.Authorization = "Bearer " + this.#apiKey;
    if (this.agent) headers["X-Keyward-Agent"] = this.agent;
    let body: string | undefined;
    if (c.body !== undefined) {
      body = JSON.stringify(c.body);
      headers["Content-Type"] = "application/json";
    }
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const signal = c.signal ? AbortSignal.any([c.signal, timeout]) : timeout;
    const verb = method.toUpperCase();
    let res: Response;
    try {
      // A redirect would carry the API key, and re-send bodies holding keys
      // being verified: never follow one.
      res = await this.#fetch(url, { method: verb, headers, body, signal, redirect: "manual" });
    } catch (err) {
      const why = timeout.aborted ? `no answer within ${this.#timeoutMs} ms` : signal.aborted ? "the call was aborted" : String((err as Error)?.message ?? err);
      throw new KeywardError("unavailable", `cannot reach keyward at ${this.url}: ${why}`, { cause: err });
    }
    if (res.status >= 200 && res.status < 300) {
      if (res.status === 204) {
        await res.body?.cancel();
        return undefined as SuccessOf<Op<P, M>>;
      }
      try {
        return (await res.json()) as SuccessOf<Op<P, M>>;
      } catch (err) {
        throw new KeywardError("internal", `decoding the response of ${verb} ${path} from ${this.url}`, { status: res.status, cause: err });
      }
    }
    throw await responseError(res, this.url);
  }
}

/** expand fills the {name} segments of an API path; an empty value becomes "-", which keyward answers as not found. */
function expand(path: string, params: Record<string, string> | undefined): string {
  if (!params) return path;
  return path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(params[name] || "-"));
}

function queryString(q: Record<string, unknown> | undefined): string {
  if (!q) return "";
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined || v === null || v === "" || (k === "limit" && !(Number(v) > 0))) continue;
    p.set(k, String(v));
  }
  return p.toString();
}

/** responseError turns an error response into a KeywardError: the code and detail of a problem, or a code derived from the status. */
async function responseError(res: Response, base: string): Promise<KeywardError> {
  const text = await res.text().catch(() => "");
  const type = (res.headers.get("Content-Type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (type === "application/problem+json" || type === "application/json") {
    try {
      const p = JSON.parse(text) as { code?: string; detail?: string; title?: string };
      if (p && typeof p.code === "string" && p.code) {
        return new KeywardError(p.code as KeywardError["code"], p.detail || p.title || p.code, { status: res.status });
      }
    } catch {
      // not a problem: described below
    }
  }
  const first = text.split("\n", 1)[0]!.slice(0, 200);
  return new KeywardError(codeOfStatus(res.status), `keyward at ${base} answered ${res.status}${first ? `: ${JSON.stringify(first)}` : ""}`, {
    status: res.status,
  });
}
