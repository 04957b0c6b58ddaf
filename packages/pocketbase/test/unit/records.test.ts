import { type Change, type DocId, encodeHlc, type ReplicaId } from "@nxs-sync/core";
import { describe, expect, it } from "vitest";
import {
  decodeChangeRecord,
  decodeSnapshotRecord,
  encodeChangeRecord,
  encodeSnapshotRecord,
  isOriginOfNode,
  packChanges,
  sliceChangeRecord,
} from "../../src/records.js";

const NODE = "abcdefghij12345";
const ORIGIN = `${NODE}.gw` as ReplicaId;
const hlc = (ms: number, counter = 0, node: string = ORIGIN) =>
  encodeHlc({ ms: 1_700_000_000_000 + ms, counter, node });
const change: Change = {
  doc: "doc1" as DocId,
  origin: ORIGIN,
  seq: 3,
  hlc: hlc(0, 3),
  ops: [
    { kind: "set", path: ["routes", "a"], value: { to: "x", n: [1, 2] } },
    { kind: "del", path: ["old"] },
    { kind: "inc", path: ["hits"], value: -2 },
    { kind: "add", path: ["tags"], value: "t" },
    { kind: "rem", path: ["tags"], value: "u" },
    { kind: "rem", path: ["tags"], value: "v", tags: [hlc(-1000, 0, "other")] },
  ],
};
/** A change of ORIGIN at `seq`, one set. */
const simple = (seq: number, ops: readonly unknown[] = [{ kind: "set", path: ["k"], value: seq }]): Change =>
  ({ doc: "doc1", origin: ORIGIN, seq, hlc: hlc(seq), ops }) as unknown as Change;
const pack = [change, simple(4), simple(5, [{ kind: "del", path: ["k"] }])];
const record = (over: Record<string, unknown> = {}, changes: readonly Change[] = [change]) => ({
  id: "rec000000000001",
  collectionName: "nxs_changes",
  created: "2026-11-27 04:45:44.908Z",
  ...encodeChangeRecord(changes, NODE),
  ...over,
});
/** A record of one change made of `ops` (which may be invalid). */
const withOps = (ops: readonly unknown[]) => record({}, [simple(3, ops)]);

