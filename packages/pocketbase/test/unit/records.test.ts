import { type Change, type DocId, encodeHlc, type ReplicaId } from "@nxs-sync/core";
import { describe, expect, it } from "vitest";
import {
  decodeChangeRecord,
  decodeSnapshotRecord,
  encodeChangeRecord,
  encodeSnapshotRecord,
  isOriginOfNode,
} from "../../src/records.js";

const NODE = "abcdefghij12345";
const change: Change = {
  doc: "doc1" as DocId,
  origin: `${NODE}.gw` as ReplicaId,
  seq: 3,
  hlc: encodeHlc({ ms: 1_700_000_000_000, counter: 3, node: `${NODE}.gw` }),
  ops: [
    { kind: "set", path: ["routes", "a"], value: { to: "x", n: [1, 2] } },
    { kind: "del", path: ["old"] },
    { kind: "inc", path: ["hits"], value: -2 },
    { kind: "add", path: ["tags"], value: "t" },
    { kind: "rem", path: ["tags"], value: "u" },
    {
      kind: "rem",
      path: ["tags"],
      value: "v",
      tags: [encodeHlc({ ms: 1_699_999_999_000, counter: 0, node: "other" })],
    },
  ],
};
const record = (over: Record<string, unknown> = {}) => ({
  id: "rec000000000001",
  collectionName: "nxs_changes",
  created: "2026-11-27 04:45:44.908Z",
  ...encodeChangeRecord(change, NODE),
  ...over,
});

describe("decodeChangeRecord", () => {
  it("round-trips a change through its record", () => {
    const r = decodeChangeRecord(record(), { docs: ["doc1"] });
    expect(r).toEqual({ ok: true, value: change, recordId: "rec000000000001" });
  });

  it("keeps the observed add tags of a remove (add-wins needs them)", () => {
    const r = decodeChangeRecord(JSON.parse(JSON.stringify(record())), { docs: ["doc1"] });
    expect(r.ok && r.value.ops[5]).toEqual({
      kind: "rem",
      path: ["tags"],
      value: "v",
      tags: [expect.any(String)],
    });
  });

  it.each([
    ["seq as a string", { seq: "3" }],
    ["seq zero", { seq: 0 }],
    ["fractional seq", { seq: 1.5 }],
    ["ops not an array", { ops: { kind: "set" } }],
    ["unknown op kind", { ops: [{ kind: "mul", path: ["a"], value: 2 }] }],
    ["non-finite inc", { ops: [{ kind: "inc", path: ["a"], value: "1e999" }] }],
    ["path with a number", { ops: [{ kind: "del", path: ["a", 1] }] }],
    ["missing hlc", { hlc: undefined }],
    ["doc with a space", { doc: "doc 1" }],
    ["origin too long", { origin: "x".repeat(65) }],
  ])("quarantines a record with %s", (_what, over) => {
    const r = decodeChangeRecord(record(over));
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe("schema/invalid");
      expect(r.error.retryable).toBe(false);
      expect(r.recordId).toBe("rec000000000001");
    }
  });

  it("quarantines an unknown doc", () => {
    const r = decodeChangeRecord(record({ doc: "other" }), { docs: new Set(["doc1"]) });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.message).toMatch(/unknown doc/);
  });

  it("quarantines an origin not bound to its author node (forged)", () => {
    for (const origin of ["zzzzzzzzzzzzzzz", `x${NODE}`, `${NODE}x`, `${NODE}-gw`]) {
      const r = decodeChangeRecord(record({ origin }));
      expect(r.ok, origin).toBe(false);
      if (!r.ok) expect(r.error.message).toMatch(/not bound/);
    }
    expect(decodeChangeRecord(record({ origin: NODE })).ok).toBe(true);
  });

  it("quarantines huge values and too many ops", () => {
    const big = decodeChangeRecord(record({ ops: [{ kind: "set", path: ["a"], value: "x".repeat(2000) }] }), {
      maxOpsBytes: 1000,
    });
    expect(big.ok).toBe(false);
    const many = decodeChangeRecord(
      record({ ops: Array.from({ length: 11 }, () => ({ kind: "del", path: ["a"] })) }),
      { maxOps: 10 },
    );
    expect(many.ok).toBe(false);
  });

  it("quarantines an unparsable hlc, with core's decoder or the given one", () => {
    expect(decodeChangeRecord(record({ hlc: "has space" })).ok).toBe(false);
    expect(decodeChangeRecord(record({ hlc: "0001AZ-0000-x" })).ok).toBe(false);
    const strict = (h: string) => {
      if (!/^\d+$/.test(h)) throw new Error("bad");
    };
    expect(decodeChangeRecord(record({ hlc: "123" }), { decodeHlc: strict }).ok).toBe(true);
    const bad = decodeChangeRecord(record({ hlc: "12a" }), { decodeHlc: strict });
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.error.cause).toBeInstanceOf(Error);
  });

  it("never throws, whatever the input", () => {
    for (const raw of [null, undefined, 42, "x", [], { id: 5 }, { ops: null }]) {
      expect(decodeChangeRecord(raw).ok).toBe(false);
    }
  });
});

describe("isOriginOfNode", () => {
  it("accepts the node id and <node>.<instance> only", () => {
    expect(isOriginOfNode(NODE, NODE)).toBe(true);
    expect(isOriginOfNode(`${NODE}.a.b`, NODE)).toBe(true);
    expect(isOriginOfNode(`${NODE}.`, NODE)).toBe(true);
    expect(isOriginOfNode(`${NODE}a`, NODE)).toBe(false);
    expect(isOriginOfNode("", "")).toBe(false);
  });
});

describe("snapshot records", () => {
  it("round-trip and validate", () => {
    const snap = { format: 1 as const, doc: "doc1" as DocId, version: { [NODE]: 4 }, state: { a: [1, "b"] } };
    const rec = { id: "snap00000000001", ...encodeSnapshotRecord(snap, NODE) };
    const r = decodeSnapshotRecord(rec, { docs: ["doc1"] });
    expect(r).toEqual({ ok: true, value: snap, recordId: "snap00000000001" });
    expect(decodeSnapshotRecord({ ...rec, version: { [NODE]: -1 } }).ok).toBe(false);
    expect(decodeSnapshotRecord(rec, { docs: ["other"] }).ok).toBe(false);
  });
});
