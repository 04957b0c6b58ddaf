import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type CollectionDef,
  createCollectionRegistry,
  createNxsCollectionRegistry,
  defaultReplicatedCollections,
  MergeRules,
  replicatedCollectionOf,
} from "../../src/index.js";
import { bodyOf } from "../../src/replicator.js";

/**
 * What the replicator sends for a copy (bodyOf). PocketBase's json field reads a plain string as
 * JSON when it looks like JSON (core/field_json.go PrepareValue, v0.39): "true", "false" and
 * "null" as those values, a string starting with a digit, `-`, `"`, `[` or `{` that is valid JSON
 * as that JSON, any other string (the empty one too) as a string; a value that is not a string is
 * stored as sent. `stored` models that rule: a copy's body, read through it, must give back the
 * source's values (the real servers: replicator-rules.int.test.ts).
 */
function stored(raw: unknown): unknown {
  if (typeof raw !== "string") return raw;
  if (raw === "null" || raw === "true" || raw === "false") return JSON.parse(raw);
  if (raw !== "" && /^[0-9\-"[{]/.test(raw)) {
    try {
      return JSON.parse(raw);
    } catch {
      return raw;
    }
  }
  return raw;
}

const coll = { key: ["key"], jsonFields: ["value", "meta"] };
const params = { seed: 20261207, numRuns: 500 };

/** Strings PocketBase would read as JSON, and other JSON values (nested strings among them). */
const jsonLooking = fc.oneof(
  fc.constantFrom("12", "true", "false", "null", "[1]", '{"a":1}', "-3.5", '"quoted"', "", " 12"),
  fc.jsonValue().map((v) => JSON.stringify(v)),
);
const values = fc.oneof(jsonLooking, fc.string(), fc.jsonValue());

describe("bodyOf: a copy's json fields", () => {
  it("reads back as the source's values through PocketBase's json field rule (strings that look like JSON stay strings)", () => {
    fc.assert(
      fc.property(values, values, fc.string(), (value, meta, label) => {
        const record = { id: "abc", key: "k", value, meta, label, created: "x", updated: "y" };
        const body = bodyOf(coll, record);
        expect(stored(body.value)).toEqual(value);
        expect(stored(body.meta)).toEqual(meta);
        // Other fields (a text field holding JSON-looking text) go as they are.
        expect(body.label).toBe(label);
        expect(body).not.toHaveProperty("id");
        expect(body).not.toHaveProperty("created");
      }),
      params,
    );
  });

  it("sends only a string as JSON text; objects, arrays, numbers, booleans and null go as they are", () => {
    const body = bodyOf(coll, { key: "k", value: "12", meta: { s: "12" } });
    expect(body).toEqual({ key: "k", value: '"12"', meta: { s: "12" } });
    for (const v of [12, true, null, [1, "2"], { a: "true" }])
      expect(bodyOf(coll, { key: "k", value: v }).value).toBe(v);
    // Without jsonFields (a collection listed by hand without them): as before.
    expect(bodyOf({ key: ["key"] }, { key: "k", value: "12" }).value).toBe("12");
  });

  it("keeps the id when it is the key", () => {
    expect(bodyOf({ key: ["id"], jsonFields: ["value"] }, { id: "abc", value: "true" })).toEqual({
      id: "abc",
      value: '"true"',
    });
  });
});

describe("replicated collections carry their json fields (from the schema)", () => {
  it("the registry and the default nxs collections name each collection's json fields", () => {
    const kv: CollectionDef = {
      id: "pbc_kv_json",
      name: "kv_json",
      type: "base",
      fields: [
        { name: "key", type: "text" },
        { name: "value", type: "json" },
        { name: "note", type: "text" },
        { name: "extra", type: "json" },
      ],
      indexes: [],
      listRule: null,
      viewRule: null,
      createRule: null,
      updateRule: null,
      deleteRule: null,
    };
    const registry = createCollectionRegistry([
      { schema: kv, replication: { key: ["key"], merge: MergeRules.lww("rev") } },
      { schema: { ...kv, id: "pbc_kv_local", name: "kv_local" } },
    ]);
    expect(registry.replicated()).toEqual([
      expect.objectContaining({ name: "kv_json", jsonFields: ["value", "extra"] }),
    ]);
    const byName = Object.fromEntries(defaultReplicatedCollections().map((c) => [c.name, c.jsonFields]));
    expect(byName).toEqual({
      nxs_changes: ["changes"],
      nxs_snapshots: ["version", "state"],
      nxs_acks: ["version"],
    });
    expect(createNxsCollectionRegistry().replicated()).toEqual(defaultReplicatedCollections());
    // A list written by hand takes the same from a definition; a collection not replicated gives none.
    expect(replicatedCollectionOf(registry.definitions()[0]!)).toEqual(registry.replicated()[0]);
    expect(replicatedCollectionOf({ schema: kv })).toBeUndefined();
  });
});
