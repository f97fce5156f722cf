// Benchmarks of the TypeScript SDK (not timed tests): what a cache hit
// costs per request beside the framework's own per-request cost, and the
// throughput Express and Hono apps keep behind the middleware, all in one
// run on loopback against the real keyward. Targets (docs/benchmarks.md):
// a cache hit under 2 us; >= 90% of the bare app's requests/s.
//
//   node bench/typescript-sdk/bench.mjs   (bench/typescript-sdk/run builds first)
//
// Environment: DURATION (wrk seconds per run, default 3), ROUNDS (default
// 5), CONNS (default 32), ITER (micro-benchmark iterations, default 100000).
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { sdk } from "./sdk.mjs";

const DURATION = Number(process.env.DURATION || 3);
const ROUNDS = Number(process.env.ROUNDS || 5);
const CONNS = Number(process.env.CONNS || 32);
const ITER = Number(process.env.ITER || 100_000);
const here = dirname(fileURLToPath(import.meta.url));

const { Client, CachedVerifier, Guard } = await sdk.module("index");
const { keyward: honoKeyward } = await sdk.module("hono");
const { keyward: expressKeyward } = await sdk.module("express");
const { Hono } = await sdk.dep("hono");
const { startKeyward } = await sdk.server();

const kw = await startKeyward();
const children = [];
try {
  const root = new Client({ url: kw.url, apiKey: kw.rootKey });
  const account = await root.createAccount({ name: "bench" });
  const user = await root.createUser(account.id, { name: "u" });
  const verifierKey = (await root.createKey({ account_id: account.id, role: "account_admin", permissions: ["keys:verify"] })).key;
  const userKey = (await root.createKey({ account_id: account.id, user_id: user.id, permissions: ["notes:read"] })).key;

  // --- per request, in process -------------------------------------------
  // A TTL far beyond the run: every request after the first is a hit.
  const verifier = new CachedVerifier(new Client({ url: kw.url, apiKey: verifierKey }), { ttlMs: 3_600_000 });
  const guard = new Guard({ verifier });
  const headers = new Headers({ Authorization: `Bearer ${userKey}` });
  const greq = {
    header: (n) => {
      const v = headers.get(n);
      return v === null ? [] : [v];
    },
    path: "/notes",
    method: "GET",
    ip: "127.0.0.1",
  };
  const bare = new Hono().get("/notes", (c) => c.json({ ok: true }));
  const noop = new Hono().use((c, next) => next()).get("/notes", (c) => c.json({ ok: true }));
  const authed = new Hono().use(honoKeyward({ verifier })).get("/notes", (c) => c.json({ ok: c.get("keyward").key_id }));
  const request = () => new Request("http://127.0.0.1/notes", { headers: { Authorization: `Bearer ${userKey}` } });

  // The Express middleware alone, on the fields of a request it reads.
  const expressMw = expressKeyward({ verifier });
  const rawHeaders = ["Host", "127.0.0.1", "User-Agent", "wrk", "Authorization", `Bearer ${userKey}`];
  const noHeaders = { setHeader() {} };
  const expressCall = () =>
    new Promise((next) => expressMw({ rawHeaders, ip: "127.0.0.1", originalUrl: "/notes", url: "/notes", method: "GET" }, noHeaders, next));
  const micro = {
    "CachedVerifier.verifyKey, cache hit": () => verifier.verifyKey({ key: userKey, ip: "127.0.0.1" }),
    "Guard.check (headers, agent, cache hit)": () => guard.check(greq),
    "Express keyward() middleware call (cache hit)": expressCall,
    "Hono app.fetch, no auth (framework's own cost)": () => bare.fetch(request()),
    "Hono app.fetch behind a no-op middleware": () => noop.fetch(request()),
    "Hono app.fetch behind keyward() (cache hit)": () => authed.fetch(request()),
  };
  console.log(`per request, in process (${ITER} iterations, 5 interleaved rounds, median; CPU time of the process, then wall time):`);
  const perOp = await nsPerOp(micro);
  for (const [name, { cpu, wall }] of Object.entries(perOp)) {
    console.log(`  ${name.padEnd(48)} ${(cpu / 1000).toFixed(3).padStart(7)} us CPU ${(wall / 1000).toFixed(3).padStart(8)} us wall`);
  }
  const framework = perOp["Hono app.fetch, no auth (framework's own cost)"].cpu;
  const added = perOp["Hono app.fetch behind keyward() (cache hit)"].cpu - framework;
  console.log(`  keyward() adds ${(added / 1000).toFixed(3)} us CPU to Hono's own ${(framework / 1000).toFixed(3)} us per request`);

  // --- throughput under wrk -----------------------------------------------
  if (spawnSync("wrk", ["--version"]).error) throw new Error("wrk not found: apt-get install -y wrk");
  const env = { ...process.env, KEYWARD_URL: kw.url, KEYWARD_API_KEY: verifierKey };
  console.log(
    `\nthroughput, ${ROUNDS} rounds; in each, wrk -t1 -c${CONNS} -d${DURATION}s loads the bare app, one behind a no-op ` +
      `middleware and one behind keyward(), one after the other in an order that rotates each round; medians:`,
  );
  const variants = ["bare", "noop", "auth"];
  const labels = { bare: "bare", noop: "no-op middleware", auth: "keyward()" };
  for (const fw of (process.env.FRAMEWORKS || "express,hono").split(",")) {
    const apps = {};
    for (const variant of variants) apps[variant] = await startApp(fw, variant, env, userKey);
    const rps = { bare: [], noop: [], auth: [] };
    const perCPU = { bare: [], noop: [], auth: [] };
    for (let r = 0; r < ROUNDS; r++) {
      // Rotate which goes first, so a trend in the load favours none.
      for (let i = 0; i < variants.length; i++) {
        const v = variants[(i + r) % variants.length];
        const cpu0 = cpuSeconds(apps[v].child.pid);
        const { rate, requests } = await wrk(`http://127.0.0.1:${apps[v].port}/notes`, userKey);
        rps[v].push(rate);
        perCPU[v].push(requests / (cpuSeconds(apps[v].child.pid) - cpu0));
      }
    }
    for (const a of Object.values(apps)) a.child.kill();
    console.log(`  ${fw}:`);
    for (const [unit, m] of [["req/s", rps], ["req per CPU-second of the app's process", perCPU]]) {
      const ratio = (a, b) => median(m[a].map((x, i) => x / m[b][i]));
      for (const v of variants) console.log(`    ${labels[v].padEnd(17)} ${median(m[v]).toFixed(0).padStart(7)} ${unit}`);
      console.log(
        `    keyward() keeps ${(ratio("auth", "bare") * 100).toFixed(1)}% of the bare app's ${unit} ` +
          `(${(ratio("auth", "noop") * 100).toFixed(1)}% of the no-op middleware's; the no-op keeps ${(ratio("noop", "bare") * 100).toFixed(1)}%); ` +
          `rounds: ${m.auth.map((x, i) => ((x / m.bare[i]) * 100).toFixed(0) + "%").join(" ")}; target >= 90%`,
      );
    }
  }
} finally {
  for (const c of children) c.kill();
  await kw.stop();
}