describe("encodeChangeRecord / decodeChangeRecord", () => {
  it("round-trips a pack of changes through its record", () => {
    const body = encodeChangeRecord(pack, NODE);
    expect(body).toMatchObject({
      doc: "doc1",
      origin: ORIGIN,
      seq: 3,
      last: 5,
      hlc: pack[2]?.hlc,
      node: NODE,
    });
    const r = decodeChangeRecord(JSON.parse(JSON.stringify({ id: "rec000000000001", ...body })), {
      docs: ["doc1"],
    });
    expect(r).toEqual({ ok: true, value: pack, recordId: "rec000000000001" });
  });

  it("keeps the observed add tags of a remove (add-wins needs them)", () => {
    const r = decodeChangeRecord(JSON.parse(JSON.stringify(record())), { docs: ["doc1"] });
    expect(r.ok && r.value[0]?.ops[5]).toEqual({
      kind: "rem",
      path: ["tags"],
      value: "v",
      tags: [expect.any(String)],
    });
  });

  it("refuses to pack changes that are not one run of one origin", () => {
    expect(() => encodeChangeRecord([], NODE)).toThrow(/no changes/);
    expect(() => encodeChangeRecord([simple(1), simple(3)], NODE)).toThrow(/does not follow/);
    const foreign = { ...simple(2), origin: `${NODE}.other` } as Change;
    expect(() => encodeChangeRecord([simple(1), foreign], NODE)).toThrow(
      expect.objectContaining({ code: "op/invalid" }),
    );
  });

  it.each([
    ["seq as a string", record({ seq: "3" })],
    ["seq zero", record({ seq: 0 })],
    ["fractional seq", record({ seq: 1.5 })],
    ["last below seq", record({ last: 2 })],
    ["an envelope longer than its changes", record({ last: 4 })],
    ["an envelope shifted from its changes", record({ seq: 4, last: 4 })],
    ["another origin inside", record({ origin: `${NODE}.x` })],
    ["another doc inside", record({ doc: "doc2" })],
    ["changes not an object", record({ changes: [1, 2] })],
    ["runs not an array", record({ changes: { doc: "doc1", g: "x" } })],
    [
      "unknown op kind",
      record({
        changes: { doc: "doc1", g: [{ o: ORIGIN, s: 3, h: [0], n: 1, k: "x", p: [["a"]], v: [2] }] },
      }),
    ],
    ["an inc by a string", withOps([{ kind: "inc", path: ["a"], value: "1e999" }])],
    ["an envelope hlc that is not the last change's", record({ hlc: hlc(9, 9) })],
    [
      "path with a number",
      record({
        changes: { doc: "doc1", g: [{ o: ORIGIN, s: 3, h: [0], n: 1, k: "d", p: [["a", 1]], v: [] }] },
      }),
    ],
    ["missing hlc", record({ hlc: undefined })],
    ["doc with a space", record({ doc: "doc 1" })],
    ["origin too long", record({ origin: "x".repeat(65) })],
  ])("quarantines a record with %s", (_what, raw) => {
    const r = decodeChangeRecord(raw);
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
      const c = { ...simple(1), origin, hlc: hlc(1, 0, origin) } as Change;
      const r = decodeChangeRecord(record({}, [c]));
      expect(r.ok, origin).toBe(false);
      if (!r.ok) expect(r.error.message).toMatch(/not bound/);
    }
    const own = { ...simple(1), origin: NODE, hlc: hlc(1, 0, NODE) } as Change;
    expect(decodeChangeRecord(record({}, [own])).ok).toBe(true);
  });

  it("quarantines huge values, too many ops and too many changes", () => {
    const big = decodeChangeRecord(withOps([{ kind: "set", path: ["a"], value: "x".repeat(2000) }]), {
      maxChangesBytes: 1000,
    });
    expect(big.ok).toBe(false);
    const many = decodeChangeRecord(
      withOps(Array.from({ length: 11 }, () => ({ kind: "del", path: ["a"] }))),
      {
        maxOps: 10,
      },
    );
    expect(many.ok).toBe(false);
    const long = decodeChangeRecord(record({}, pack), { maxChanges: 2 });
    expect(long.ok).toBe(false);
    if (!long.ok) expect(long.error.message).toMatch(/3 changes exceed/);
  });

  it("quarantines an unparsable hlc, with core's decoder or the given one", () => {
    expect(decodeChangeRecord(record({ hlc: "has space" })).ok).toBe(false);
    expect(decodeChangeRecord(record({ hlc: "0001AZ-0000-x" })).ok).toBe(false);
    const refuseAll = () => {
      throw new Error("bad");
    };
    expect(decodeChangeRecord(record(), { decodeHlc: () => undefined }).ok).toBe(true);
    const bad = decodeChangeRecord(record(), { decodeHlc: refuseAll });
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.error.cause).toBeInstanceOf(Error);
  });

  it("never throws, whatever the input", () => {
    for (const raw of [null, undefined, 42, "x", [], { id: 5 }, { changes: null }]) {
      expect(decodeChangeRecord(raw).ok).toBe(false);
    }
  });
});

describe("sliceChangeRecord", () => {
  it("keeps the tail from a seq on, with the author node", () => {
    const tail = sliceChangeRecord(record({}, pack), 5);
    expect(tail).toMatchObject({ seq: 5, last: 5, node: NODE });
    const r = decodeChangeRecord({ id: "t", ...tail });
    expect(r.ok && r.value).toEqual([pack[2]]);
    expect(sliceChangeRecord(record({}, pack), 6)).toBeUndefined();
    // A slice of a slice (a body without an id) works too; `from` must cut the record.
    expect(sliceChangeRecord(sliceChangeRecord(record({}, pack), 4) ?? {}, 5)).toMatchObject({
      seq: 5,
      last: 5,
    });
    expect(sliceChangeRecord(record({}, pack), 3)).toBeUndefined();
    expect(sliceChangeRecord(record({ last: 9 }, pack), 4)).toBeUndefined();
  });
});

describe("packChanges", () => {
  it("cuts runs of one origin at gaps, origin changes and the limits", () => {
    const other = (seq: number) => ({ ...simple(seq), origin: `${NODE}.b` }) as Change;
    const input = [simple(1), simple(2), simple(3), simple(5), other(6), other(7), simple(6)];
    const seqs = (packs: Change[][]) => packs.map((p) => p.map((c) => `${c.origin.slice(-1)}${c.seq}`));
    expect(seqs(packChanges(input, { packSize: 1000, packMaxBytes: 1 << 20 }))).toEqual([
      ["w1", "w2", "w3"],
      ["w5"],
      ["b6", "b7"],
      ["w6"],
    ]);
    expect(seqs(packChanges(input.slice(0, 3), { packSize: 2, packMaxBytes: 1 << 20 }))).toEqual([
      ["w1", "w2"],
      ["w3"],
    ]);
    // A change bigger than the byte limit still travels, alone.
    expect(seqs(packChanges(input.slice(0, 2), { packSize: 1000, packMaxBytes: 1 }))).toEqual([
      ["w1"],
      ["w2"],
    ]);
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
