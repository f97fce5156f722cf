// Benchmarks of the TypeScript SDK (not timed tests): what a cache hit
// costs per request beside the framework's own per-request cost, and the
// throughput Express and Hono apps keep behind the middleware and with
// withKeyward on the route, in process and under wrk, all in one run on
// loopback against the real keyward. Targets (docs/benchmarks.md): a cache
// hit under 2 us; >= 90% of the bare app's requests/s.
//
//   node bench/typescript-sdk/bench.mjs   (bench/typescript-sdk/run builds first)
//
// Environment: DURATION (wrk seconds per run, default 3), ROUNDS (default
// 7), CONNS (default 32), ITER (micro-benchmark iterations, default
// 100000), APP_ITER and APP_ROUNDS (of inproc.mjs, default 2000 and 41),
// PARTS (of micro,app,wrk; default all), FRAMEWORKS (default express,hono),
// VARIANTS of app.mjs (default bare,noop,auth,route; spin, the control,
// joins the load runs: bare plus as much busy CPU as withKeyward added in
// process, SPIN_NS when the in-process part did not run).
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { sdk } from "./sdk.mjs";

const DURATION = Number(process.env.DURATION || 3);
const ROUNDS = Number(process.env.ROUNDS || 7);
const CONNS = Number(process.env.CONNS || 32);
const ITER = Number(process.env.ITER || 100_000);
const PARTS = (process.env.PARTS || "micro,app,wrk").split(",");
const here = dirname(fileURLToPath(import.meta.url));

