import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { schemaDefinitions } from "../../src/schema.js";

const migrationPath = fileURLToPath(new URL("../../migrations/1764201600_nxs_sync.js", import.meta.url));

/** Runs the migration's up() against a recording app (no server: a structural parity check). */
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
  let up: ((app: unknown) => void) | undefined;
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
  const source = readFileSync(migrationPath, "utf8");
  new Function("migrate", "Collection", source)((u: (app: unknown) => void) => {
    up = u;
  }, Collection);
  up?.(app);
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
      runMigration(["nxs_nodes", "nxs_changes", "nxs_snapshots", "nxs_acks", "nxs_heads"]).saved,
    ).toEqual([]);
  });

  it("no collection is public; changes and snapshots are immutable; deletes are maintenance only", () => {
    for (const def of schemaDefinitions()) {
      for (const rule of ["listRule", "viewRule", "createRule", "updateRule", "deleteRule"] as const) {
        const r = def[rule];
        if (r !== null) expect(r).toMatch(/^@request\.auth\.collectionName = "nxs_nodes"( && |$)/);
      }
      if (def.name !== "nxs_acks") expect(def.updateRule).toBeNull();
      if (def.name !== "nxs_nodes" && def.type !== "view")
        expect(def.deleteRule).toContain('@request.auth.role = "replicator"');
    }
  });
});
