import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/**
 * Schema upgrades are append-only (docs/pocketbase.md, "Set-up"): a released migration is never
 * edited, a schema change ships as one new migration after the released ones.
 */
const migrationsDir = fileURLToPath(new URL("../../migrations/", import.meta.url));
const manifest = JSON.parse(readFileSync(`${migrationsDir}manifest.json`, "utf8")) as {
  frozen: Record<string, string>;
};
const files = readdirSync(migrationsDir)
  .filter((f) => f.endsWith(".js"))
  .sort();
const sha256 = (f: string) =>
  createHash("sha256")
    .update(readFileSync(`${migrationsDir}${f}`))
    .digest("hex");

describe("migrations are append-only", () => {
  it("every released migration is unchanged byte for byte (its sha256 in migrations/manifest.json)", () => {
    const frozen = Object.entries(manifest.frozen);
    expect(frozen.length).toBeGreaterThanOrEqual(2);
    for (const [file, hash] of frozen) {
      expect(files, `${file} is released: never delete or rename it`).toContain(file);
      expect(sha256(file), `${file} is released: never edit it, add a migration instead`).toBe(hash);
    }
  });

  it("a migration not released yet comes after every released one (PocketBase runs them by name)", () => {
    const released = Object.keys(manifest.frozen).sort();
    const last = released[released.length - 1] ?? "";
    for (const f of files.filter((f) => !(f in manifest.frozen))) expect(f > last, f).toBe(true);
    // At most one new migration per release.
    expect(files.filter((f) => !(f in manifest.frozen)).length).toBeLessThanOrEqual(1);
  });

  it("no migration's down() is run by an upgrade, and no up() deletes a collection or a field", () => {
    for (const f of files) {
      const up = readFileSync(`${migrationsDir}${f}`, "utf8").split(/\n\s*\(app\) => \{/)[1] ?? "";
      expect(up, f).not.toMatch(/app\.delete\(|fields\.removeBy|removeField/);
    }
  });
});
