// Fails when the committed API client is stale: openapi.json must be what the gateway's
// create_app() describes now, and src/api/schema.d.ts what openapi-typescript makes of it.
// Fix: `npm run dump:openapi && npm run gen:api`, then commit both.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const here = resolve(import.meta.dirname, "..");
const repo = resolve(here, "..");
const python = process.env.PYTHON ?? join(repo, ".venv", "bin", "python");
let failed = false;

if (!existsSync(python)) {
  console.error(`check:api: no Python at ${python} (set PYTHON=...)`);
  process.exit(2);
}
const live = execFileSync(python, ["-m", "services.gateway.openapi_dump"], {
  cwd: repo,
  encoding: "utf8",
  maxBuffer: 64 << 20,
});
if (live !== readFileSync(join(here, "openapi.json"), "utf8")) {
  console.error("frontend/openapi.json differs from the gateway's schema (create_app().openapi())");
  failed = true;
}

const out = join(mkdtempSync(join(tmpdir(), "medchat-api-")), "schema.d.ts");
execFileSync(join(here, "node_modules", ".bin", "openapi-typescript"), [join(here, "openapi.json"), "-o", out], {
  cwd: here,
  stdio: ["ignore", "ignore", "inherit"],
});
if (readFileSync(out, "utf8") !== readFileSync(join(here, "src", "api", "schema.d.ts"), "utf8")) {
  console.error("frontend/src/api/schema.d.ts is not what `npm run gen:api` generates from openapi.json");
  failed = true;
}
if (failed) {
  console.error(
    "the generated API client is stale: run `npm run dump:openapi && npm run gen:api` in frontend/ and commit",
  );
  process.exit(1);
}
console.log("check:api: the generated API client is current");
