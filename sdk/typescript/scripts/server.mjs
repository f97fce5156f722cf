// Starts the real keyward binary for the tests, the OpenAPI drift check and
// the benchmarks: "keyward serve" on a free loopback port with a scratch
// data directory, its root key read from the one line it prints.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

/** The keyward binary: $KEYWARD_BINARY, else bin/keyward of the repository. */
export function keywardBinary() {
  return process.env.KEYWARD_BINARY || join(repo, "bin", "keyward");
}

/**
 * Why the binary cannot be used, or "" when it can. With CI=true a missing
 * binary is a failure, not a skip: callers throw instead.
 */
export function missingBinary() {
  const bin = keywardBinary();
  if (existsSync(bin)) return "";
  return `no keyward binary at ${bin}: build it with "go build -o bin/keyward ./cmd/keyward" at the repository root, or set KEYWARD_BINARY`;
}

/**
 * Runs "keyward serve" on 127.0.0.1:0 with a new data directory and waits
 * for its "listening" log line. Resolves to { url, rootKey, stop }.
 * extraArgs are added to serve's flags.
 */
export async function startKeyward(extraArgs = []) {
  const why = missingBinary();
  if (why) throw new Error(why);
  const dir = mkdtempSync(join(tmpdir(), "keyward-sdk-ts-"));
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("KEYWARD_")));
  const child = spawn(
    keywardBinary(),
    ["serve", "--listen", "127.0.0.1:0", "--data", join(dir, "data"), "--log-format", "json", ...extraArgs],
    { env, cwd: dir, stdio: ["ignore", "pipe", "pipe"] },
  );
  let stdout = "";
  let stderr = "";
  const exited = new Promise((res) => child.once("exit", (code, signal) => res({ code, signal })));
  const ready = new Promise((res, rej) => {
    let url = "";
    let rootKey = "";
    const check = () => {
      if (url && rootKey) res({ url, rootKey });
    };
    child.stdout.setEncoding("utf8").on("data", (s) => {
      stdout += s;
      const m = /^root key: (\S+)$/m.exec(stdout);
      if (m) rootKey = m[1];
      check();
    });
    child.stderr.setEncoding("utf8").on("data", (s) => {
      stderr += s;
      for (const line of stderr.split("\n")) {
        if (!line.includes('"msg":"listening"')) continue;
        try {
          url = "http://" + JSON.parse(line).addr;
        } catch {
          // a partial line: wait for the rest
        }
      }
      check();
    });
    exited.then(({ code, signal }) =>
      rej(new Error(`keyward serve exited (${code ?? signal}) before it was ready:\n${stderr}`)),
    );
  });
  const timeout = new Promise((_, rej) => {
    const t = setTimeout(() => rej(new Error(`keyward serve was not ready within 30 s:\n${stderr}`)), 30_000);
    ready.finally(() => clearTimeout(t)).catch(() => {});
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const { url, rootKey } = await Promise.race([ready, timeout]);
    return { url, rootKey, stop, logs: () => stderr };
  } catch (err) {
    child.kill("SIGKILL");
    await exited;
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
