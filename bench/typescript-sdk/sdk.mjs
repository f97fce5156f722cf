// Loads the built SDK (sdk/typescript/dist) and the frameworks it was
// installed with (sdk/typescript/node_modules), so the benchmarks need no
// npm project of their own.
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const dir = resolve(dirname(fileURLToPath(import.meta.url)), "../../sdk/typescript");
const require = createRequire(join(dir, "package.json"));

export const sdk = {
  dir,
  /** The SDK's entry point name ("index", "express", "hono", "next"). */
  module: (name) => import(pathToFileURL(join(dir, "dist", `${name}.js`)).href),
  /** A package installed in sdk/typescript/node_modules. */
  dep: (name) => import(pathToFileURL(require.resolve(name)).href),
  /** The scripts/server.mjs starting the real keyward. */
  server: () => import(pathToFileURL(join(dir, "scripts", "server.mjs")).href),
};
