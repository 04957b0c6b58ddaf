/**
 * Writes the one migration of the next release (docs/pocketbase.md, "Set-up"):
 *   npx tsx scripts/gen-migration.ts "nxs-sync schema 4: <what it adds>"   write (or rewrite) it
 *   npx tsx scripts/gen-migration.ts --freeze                             at release: list it in the manifest
 * The migration brings a server from any earlier schema to the collections of
 * `createNxsCollectionRegistry()`. Released migrations (migrations/manifest.json) are never
 * edited; the one not released yet is rewritten by each run, so a release adds exactly one file.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createNxsCollectionRegistry, renderMigration } from "../packages/pocketbase/src/index.js";

const dir = fileURLToPath(new URL("../packages/pocketbase/migrations/", import.meta.url));
const manifestPath = `${dir}manifest.json`;
const manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as {
  comment: string;
  frozen: Record<string, string>;
};
const unreleased = readdirSync(dir).filter((f) => f.endsWith(".js") && !(f in manifest.frozen));
const arg = process.argv[2];

if (arg === "--freeze") {
  for (const f of unreleased) {
    manifest.frozen[f] = createHash("sha256")
      .update(readFileSync(`${dir}${f}`))
      .digest("hex");
    console.log(`frozen ${f}`);
  }
  writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
} else if (arg === undefined || arg.startsWith("-")) {
  console.error('usage: gen-migration.ts "<title of this release\'s schema>" | --freeze');
  process.exit(2);
} else {
  for (const f of unreleased) rmSync(`${dir}${f}`);
  const name = `${Math.floor(Date.now() / 1000)}_nxs_sync.js`;
  writeFileSync(
    `${dir}${name}`,
    renderMigration(createNxsCollectionRegistry().collections(), { title: arg }),
  );
  console.log(`wrote ${name}${unreleased.length > 0 ? ` (replacing ${unreleased.join(", ")})` : ""}`);
}
