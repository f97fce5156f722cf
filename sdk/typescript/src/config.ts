import { KeywardError } from "./errors.js";

/** The server a client talks to when neither the url option nor KEYWARD_URL is set (as the CLI). */
export const DEFAULT_URL = "http://127.0.0.1:8080";

/**
 * env returns an environment variable, or undefined where there is no
 * process (edge runtimes): options must then be passed explicitly.
 */
export function env(name: string): string | undefined {
  const proc = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  const v = proc?.env?.[name];
  return v === "" ? undefined : v;
}

/** isLoopback reports whether a URL's hostname is localhost or a loopback address. */
export function isLoopback(hostname: string): boolean {
  const h = hostname.toLowerCase();
  if (h === "localhost" || h.endsWith(".localhost") || h === "[::1]") return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * checkURL parses the keyward URL and refuses plain http to a host that is
 * not loopback unless allowInsecureHttp: the API key, and every key sent to
 * be verified, would cross the network in clear.
 */
export function checkURL(raw: string, allowInsecureHttp: boolean): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new KeywardError("invalid", `invalid keyward URL ${JSON.stringify(raw)}: set the url option or KEYWARD_URL to e.g. https://keyward.example.com`);
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") {
    throw new KeywardError("invalid", `keyward URL ${JSON.stringify(raw)} must be http or https`);
  }
  if (u.username || u.password || u.search || u.hash) {
    throw new KeywardError("invalid", `keyward URL must be a base URL without credentials, query or fragment`);
  }
  if (u.protocol === "http:" && !allowInsecureHttp && !isLoopback(u.hostname)) {
    throw new KeywardError(
      "invalid",
      `refusing to send API keys over plain http to ${u.host}: use an https URL, ` +
        `or pass allowInsecureHttp: true if the network to it is trusted`,
    );
  }
  return u;
}
