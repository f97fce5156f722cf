// Validates an OpenAPI document (a file path or an http(s) URL) with
// @readme/openapi-parser, an implementation independent of keyward, so client
// generators keep working. Exits 1 with the validator's errors when invalid.
import { validate } from '@readme/openapi-parser';

const source = process.argv[2];
if (!source) {
  console.error('usage: node validate.mjs FILE|URL');
  process.exit(2);
}
let doc = source;
if (/^https?:\/\//.test(source)) {
  const res = await fetch(source);
  if (!res.ok) {
    console.error(`GET ${source}: ${res.status} ${res.statusText}`);
    process.exit(1);
  }
  doc = await res.json();
}
const result = await validate(doc);
for (const w of result.warnings ?? []) console.error(`warning: ${w.message ?? JSON.stringify(w)}`);
if (!result.valid) {
  for (const e of result.errors ?? []) console.error(`error: ${e.message ?? JSON.stringify(e)}`);
  console.error(`${source}: not a valid OpenAPI document`);
  process.exit(1);
}
console.log(`${source}: valid ${result.specification} document`);
