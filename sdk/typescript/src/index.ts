// keyward's TypeScript SDK: the client of keyward's HTTP API, a caching
// verifier with the Go SDK's semantics, and the framework-neutral guard the
// middleware of keyward/express, keyward/hono and keyward/next is made of.
export { Client, DEFAULT_TIMEOUT_MS, type CallOptions, type ClientOptions, type KeyFilter, type Page, type Verifier } from "./client.js";
export {
  CachedVerifier,
  DEFAULT_CACHE_TTL_MS,
  DEFAULT_MAX_ENTRIES,
  DEFAULT_MAX_NEGATIVE,
  DEFAULT_NEGATIVE_CACHE_TTL_MS,
  DEFAULT_VERIFY_TIMEOUT_MS,
  metered,
  type CacheOptions,
} from "./cache.js";
export { DEFAULT_URL } from "./config.js";
export { errorCode, KeywardError } from "./errors.js";
export {
  covers,
  fetchHeader,
  Guard,
  HEADER_AGENT,
  hasPermissions,
  MAX_AGENT_LEN,
  PROBLEM_CONTENT_TYPE,
  problemBody,
  problemResponse,
  rateLimitHeaders,
  rawHeader,
  refusalHeaders,
  WWW_AUTHENTICATE,
  type Denial,
  type GuardOptions,
  type GuardRequest,
  type Logger,
  type Outcome,
  type Verdict,
} from "./guard.js";
export type * from "./types.js";
export type { components, operations, paths } from "./openapi.js";
