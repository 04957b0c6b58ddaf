import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { schemaDefinitions } from "../../src/index.js";
import { fakeMigrationApp, type Json } from "./fake-migration-app.js";

const migrationsDir = fileURLToPath(new URL("../../migrations/", import.meta.url));
/** The migration files, in the order PocketBase runs them (by name). */
const migrationPaths = readdirSync(migrationsDir)
  .filter((f) => f.endsWith(".js"))
  .sort()
  .map((f) => `${migrationsDir}${f}`);

/**
 * Runs every shipped migration's up(), in order, against a recording app (no server: a structural
 * parity check), the frozen ones and this release's generated one alike.
 */
function runMigration(existing: readonly string[] = []) {
  const app = fakeMigrationApp(
    schemaDefinitions()
      .filter((d) => existing.includes(d.name))
      .map((d) => JSON.parse(JSON.stringify(d)) as Json),
  );
  for (const path of migrationPaths) app.run(readFileSync(path, "utf8"));
  return { saved: app.created.map((n) => app.collections.get(n)), settings: app.settings, app };
}

describe("schema", () => {
  it("the shipped migrations create the registry's collections, as ensureSchema() does (else: generate this release's migration, scripts/gen-migration.ts)", () => {
    const { saved, settings } = runMigration();
    const norm = (v: unknown) => JSON.parse(JSON.stringify(v));
    expect(norm(saved)).toEqual(norm(schemaDefinitions()));
    expect(settings.batch.enabled).toBe(true);
    expect(settings.batch.maxRequests).toBeGreaterThanOrEqual(200);
  });

  it("the JS migration leaves existing collections alone", () => {
    expect(
      runMigration([
        "nxs_nodes",
        "nxs_replicators",
        "nxs_changes",
        "nxs_snapshots",
        "nxs_acks",
        "nxs_leases",
        "nxs_heads",
        "nxs_change_sizes",
        "nxs_snapshot_versions",
        "nxs_replicator_status",
      ]).saved,
    ).toEqual([]);
  });

  it("no collection is public; changes and snapshots are immutable; deletes are maintenance only", () => {
    const gateway = '@request.auth.collectionName = "nxs_nodes"';
    const replicator = '@request.auth.collectionName = "nxs_replicators"';
    // Every rule grants access through an identity check only: any member, replicators alone, or
    // `… (gateway && <own record>) || replicator`. No rule reads an account field (that costs a join).
    const guarded = (r: string) =>
      r === `(${gateway} || ${replicator})` ||
      r === replicator ||
      (/\|\| @request\.auth\.collectionName = "nxs_replicators"\)?$/.test(r) &&
        r.includes(`(${gateway} && `));
    for (const def of schemaDefinitions()) {
      for (const rule of ["listRule", "viewRule", "createRule", "updateRule", "deleteRule"] as const) {
        const r = def[rule];
        if (r === null) continue;
        expect(guarded(r), `${def.name}.${rule}: ${r}`).toBe(true);
        expect(r.replaceAll(gateway, "").replaceAll(replicator, "")).not.toMatch(/@request\.auth\.(?!id\b)/);
      }
      // Acks move forward; the replicators' heartbeat rows (replicators only) are rewritten each round.
      if (def.name === "nxs_replicator_status") expect(def.updateRule).toBe(replicator);
      else if (def.name !== "nxs_acks") expect(def.updateRule).toBeNull();
      if (def.type === "base") expect(def.deleteRule).toBe(replicator);
    }
    const replicators = schemaDefinitions().find((d) => d.name === "nxs_replicators");
    expect(replicators?.type).toBe("auth");
    for (const rule of ["listRule", "viewRule", "createRule", "updateRule", "deleteRule"] as const)
      expect(replicators?.[rule]).toBeNull();
  });
});
