// The apps of app.mjs served in process, without a socket: node inproc.mjs
// FRAMEWORK VARIANT... loads each variant's request listener in this one
// process, warms them up, then times ROUNDS rounds that take each variant
// in turn (APP_ITER requests each, under a fifth of a second: a change of the
// machine's load reaches every variant of a round alike) and prints, as
// JSON, each variant's CPU µs per request in every round. The framework
// and the SDK do all their work (routing, headers, the cache hit, the JSON
// answer); the HTTP parser and the socket, which every variant pays alike,
// are left out.
import { IncomingMessage, ServerResponse } from "node:http";
import { listener } from "./app.mjs";

const [framework, ...variants] = process.argv.slice(2);
const ITER = Number(process.env.APP_ITER || 2000);
const ROUNDS = Number(process.env.APP_ROUNDS || 41);
const key = process.env.BENCH_USER_KEY;
const socket = { remoteAddress: "127.0.0.1", remotePort: 50000, encrypted: false, readable: true, writable: true, on() {}, once() {}, removeListener() {}, destroy() {} };
const rawHeaders = ["Host", "127.0.0.1:8080", "Authorization", `Bearer ${key}`];

/** one serves GET /notes with handle and resolves when the response ends; a status other than 200 rejects. */
function one(handle, name) {
  return new Promise((resolve, reject) => {
    const req = new IncomingMessage(socket);
    req.method = "GET";
    req.url = "/notes";
    req.httpVersion = "1.1";
    req.httpVersionMajor = 1;
    req.httpVersionMinor = 1;
    req.rawHeaders = rawHeaders;
    req.headers = { host: rawHeaders[1], authorization: rawHeaders[3] };
    req.complete = true;
    req.push(null);
    const res = new ServerResponse(req);
    const end = res.end;
    res.end = function (...args) {
      const out = end.apply(this, args);
      if (res.statusCode === 200) resolve();
      else reject(new Error(`${framework} ${name} answered ${res.statusCode}`));
      return out;
    };
    handle(req, res);
  });
}

const handles = {};
for (const v of variants) handles[v] = await listener(framework, v);
for (const v of variants) for (let i = 0; i < 10 * ITER; i++) await one(handles[v], v);
const us = Object.fromEntries(variants.map((v) => [v, []]));
for (let r = 0; r < ROUNDS; r++) {
  for (let i = 0; i < variants.length; i++) {
    const v = variants[(i + r) % variants.length];
    const c0 = process.cpuUsage();
    for (let n = 0; n < ITER; n++) await one(handles[v], v);
    const c = process.cpuUsage(c0);
    us[v].push((c.user + c.system) / ITER);
  }
}
console.log(JSON.stringify(us));
