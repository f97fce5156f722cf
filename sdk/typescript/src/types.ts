// The API's shapes, named after keyward's schemas. Every one is taken from
// openapi.ts, generated from the /openapi.json keyward serves, so a change
// of the API shows up as a compile error here or in the client.
import type { components } from "./openapi.js";

type Schemas = components["schemas"];

/** Outcome of a verification: VALID or why not. */
export type Decision = Schemas["Decision"];
/** keyward's stable error codes (the "code" of a problem). */
export type ErrorCode = Schemas["ErrorCode"];
/** Key tier: root > account_admin > user. */
export type Role = Schemas["Role"];
/** Who made a request: the key, its account, user, role and permissions. */
export type Identity = Schemas["Identity"];
/** What POST /v1/keys/verify asks. */
export type VerifyRequest = Schemas["VerifyRequest"];
/** What POST /v1/keys/verify answers: every outcome for the key is a result. */
export type VerifyResult = Schemas["VerifyResult"];
/** The state of one rate limit after a verification. */
export type RateLimitStatus = Schemas["RateLimitStatus"];
/** An RFC 9457 problem with keyward's error code. */
export type Problem = Schemas["Problem"];
/** An account. */
export type Account = Schemas["Account"];
/** The fields of a new account. */
export type AccountCreate = Schemas["AccountCreate"];
/** Fields of an account to change. */
export type AccountUpdate = Schemas["AccountUpdate"];
/** One page of accounts. */
export type AccountList = Schemas["AccountList"];
/** A user of an account. */
export type User = Schemas["User"];
/** The fields of a new user. */
export type UserCreate = Schemas["UserCreate"];
/** Fields of a user to change (its external id, meta, secret metadata). */
export type UserUpdate = Schemas["UserUpdate"];
/** One page of users. */
export type UserList = Schemas["UserList"];
/** A key (never its secret). */
export type Key = Schemas["Key"];
/** A new key with its secret, shown this once. */
export type CreatedKey = Schemas["CreatedKey"];
/** The fields of a new key. */
export type KeyCreate = Schemas["KeyCreate"];
/** Fields of a key to change. */
export type KeyUpdate = Schemas["KeyUpdate"];
/** How to rotate a key: the grace the old key keeps working. */
export type KeyRotate = Schemas["KeyRotate"];
/** One page of keys. */
export type KeyList = Schemas["KeyList"];
/** A revoked key and the descendants a cascade revoked. */
export type KeyRevocation = Schemas["KeyRevocation"];
/** A key's credits (quota). */
export type Credits = Schemas["Credits"];
/**
 * A level of rate limits and credits: the key's own, its user's or its
 * account's (shared by all their keys); a refusal's limit_level names it.
 */
export type LimitLevel = Schemas["LimitLevel"];
/** The rate limits and credits shared by all the keys of a user or an account. */
export type Meter = Schemas["Meter"];
/** The body that replaces a user's or an account's shared limits. */
export type MeterSet = Schemas["MeterSet"];
/** What a portal session grants: the user (by external id), permissions, environments, return URL, lifetimes. */
export type PortalSessionCreate = Schemas["PortalSessionCreate"];
/** A portal session and its single-use link (url), shown once. */
export type PortalLink = Schemas["PortalLink"];
/** An account's portal branding: title and #rrggbb colours; empty fields for the defaults. */
export type PortalBranding = Schemas["PortalBranding"];
/** The body that replaces an account's portal branding. */
export type PortalBrandingSet = Schemas["PortalBrandingSet"];
