import { type Change, encodeHlc } from "@nxs-sync/core";
import { describe, expect, it } from "vitest";
import { defaultReplicatedCollections, encodeChangeRecord } from "../../src/index.js";
import { contentDigest, contentFields, setBounded } from "../../src/replicator-digest.js";

const fields = ["doc", "origin", "seq", "changes"];
const digest = (r: Readonly<Record<string, unknown>>, f: readonly string[] = fields) =>
  contentDigest(contentFields(f)(r));
const record = {
  id: "aaaaaaaaaaaaaaa",
  created: "2026-01-01 00:00:00.000Z",
  doc: "d",
  origin: "n.main",
  seq: 1,
  changes: { g: [1, 2], ops: { kind: "set", value: "x" } },
};

describe("contentDigest", () => {
  it("is the same for the same content under another id, creation time or key order", () => {
    const copy = {
      changes: { ops: { value: "x", kind: "set" }, g: [1, 2] },
      seq: 1,
      origin: "n.main",
      doc: "d",
      id: "bbbbbbbbbbbbbbb",
      created: "2026-06-01 00:00:00.000Z",
    };
    expect(digest(copy)).toBe(digest(record));
  });

  it("differs when a content field differs, and tells a missing field from any value", () => {
    const other = { ...record, changes: { ...record.changes, ops: { kind: "set", value: "y" } } };
    expect(digest(other)).not.toBe(digest(record));
    const { seq: _, ...noSeq } = record;
    expect(digest(noSeq)).not.toBe(digest(record));
    expect(digest(noSeq)).toBe(digest({ ...noSeq, seq: null }));
    // Values do not slide between fields.
    expect(digest({ a: "x", b: "" }, ["a", "b"])).not.toBe(digest({ a: "", b: "x" }, ["a", "b"]));
  });
});

describe("the content of an nxs_changes record", () => {
  const content = defaultReplicatedCollections().find((c) => c.name === "nxs_changes")!.content!;
  const change = (seq: number, value: string) =>
    ({
      doc: "d",
      origin: "n.main",
      seq,
      hlc: encodeHlc({ ms: 1_700_000_000_000 + seq, counter: 0, node: "n.main" }),
      ops: [{ kind: "set", path: ["k"], value }],
    }) as unknown as Change;
  const pack = (value: string) => ({ id: "aaaaaaaaaaaaaaa", ...encodeChangeRecord([change(1, value)], "n") });

  it("is its author and decoded changes: the same changes agree whatever the record's id, the other one differs", () => {
    expect(contentDigest(content({ ...pack("x"), id: "bbbbbbbbbbbbbbb" }))).toBe(
      contentDigest(content(pack("x"))),
    );
    expect(contentDigest(content(pack("y")))).not.toBe(contentDigest(content(pack("x"))));
    expect(contentDigest(content({ ...pack("x"), node: "m" }))).not.toBe(contentDigest(content(pack("x"))));
  });

  it("falls back to the raw fields for a record that does not decode", () => {
    const bad = { ...pack("x"), hlc: "not an hlc" };
    expect(contentDigest(content(bad))).not.toBe(contentDigest(content({ ...bad, hlc: "still not" })));
  });
});

describe("setBounded", () => {
  it("keeps the newest entries up to the limit; setting a key again makes it the newest", () => {
    const m = new Map<string, number>();
    for (let i = 0; i < 5; i++) setBounded(m, `k${i}`, i, 3);
    expect([...m.keys()]).toEqual(["k2", "k3", "k4"]);
    setBounded(m, "k2", 20, 3);
    setBounded(m, "k5", 5, 3);
    expect([...m.entries()]).toEqual([
      ["k4", 4],
      ["k2", 20],
      ["k5", 5],
    ]);
  });
});
