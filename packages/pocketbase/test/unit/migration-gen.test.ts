import { describe, expect, it } from "vitest";
import {
  type CollectionDef,
  createCollectionRegistry,
  createNxsCollectionRegistry,
  DeletePolicies,
  defaultReplicatedCollections,
  MergeRules,
  renderMigration,
  schemaDefinitions,
} from "../../src/index.js";
import { fakeMigrationApp as fakeApp, type Json } from "./fake-migration-app.js";

const json = (v: unknown) => JSON.parse(JSON.stringify(v));

describe("generated migration", () => {
  const source = renderMigration(createNxsCollectionRegistry().collections(), { title: "test" });

  it("on an empty server creates exactly the registry's collections, in order, and turns batch on", () => {
    const app = fakeApp();
    app.run(source);
    expect(app.created).toEqual(schemaDefinitions().map((d) => d.name));
    expect(json([...app.collections.values()])).toEqual(json(schemaDefinitions()));
    expect(app.settings.batch).toMatchObject({ enabled: true, maxRequests: 200, timeout: 10 });
  });

  it("completes an older schema: adds missing fields and indexes, sets rules and views, keeps what it does not know", () => {
    const defs = json(schemaDefinitions()) as Json[];
    const acks = defs.find((d) => d.name === "nxs_acks")!;
    // An older nxs_acks: no `updated` field, no index, an open update rule, an extra field and index of the user.
    acks.fields = (acks.fields as Json[])
      .filter((f) => f.name !== "updated")
      .concat({ name: "mine", type: "text" });
    acks.indexes = ["CREATE INDEX idx_mine ON nxs_acks (mine)"];
    acks.updateRule = "";
    const nodes = defs.find((d) => d.name === "nxs_nodes")!;
    nodes.authToken = { duration: 604800, secret: "keep-me" };
    const heads = defs.find((d) => d.name === "nxs_heads")!;
    heads.viewQuery = "SELECT 1";
    const app = fakeApp(defs.filter((d) => d.name !== "nxs_change_sizes"));
    app.run(source);
    expect(app.created).toEqual(["nxs_change_sizes"]);
    const after = app.collections.get("nxs_acks")!;
    expect((after.fields as Json[]).map((f) => f.name)).toEqual([
      "doc",
      "replica",
      "version",
      "at",
      "node",
      "created",
      "mine",
      "updated",
    ]);
    expect(after.indexes).toEqual([
      "CREATE INDEX idx_mine ON nxs_acks (mine)",
      "CREATE UNIQUE INDEX idx_nxs_acks_doc_replica ON nxs_acks (doc, replica)",
    ]);
    expect(after.updateRule).toBe(schemaDefinitions().find((d) => d.name === "nxs_acks")!.updateRule);
    expect(app.collections.get("nxs_nodes")!.authToken).toEqual({ duration: 21600, secret: "keep-me" });
    expect(app.collections.get("nxs_heads")!.viewQuery).toContain("FROM nxs_changes");
  });

  it("is idempotent: a second run changes nothing", () => {
    const app = fakeApp();
    app.run(source);
    const once = json([...app.collections.values()]);
    app.run(source);
    expect(json([...app.collections.values()])).toEqual(once);
  });

  it("never deletes: its up() has no delete and its down() does nothing", () => {
    expect(source).not.toMatch(/app\.delete|removeBy/);
  });
});

/** No API access (superusers and hooks only). */
const closed = { listRule: null, viewRule: null, createRule: null, updateRule: null, deleteRule: null };

describe("collection registry", () => {
  const kv: CollectionDef = {
    id: "pbc_kv_items",
    name: "kv_items",
    type: "base",
    fields: [{ name: "key", type: "text", required: true }],
    indexes: [],
    ...closed,
  };

  it("holds the nxs-sync collections with their replication, then a package's own", () => {
    const registry = createNxsCollectionRegistry().register({
      schema: kv,
      replication: { key: ["key"], merge: MergeRules.lww("rev"), deletes: DeletePolicies.tombstone() },
    });
    expect(registry.collections().map((c) => c.name)).toEqual([
      ...schemaDefinitions().map((d) => d.name),
      "kv_items",
    ]);
    expect(registry.replicated().map((r) => r.name)).toEqual([
      ...defaultReplicatedCollections().map((r) => r.name),
      "kv_items",
    ]);
    expect(registry.replicated().at(-1)).toMatchObject({ key: ["key"], deletes: { kind: "tombstone" } });
  });

  it("refuses a second definition of one name or id with config/invalid", () => {
    const registry = createCollectionRegistry([{ schema: kv }]);
    expect(() => registry.register({ schema: { ...kv, id: "pbc_other" } })).toThrow(
      expect.objectContaining({ code: "config/invalid" }),
    );
    expect(() => registry.register({ schema: { ...kv, name: "other" } })).toThrow(/registered already/);
  });
});