const { Client, CachedVerifier, Guard } = await sdk.module("index");
const { keyward: honoKeyward, withKeyward: honoWithKeyward } = await sdk.module("hono");
const { keyward: expressKeyward } = await sdk.module("express");
const { Hono } = await sdk.dep("hono");
const { default: express } = await sdk.dep("express");
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
  const wrapped = new Hono().get("/notes", honoWithKeyward((c) => c.json({ ok: c.get("keyward").key_id }), { verifier }));
  const request = () => new Request("http://127.0.0.1/notes", { headers: { Authorization: `Bearer ${userKey}` } });

  if (PARTS.includes("micro")) {
    // The Express middleware alone, on a request of an app's prototype
    // holding the fields it reads.
    const expressMw = expressKeyward({ verifier });
    const rawHeaders = ["Host", "127.0.0.1", "User-Agent", "wrk", "Authorization", `Bearer ${userKey}`];
    const fields = { rawHeaders, headers: {}, socket: { remoteAddress: "127.0.0.1" }, originalUrl: "/notes", url: "/notes", method: "GET" };
    const expressReq = Object.assign(Object.create(express().request), fields);
    const noHeaders = { setHeader() {} };
    const expressCall = () => new Promise((next) => expressMw(expressReq, noHeaders, next));
    const micro = {
      "CachedVerifier.verifyKey, cache hit": () => verifier.verifyKey({ key: userKey, ip: "127.0.0.1" }),
      "Guard.check (headers, agent, cache hit)": () => guard.check(greq),
      "Express keyward() middleware call (cache hit)": expressCall,
      "Hono app.fetch, no auth (framework's own cost)": () => bare.fetch(request()),
      "Hono app.fetch behind a no-op middleware": () => noop.fetch(request()),
      "Hono app.fetch behind keyward() (cache hit)": () => authed.fetch(request()),
      "Hono app.fetch, withKeyward route (cache hit)": () => wrapped.fetch(request()),
    };
    console.log(`per request, in process (${ITER} iterations, 5 interleaved rounds, median; CPU time of the process, then wall time):`);
    const perOp = await nsPerOp(micro);
    for (const [name, { cpu, wall }] of Object.entries(perOp)) {
      console.log(`  ${name.padEnd(48)} ${(cpu / 1000).toFixed(3).padStart(7)} us CPU ${(wall / 1000).toFixed(3).padStart(8)} us wall`);
    }
    const framework = perOp["Hono app.fetch, no auth (framework's own cost)"].cpu;
    const added = perOp["Hono app.fetch behind keyward() (cache hit)"].cpu - framework;
    const addedRoute = perOp["Hono app.fetch, withKeyward route (cache hit)"].cpu - framework;
    console.log(
      `  keyward() adds ${(added / 1000).toFixed(3)} us CPU, withKeyward ${(addedRoute / 1000).toFixed(3)} us, to Hono's own ${(framework / 1000).toFixed(3)} us per request`,
    );
  }

  const env = { ...process.env, KEYWARD_URL: kw.url, KEYWARD_API_KEY: verifierKey, BENCH_USER_KEY: userKey };
  const variants = (process.env.VARIANTS || "bare,noop,auth,route").split(",");
  const labels = { bare: "bare", noop: "no-op middleware", auth: "keyward()", route: "withKeyward", spin: "control (spin)" };
  // What withKeyward added per request in process, by framework: the
  // control spins as long in the load runs.
  const spinNs = {};
  const frameworks = (process.env.FRAMEWORKS || "express,hono").split(",");

  // --- whole apps in process ---------------------------------------------
  if (PARTS.includes("app")) {
    console.log(
      `\nwhole app in process (inproc.mjs: each variant's request listener without a socket, all in one process per ` +
        `framework, rounds of APP_ITER requests taking each variant in turn; CPU µs per request, median of rounds; ` +
        `ratio: bare's µs / the variant's, median of the rounds' ratios):`,
    );
    for (const fw of frameworks) {
      const out = spawnSync(process.execPath, [join(here, "inproc.mjs"), fw, ...variants], { env, encoding: "utf8" });
      if (out.status !== 0) throw new Error(`inproc.mjs ${fw}: ${out.stderr}`);
      const us = JSON.parse(out.stdout);
      console.log(`  ${fw} (${us[variants[0]].length} rounds):`);
      if (us.route && us.bare) spinNs[fw] = Math.max(0, Math.round((median(us.route) - median(us.bare)) * 1000));
      for (const v of variants) {
        let line = `    ${(labels[v] ?? v).padEnd(17)} ${median(us[v]).toFixed(2).padStart(7)} µs`;
        if (v !== "bare" && us.bare) {
          const ratios = us[v].map((x, i) => us.bare[i] / x);
          const q = [...ratios].sort((a, b) => a - b);
          line +=
            `  +${(median(us[v]) - median(us.bare)).toFixed(2)} µs; ${(median(ratios) * 100).toFixed(1)}% of bare ` +
            `(quartiles ${(q[Math.floor(q.length / 4)] * 100).toFixed(0)}% to ${(q[Math.floor((3 * q.length) / 4)] * 100).toFixed(0)}%)`;
        }
        console.log(line);
      }
    }
  }

  // --- throughput under wrk -----------------------------------------------
  if (PARTS.includes("wrk")) {
    if (spawnSync("wrk", ["--version"]).error) throw new Error("wrk not found: apt-get install -y wrk");
    console.log(
      `\nthroughput, ${ROUNDS} rounds; in each, wrk -t1 -c${CONNS} -d${DURATION}s loads the bare app, one behind a no-op ` +
        `middleware, one behind keyward() and one with its handler wrapped in withKeyward, one after the other in an ` +
        `order that rotates each round:`,
    );
  }
  for (const fw of PARTS.includes("wrk") ? frameworks : []) {
    const apps = {};
    const loaded = process.env.VARIANTS ? variants : [...variants, "spin"];
    const spin = spinNs[fw] ?? Number(process.env.SPIN_NS || 1500);
    for (const variant of loaded) apps[variant] = await startApp(fw, variant, { ...env, SPIN_NS: String(spin) }, userKey);
    const rps = Object.fromEntries(loaded.map((v) => [v, []]));
    const perCPU = Object.fromEntries(loaded.map((v) => [v, []]));
    const perUser = Object.fromEntries(loaded.map((v) => [v, []]));
    /** load runs wrk on the app of v and records its rate and requests per CPU-second. */
    const load = async (v) => {
      const cpu0 = cpuSeconds(apps[v].child.pid);
      const { rate, requests } = await wrk(`http://127.0.0.1:${apps[v].port}/notes`, userKey);
      const cpu = cpuSeconds(apps[v].child.pid);
      rps[v].push(rate);
      perCPU[v].push(requests / (cpu.total - cpu0.total));
      perUser[v].push(requests / (cpu.user - cpu0.user));
    };
    for (let r = 0; r < ROUNDS; r++) {
      // Rotate which goes first, so a trend in the load favours none.
      for (let i = 0; i < loaded.length; i++) await load(loaded[(i + r) % loaded.length]);
    }
    for (const a of Object.values(apps)) a.child.kill();
    console.log(`  ${fw} (the control spins ${(spin / 1000).toFixed(2)} µs per request):`);
    for (const [unit, m] of [
      ["req/s", rps],
      ["req per CPU-second of the app's process", perCPU],
      ["req per user CPU-second (the JavaScript; the kernel's socket work left out)", perUser],
    ]) {
      // Ratios are taken round by round (same minute of load), then their median.
      const ratio = (a, b) => median(m[a].map((x, i) => x / m[b][i]));
      const pct = (x) => (x * 100).toFixed(1) + "%";
      console.log(`    ${unit}, median of ${ROUNDS} rounds:`);
      for (const v of loaded) {
        let line = `      ${(labels[v] ?? v).padEnd(17)} ${median(m[v]).toFixed(0).padStart(7)}`;
        if (v !== "bare" && m.bare) {
          const rounds = m[v].map((x, i) => ((x / m.bare[i]) * 100).toFixed(0) + "%");
          line += `  ${pct(ratio(v, "bare"))} of bare`;
          if (v !== "noop" && m.noop) line += `, ${pct(ratio(v, "noop"))} of the no-op`;
          line += `; rounds ${rounds.join(" ")}`;
        }
        console.log(line);
      }
    }
  }
  console.log(`\ntarget: keyward() or withKeyward >= 90% of the bare app; load average at the end: ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}`);
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
 * cpuSeconds is the CPU time process pid has used so far (Linux /proc):
 * { user, total } (total adds the kernel's time, mostly the socket writes).
 * Requests per CPU-second of the app is what it serves on a core of its
 * own, steadier than requests/s on a machine shared with other work; per
 * user CPU-second leaves out the kernel's share, the same work for every
 * variant but slower per request when the machine is busy.
 */
function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(")").pop().trim().split(/\s+/);
  const user = Number(fields[11]) / 100; // USER_HZ, 100 on Linux
  return { user, total: user + Number(fields[12]) / 100 };
}

/** wrk loads url with the key for DURATION seconds and resolves to { rate: requests/s, requests }; non-2xx answers fail the run. */
async function wrk(url, key) {
  const child = spawn("wrk", ["-t1", `-c${CONNS}`, `-d${DURATION}s`, "-H", `Authorization: Bearer ${key}`, url], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.setEncoding("utf8").on("data", (s) => (out += s));
  child.stderr.setEncoding("utf8").on("data", (s) => (err += s));
  const [code] = await once(child, "close"); // "close": after its output, which "exit" may precede
  if (code !== 0) throw new Error(`wrk failed: ${err}`);
  if (/Non-2xx or 3xx responses/.test(out)) throw new Error(`wrk saw refusals:\n${out}`);
  const m = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const n = /(\d+) requests in /.exec(out);
  if (!m || !n) throw new Error(`no Requests/sec in wrk's output:\n${out}`);
  return { rate: Number(m[1]), requests: Number(n[1]) };
}
