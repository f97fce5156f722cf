// The SDK's permission matching against the cases keyward's own is tested
// with (permission/testdata/covers.json): a middleware that checks a route's
// permissions on an identity must agree with the server on wildcards.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { covers, hasPermissions } from "../dist/index.js";

const cases = JSON.parse(readFileSync(new URL("../../../permission/testdata/covers.json", import.meta.url), "utf8"));

test("covers agrees with keyward on every case", () => {
  assert.ok(cases.length > 0);
  for (const c of cases) {
    assert.equal(covers(c.held, c.wanted), c.covers, `covers(${c.held}, ${c.wanted})`);
  }
});

test("hasPermissions holds through wildcards, and only through them", () => {
  const user = { key_id: "key_1", role: "user", permissions: ["memories:*", "search:run"] };
  assert.ok(hasPermissions(user, ["memories:read", "search:run"]));
  assert.ok(!hasPermissions(user, ["memories"]));
  assert.ok(!hasPermissions(user, ["memories:read", "admin:keys"]));
  assert.ok(hasPermissions({ key_id: "key_2", role: "root", permissions: [] }, ["anything:at.all"]));
  assert.ok(!hasPermissions(undefined, []));
});