/**
 * nsPerOp times ITER awaited calls of each function, after a warm-up, in 5
 * rounds that take every function in turn (a noisy neighbour slows them
 * all alike), and returns each one's median nanoseconds per call: CPU time
 * of the process (what the call costs, whatever else runs) and wall time.
 */
async function nsPerOp(fns) {
  const runs = Object.fromEntries(Object.keys(fns).map((k) => [k, { cpu: [], wall: [] }]));
  for (const fn of Object.values(fns)) for (let i = 0; i < ITER / 4; i++) await fn();
  for (let r = 0; r < 5; r++) {
    for (const [name, fn] of Object.entries(fns)) {
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < ITER; i++) await fn();
      const wall = Number(process.hrtime.bigint() - t0);
      const c = process.cpuUsage(c0);
      runs[name].wall.push(wall / ITER);
      runs[name].cpu.push(((c.user + c.system) * 1000) / ITER);
    }
  }
  return Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, { cpu: median(v.cpu), wall: median(v.wall) }]));
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/** startApp runs app.mjs in its own process and waits for "ready". */
async function startApp(framework, variant, env, key) {
  const port = await freePort();
  const child = spawn(process.execPath, [join(here, "app.mjs"), framework, variant, String(port)], { env, stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  const [line] = await Promise.race([
    once(child.stdout.setEncoding("utf8"), "data"),
    once(child, "exit").then(() => {
      throw new Error(`${framework} ${variant} exited before it was ready`);
    }),
  ]);
  if (!String(line).includes("ready")) throw new Error(`${framework} ${variant}: ${line}`);
  // One request first: the middleware's cache is warm before wrk starts.
  const res = await fetch(`http://127.0.0.1:${port}/notes`, { headers: { Authorization: `Bearer ${key}` } });
  await res.body?.cancel();
  if (res.status !== 200) throw new Error(`${framework} ${variant} answered ${res.status}`);
  return { port, child };
}

/**
 * cpuSeconds is the user and system CPU time process pid has used so far
 * (Linux /proc). Requests per CPU-second of the app is what it serves on a
 * core of its own: steady on a machine shared with other work, where
 * requests/s swings with the load.
 */
function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(")").pop().trim().split(/\s+/);
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ, 100 on Linux
}

/** wrk loads url with the key for DURATION seconds and resolves to { rate: requests/s, requests }; non-2xx answers fail the run. */
async function wrk(url, key) {
  const child = spawn("wrk", ["-t1", `-c${CONNS}`, `-d${DURATION}s`, "-H", `Authorization: Bearer ${key}`, url], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.setEncoding("utf8").on("data", (s) => (out += s));
  child.stderr.setEncoding("utf8").on("data", (s) => (err += s));
  const [code] = await once(child, "exit");
  if (code !== 0) throw new Error(`wrk failed: ${err}`);
  if (/Non-2xx or 3xx responses/.test(out)) throw new Error(`wrk saw refusals:\n${out}`);
  const m = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const n = /(\d+) requests in /.exec(out);
  if (!m || !n) throw new Error(`no Requests/sec in wrk's output:\n${out}`);
  return { rate: Number(m[1]), requests: Number(n[1]) };
}
