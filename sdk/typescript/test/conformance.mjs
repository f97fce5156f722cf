// The behaviour every framework adapter must have, run against a real
// server of that framework on loopback in front of a real keyward: the
// refusals and identity of keyward's Go middleware (docs/sdk.md).
import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, describe, test } from "node:test";
import { CachedVerifier, Client } from "../dist/index.js";
import { deadURL, fakeClock, get, setup, skipReason } from "./helpers.mjs";

/**
 * conformance(name, serve) tests an adapter. serve(opts) starts a server
 * whose routes are, behind the adapter's middleware made with opts
 * ({ verifier, permissions, exempt }):
 *   GET /whoami          answers 200 with the identity as JSON
 *   GET /admin           also needs "notes:admin" (the adapter's per-route check)
 *   GET /healthz         exempt (where the adapter has exempt paths)
 *   GET /public/*        exempt prefix (idem)
 * and resolves to { url, close, reached }, reached() telling how many
 * requests the handlers of /whoami and /admin have run.
 * features.exempt says whether the adapter has exempt paths;
 * features.rawHeaders whether it sees repeated headers.
 */
export function conformance(name, serve, features = { exempt: true, rawHeaders: true }) {
  describe(`${name} middleware against a real keyward`, { skip: skipReason() }, () => {
    let kw;
    let clock;
    let app;
    let reader;

    const start = async (opts = {}) => {
      const s = await serve({ exempt: ["/healthz", "/public/*"], ...opts });
      servers.push(s);
      return s.url;
    };
    const servers = [];

    before(async () => {
      kw = await setup();
      clock = fakeClock();
      // TTL 1 s on a clock the tests move: revocation is seen exactly when
      // the clock passes the TTL, without sleeping.
      const verifier = new CachedVerifier(new Client({ url: kw.url, apiKey: kw.verifierKey }), { ttlMs: 1000, negativeTtlMs: 1000, now: clock.now });
      app = await start({ verifier });
      reader = await kw.userKey(["notes:read"]);
    });
    after(async () => {
      for (const s of servers) await s.close();
      await kw?.stop();
    });

    test("no key: 401 problem+json with WWW-Authenticate, no-store", async () => {
      const r = await get(app + "/whoami");
      assert.equal(r.status, 401);
      assert.equal(r.headers.get("www-authenticate"), 'Bearer realm="keyward"');
      assert.equal(r.headers.get("cache-control"), "no-store");
      assert.match(r.headers.get("content-type"), /^application\/problem\+json/);
      assert.deepEqual(r.body, {
        type: "urn:keyward:error:unauthorized",
        title: "Unauthorized",
        status: 401,
        detail: 'no API key: send it as "Authorization: Bearer <key>" or "X-API-Key: <key>"',
        code: "unauthorized",
        instance: "/whoami",
      });
    });

    test("a valid key (Bearer or X-API-Key) reaches the handler with its identity", async () => {
      for (const headers of [{ Authorization: `Bearer ${reader.key}` }, { "X-API-Key": reader.key }, { Authorization: `bearer  ${reader.key} `, "X-API-Key": reader.key }]) {
        const r = await get(app + "/whoami", headers);
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.equal(r.body.key_id, reader.id);
        assert.equal(r.body.account_id, kw.account.id);
        assert.equal(r.body.user_id, kw.user.id);
        assert.equal(r.body.role, "user");
        assert.deepEqual(r.body.permissions, ["notes:read"]);
        assert.equal(r.body.agent, undefined);
      }
    });

    test("the agent header is in the identity, per request, and a bad one is 400", async () => {
      const auth = { Authorization: `Bearer ${reader.key}` };
      assert.equal((await get(app + "/whoami", { ...auth, "X-Keyward-Agent": "claude" })).body.agent, "claude");
      assert.equal((await get(app + "/whoami", { ...auth, "X-Keyward-Agent": "cursor" })).body.agent, "cursor");
      assert.equal((await get(app + "/whoami", auth)).body.agent, undefined);
      const r = await get(app + "/whoami", { ...auth, "X-Keyward-Agent": "x".repeat(201) });
      assert.equal(r.status, 400);
      assert.equal(r.body.code, "invalid");
    });

    test("unknown, malformed and revoked keys: the same 401", async () => {
      const gone = await kw.userKey(["notes:read"]);
      await kw.root.revokeKey(gone.id);
      const unknown = reader.key.slice(0, 8) + "A".repeat(49);
      for (const key of [unknown, "not-a-key", gone.key]) {
        const r = await get(app + "/whoami", { Authorization: `Bearer ${key}` });
        assert.equal(r.status, 401);
        assert.equal(r.body.detail, "invalid API key");
        assert.equal(r.headers.get("www-authenticate"), 'Bearer realm="keyward"');
      }
    });

    test("two different keys, or a scheme other than Bearer: 401", async () => {
      const other = await kw.userKey();
      let r = await get(app + "/whoami", { Authorization: `Bearer ${reader.key}`, "X-API-Key": other.key });
      assert.equal(r.status, 401);
      assert.equal(r.body.detail, "Authorization and X-API-Key carry different keys: send one");
      r = await get(app + "/whoami", { Authorization: `Basic ${reader.key}` });
      assert.equal(r.status, 401);
      assert.equal(r.body.detail, 'Authorization must be "Bearer <key>"');
      r = await get(app + "/whoami?api_key=" + reader.key);
      assert.equal(r.status, 401, "the query string is never read");
    });

    test("Authorization sent twice: 401", async () => {
      const r = await rawGet(app + "/whoami", [
        ["Authorization", `Bearer ${reader.key}`],
        ["Authorization", "Bearer kw_user_other"],
      ]);
      assert.equal(r.status, 401);
    });

    test("X-Keyward-Agent sent twice: 400, as keyward refuses it; sent once it passes", async () => {
      const auth = ["Authorization", `Bearer ${reader.key}`];
      for (const agents of [["claude", "cursor"], ["claude", "claude"]]) {
        const r = await rawGet(app + "/whoami", [auth, ...agents.map((a) => ["X-Keyward-Agent", a])]);
        assert.equal(r.status, 400, `agents ${agents}`);
      }
      assert.equal((await rawGet(app + "/whoami", [auth, ["X-Keyward-Agent", "claude code"]])).status, 200);
    });

    test("agentHeaders: an alias names the agent; aliases naming different agents: 400", async () => {
      const url = await start({ verifier: new Client({ url: kw.url, apiKey: kw.verifierKey }), agentHeaders: ["X-OpenViking-Agent"] });
      const auth = { Authorization: `Bearer ${reader.key}` };
      assert.equal((await get(url + "/whoami", { ...auth, "X-OpenViking-Agent": "ov" })).body.agent, "ov");
      assert.equal((await get(url + "/whoami", { ...auth, "X-Keyward-Agent": "kw" })).body.agent, "kw", "X-Keyward-Agent is still read");
      assert.equal((await get(url + "/whoami", { ...auth, "X-Keyward-Agent": "ov", "X-OpenViking-Agent": "ov" })).body.agent, "ov", "the same agent twice passes");
      const r = await get(url + "/whoami", { ...auth, "X-Keyward-Agent": "kw", "X-OpenViking-Agent": "ov" });
      assert.equal(r.status, 400);
      assert.equal(r.body.detail, "the agent headers name different agents: send the agent in one header");
      assert.equal((await get(url + "/whoami", { ...auth, "X-OpenViking-Agent": "x".repeat(201) })).status, 400);
      assert.equal((await get(app + "/whoami", { ...auth, "X-OpenViking-Agent": "ov" })).body.agent, undefined, "without the option the alias is not read");
    });

    test("a per-route permission: 403 without it, 200 with it", async () => {
      let r = await get(app + "/admin", { Authorization: `Bearer ${reader.key}` });
      assert.equal(r.status, 403);
      assert.equal(r.body.detail, "the API key lacks the required permissions");
      assert.equal(r.headers.get("www-authenticate"), null);
      const admin = await kw.userKey(["notes:read", "notes:admin"]);
      r = await get(app + "/admin", { Authorization: `Bearer ${admin.key}` });
      assert.equal(r.status, 200);
      assert.equal(r.body.key_id, admin.id);
    });

    test("permissions every request needs are checked by keyward: 403", async () => {
      const url = await start({ verifier: new Client({ url: kw.url, apiKey: kw.verifierKey }), permissions: ["notes:write"] });
      let r = await get(url + "/whoami", { Authorization: `Bearer ${reader.key}` });
      assert.equal(r.status, 403);
      const writer = await kw.userKey(["notes:write"]);
      r = await get(url + "/whoami", { Authorization: `Bearer ${writer.key}` });
      assert.equal(r.status, 200);
    });

    test("refused requests never reach the handler", async () => {
      const down = await serve({ verifier: new CachedVerifier(new Client({ url: await deadURL(), apiKey: kw.verifierKey })), logger: { warn() {} } });
      servers.push(down);
      const s = servers[0];
      const before = s.reached();
      const unknown = reader.key.slice(0, 8) + "A".repeat(49);
      for (const [url, headers, status] of [
        [s.url + "/whoami", {}, 401],
        [s.url + "/whoami", { Authorization: `Bearer ${unknown}` }, 401],
        [s.url + "/admin", { Authorization: `Bearer ${reader.key}` }, 403],
        [down.url + "/whoami", { Authorization: `Bearer ${reader.key}` }, 503],
      ]) {
        const r = await get(url, headers);
        assert.equal(r.status, status, `${url} ${JSON.stringify(headers)}`);
      }
      assert.equal(s.reached(), before, "no refused request reached the handler");
      assert.equal(down.reached(), 0, "keyward unreachable: the handler never ran");
      assert.equal((await get(s.url + "/whoami", { Authorization: `Bearer ${reader.key}` })).status, 200);
      assert.equal(s.reached(), before + 1, "an admitted request reaches it once");
    });

    if (features.exempt) {
      test("exempt paths pass without a key; unclean paths are never exempt", async () => {
        assert.equal((await get(app + "/healthz")).status, 200);
        assert.equal((await get(app + "/public/a.css")).status, 200);
        assert.equal((await get(app + "/healthz/x")).status, 401);
        assert.equal((await get(app + "/public/%2e%2e/whoami")).status, 401);
      });
    }

    test("a revocation is seen once the TTL has passed, not before", async () => {
      const k = await kw.userKey(["notes:read"]);
      const auth = { Authorization: `Bearer ${k.key}` };
      assert.equal((await get(app + "/whoami", auth)).status, 200);
      await kw.root.revokeKey(k.id);
      // keyward refuses it at once; the service's cache keeps it for the TTL.
      assert.equal((await kw.root.verifyKey({ key: k.key })).code, "REVOKED");
      assert.equal((await get(app + "/whoami", auth)).status, 200, "served from the cache within the TTL");
      clock.advance(1001);
      assert.equal((await get(app + "/whoami", auth)).status, 401);
    });

    test("keyward unreachable: 503 with Retry-After, for every uncached key; logged without the key", async () => {
      const logged = [];
      const logger = { warn: (msg, fields) => logged.push(JSON.stringify([msg, fields])), debug: (msg, fields) => logged.push(JSON.stringify([msg, fields])) };
      const url = await start({ verifier: new CachedVerifier(new Client({ url: await deadURL(), apiKey: kw.verifierKey })), logger });
      const r = await get(url + "/whoami", { Authorization: `Bearer ${reader.key}` });
      assert.equal(r.status, 503);
      assert.equal(r.headers.get("retry-after"), "1");
      assert.equal(r.body.detail, "API keys cannot be checked right now: try again shortly");
      assert.equal(r.body.code, "unavailable");
      assert.equal((await get(url + "/whoami", { "X-API-Key": reader.key })).status, 503, "the failure was not cached as a refusal");
      assert.ok(logged.some((l) => l.includes("API key could not be checked") && l.includes("cannot reach keyward")), logged.join("\n"));
      assert.ok(!logged.some((l) => l.includes(reader.key) || l.includes(kw.verifierKey)), "no raw key in the logs");
    });

    test("the verifier key refused: 503, not the caller's fault", async () => {
      const url = await start({ verifier: new Client({ url: kw.url, apiKey: reader.key }) });
      const r = await get(url + "/whoami", { Authorization: `Bearer ${reader.key}` });
      assert.equal(r.status, 503);
      assert.equal(r.headers.get("retry-after"), "1");
    });

    test("rate limits: RateLimit fields on success, 429 with Retry-After when spent", async () => {
      const limited = await kw.root.createKey({
        account_id: kw.account.id,
        user_id: kw.user.id,
        rate_limits: [{ name: "per-minute", limit: 2, window: "1m" }],
      });
      const auth = { Authorization: `Bearer ${limited.key}` };
      let r = await get(app + "/whoami", auth);
      assert.equal(r.status, 200);
      assert.equal(r.headers.get("ratelimit-policy"), '"per-minute";q=2;w=60');
      assert.match(r.headers.get("ratelimit"), /^"per-minute";r=1;t=\d+$/);
      // Metered keys are never cached: each request reaches keyward.
      assert.equal((await get(app + "/whoami", auth)).status, 200);
      r = await get(app + "/whoami", auth);
      assert.equal(r.status, 429);
      assert.equal(r.body.detail, "rate limit exceeded: slow down");
      assert.match(r.headers.get("retry-after"), /^\d+$/);
      assert.match(r.headers.get("ratelimit"), /^"per-minute";r=0;t=\d+$/);
    });

    test("credits: spent per request, 429 when exhausted", async () => {
      const paid = await kw.root.createKey({ account_id: kw.account.id, user_id: kw.user.id, credits: { remaining: 1 } });
      const auth = { Authorization: `Bearer ${paid.key}` };
      assert.equal((await get(app + "/whoami", auth)).status, 200);
      const r = await get(app + "/whoami", auth);
      assert.equal(r.status, 429);
      assert.equal(r.body.detail, "usage quota exhausted");
    });

    test("a refused address: 403", async () => {
      const fenced = await kw.userKey([], { ip_allow: ["10.0.0.0/8"] });
      const r = await get(app + "/whoami", { Authorization: `Bearer ${fenced.key}` });
      assert.equal(r.status, 403);
      assert.equal(r.body.detail, "requests from this address are not allowed");
    });

    test("another WWW-Authenticate challenge", async () => {
      const url = await start({ verifier: new Client({ url: kw.url, apiKey: kw.verifierKey }), wwwAuthenticate: 'ApiKey realm="notes"' });
      assert.equal((await get(url + "/whoami")).headers.get("www-authenticate"), 'ApiKey realm="notes"');
      assert.equal((await get(url + "/whoami", { "X-API-Key": "nope" })).headers.get("www-authenticate"), 'ApiKey realm="notes"');
    });

    test("a custom error writer gets the denial; the refusal headers are still set", async () => {
      const url = await start({
        verifier: new Client({ url: kw.url, apiKey: kw.verifierKey }),
        errorWriter: true,
      });
      let r = await get(url + "/whoami");
      assert.equal(r.status, 401);
      assert.deepEqual(r.body, { error: 'no API key: send it as "Authorization: Bearer <key>" or "X-API-Key: <key>"' });
      assert.equal(r.headers.get("www-authenticate"), 'Bearer realm="keyward"');
      assert.equal(r.headers.get("cache-control"), "no-store");
      r = await get(url + "/admin", { Authorization: `Bearer ${reader.key}` });
      assert.equal(r.status, 403);
      assert.deepEqual(r.body, { error: "the API key lacks the required permissions" }, "the per-route check uses the same writer");
    });
  });
}

/** GET written on a socket, with headers given as pairs, so that one can be sent twice. */
function rawGet(url, pairs) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = connect(Number(u.port), u.hostname, () => {
      const lines = [`GET ${u.pathname} HTTP/1.1`, `Host: ${u.host}`, "Connection: close", ...pairs.map(([k, v]) => `${k}: ${v}`)];
      sock.end(lines.join("\r\n") + "\r\n\r\n");
    });
    let data = "";
    sock.setEncoding("utf8").on("data", (s) => (data += s));
    sock.on("end", () => resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(data)?.[1]) }));
    sock.on("error", reject);
  });
}
