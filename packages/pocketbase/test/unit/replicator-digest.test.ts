import { describe, expect, it } from "vitest";
import { contentDigest, setBounded } from "../../src/replicator-digest.js";

const fields = ["doc", "origin", "seq", "changes"];
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
    expect(contentDigest(fields, copy)).toBe(contentDigest(fields, record));
  });

  it("differs when a content field differs, and tells a missing field from any value", () => {
    const other = { ...record, changes: { ...record.changes, ops: { kind: "set", value: "y" } } };
    expect(contentDigest(fields, other)).not.toBe(contentDigest(fields, record));
    const { seq: _, ...noSeq } = record;
    expect(contentDigest(fields, noSeq)).not.toBe(contentDigest(fields, record));
    expect(contentDigest(fields, noSeq)).toBe(contentDigest(fields, { ...noSeq, seq: null }));
    // Values do not slide between fields.
    expect(contentDigest(["a", "b"], { a: "x", b: "" })).not.toBe(
      contentDigest(["a", "b"], { a: "", b: "x" }),
    );
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
