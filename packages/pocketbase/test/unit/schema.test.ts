import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { schemaDefinitions } from "../../src/schema.js";

const migrationsDir = fileURLToPath(new URL("../../migrations/", import.meta.url));
/** The migration files, in the order PocketBase runs them (by name). */
const migrationPaths = readdirSync(migrationsDir)
  .filter((f) => f.endsWith(".js"))
  .sort()
  .map((f) => `${migrationsDir}${f}`);

/** Runs every migration's up() against a recording app (no server: a structural parity check). */
function runMigration(existing: readonly string[] = []): {
  saved: Record<string, unknown>[];
  settings: { batch: Record<string, number | boolean> };
} {
  const saved: Record<string, unknown>[] = [];
  const settings = {
    batch: { enabled: false, maxRequests: 50, timeout: 3, maxBodySize: 0 } as Record<
      string,
      number | boolean
    >,
  };
  const app = {
    findCollectionByNameOrId(name: string) {
      if (!existing.includes(name)) throw new Error("not found");
      return { name };
    },
    save(model: unknown) {
      if (model !== settings) saved.push(model as Record<string, unknown>);
    },
    settings: () => settings,
  };
  class Collection {
    constructor(data: Record<string, unknown>) {
      Object.assign(this, data);
    }
  }
  for (const path of migrationPaths) {
    let up: ((app: unknown) => void) | undefined;
    new Function("migrate", "Collection", readFileSync(path, "utf8"))((u: (app: unknown) => void) => {
      up = u;
    }, Collection);
    up?.(app);
  }
  return { saved, settings };
}

describe("schema", () => {
  it("the JS migration creates the same collections as ensureSchema()", () => {
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
      if (def.name !== "nxs_acks") expect(def.updateRule).toBeNull();
      if (def.type === "base") expect(def.deleteRule).toBe(replicator);
    }
    const replicators = schemaDefinitions().find((d) => d.name === "nxs_replicators");
    expect(replicators?.type).toBe("auth");
    for (const rule of ["listRule", "viewRule", "createRule", "updateRule", "deleteRule"] as const)
      expect(replicators?.[rule]).toBeNull();
  });
});
