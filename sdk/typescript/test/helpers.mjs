// Shared by the tests: a real keyward (scripts/server.mjs) with a root key,
// an account, a user and a verifier key, and small HTTP helpers.
import { serve } from "@hono/node-server";
import { createServer } from "node:net";
import { missingBinary, startKeyward } from "../scripts/server.mjs";
import { Client } from "../dist/index.js";

/**
 * The reason the tests cannot run, for the skip option of node:test, or
 * false. With CI=true a missing binary throws: a missing prerequisite
 * fails CI instead of skipping.
 */
export function skipReason() {
  const why = missingBinary();
  if (why && process.env.CI === "true") throw new Error(`CI=true: ${why}`);
  return why || false;
}

/**
 * Starts keyward and sets up an account "acme" with a user, and a verifier
 * key: an account_admin key holding only keys:verify, as docs/sdk.md
 * recommends. Returns { url, root, verifierKey, account, user, userKey(perms,
 * extra), stop }.
 */
export async function setup() {
  const kw = await startKeyward();
  try {
    const root = new Client({ url: kw.url, apiKey: kw.rootKey });
    const account = await root.createAccount({ name: "acme" });
    const user = await root.createUser(account.id, { name: "alice" });
    const verifier = await root.createKey({ account_id: account.id, role: "account_admin", name: "svc", permissions: ["keys:verify"] });
    return {
      url: kw.url,
      rootKey: kw.rootKey,
      root,
      account,
      user,
      verifierKey: verifier.key,
      /** Creates a key of the user holding perms, with extra fields (rate_limits, credits, ...). */
      userKey: (permissions = [], extra = {}) =>
        root.createKey({ account_id: account.id, user_id: user.id, permissions, ...extra }),
      stop: kw.stop,
      logs: kw.logs,
    };
  } catch (err) {
    await kw.stop();
    throw err;
  }
}

/** A loopback port free a moment ago: bound, then closed. */
export async function freePort() {
  const srv = createServer();
  await new Promise((res) => srv.listen(0, "127.0.0.1", res));
  const { port } = srv.address();
  await new Promise((res) => srv.close(res));
  return port;
}

/** A loopback URL nothing listens on. */
export async function deadURL() {
  return `http://127.0.0.1:${await freePort()}`;
}

/** A clock the tests move: now() in milliseconds. */
export function fakeClock(start = Date.now()) {
  let t = start;
  return {
    now: () => t,
    advance: (ms) => {
      t += ms;
    },
  };
}

/** GET url with headers; resolves to { status, headers, body (parsed JSON or text) }. */
export async function get(url, headers = {}) {
  const res = await fetch(url, { headers });
  const text = await res.text();
  let body = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, headers: res.headers, body };
}

/** listen serves a fetch handler with @hono/node-server on a loopback port. */
export async function listen(fetch) {
  const server = await new Promise((resolve) => {
    const s = serve({ fetch, port: 0, hostname: "127.0.0.1" }, () => resolve(s));
  });
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(resolve);
      }),
  };
}
