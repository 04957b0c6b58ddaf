import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { decodeSnapshotBinary, encodeSnapshotBinary } from "../../../src/codec/snapshot-binary.js";
import { decodeState, encodeState } from "../../../src/codec/state-codec.js";
import { createDoc } from "../../../src/doc/doc.js";
import { ErrorCode } from "../../../src/errors/errors.js";
import type { Snapshot } from "../../../src/model/change.js";
import { counter } from "../../../src/model/schema.js";
import { actionArb, canon, code, jsonTrip, runActions, schema } from "../doc/fixtures.js";

const params = { seed: 20261207, numRuns: 60 };
const actions = fc.array(actionArb(3), { minLength: 5, maxLength: 60, size: "max" });

const counterSchema = z.object({ c: counter() });
/** A counter of `replicas` x `n` one-increment changes, merged into one document. */
function counterDoc(replicas: number, n: number, amount: (k: number) => number) {
  let t = 1_700_000_000_000;
  const clock = () => {
    t += 0.3;
    return Math.floor(t);
  };
  const dst = createDoc({ schema: counterSchema, docId: "c", replicaId: "dst", clock, initial: { c: 0 } });
  for (let r = 0; r < replicas; r++) {
    const d = createDoc({ schema: counterSchema, docId: "c", replicaId: `r${r}`, clock, initial: { c: 0 } });
    for (let k = 0; k < n; k++) d.increment(["c"], amount(k));
    dst.applyRemote(d.changesSince({}));
  }
  return dst;
}

describe("binary snapshot layout 2", () => {
  it("is written by default; layout 1 on request; both load to the same snapshot", () => {
    fc.assert(
      fc.property(actions, fc.boolean(), (acts, compress) => {
        for (const d of runActions(acts).docs) {
          const b2 = d.snapshotBinary({ compress });
          const b1 = d.snapshotBinary({ compress, layout: 1 });
          expect(b2[2]).toBe(2);
          expect(b1[2]).toBe(1);
          const snap = jsonTrip(d.snapshot());
          expect(jsonTrip(decodeSnapshotBinary(b2))).toEqual(snap);
          expect(jsonTrip(decodeSnapshotBinary(b1))).toEqual(snap);
          expect(encodeSnapshotBinary(d.snapshot(), { compress })).toEqual(b2);
          const load = (snapshot: Uint8Array) =>
            createDoc({ schema, docId: "doc", replicaId: "z", clock: () => 2e12, snapshot });
          expect(canon(load(b2))).toBe(canon(d));
          expect(load(b2).snapshotBinary({ compress })).toEqual(b2);
        }
      }),
      params,
    );
  });

  it("keeps counter stamps of the initial state, of another node, fractional and repeated amounts", () => {
    const root = {
      c: [
        ["x", "y"],
        [
          { n: [0, 1, 2.5, 1, 2, -3, 1, 4, 0.5, 1, 5, 0.5, 2, 3, 7], k: "c" },
          { n: [1, 2, 1, 1, 4, 1, 1, 5, 1], k: "c" },
        ],
        [],
      ],
    };
    const snap = {
      format: 1,
      doc: "d",
      version: { a: 2, b: 1 },
      // refs: 1 (5, 0, a), 2 (5, 1, b), 3 (9, 0, a); stamps ref * 2 + op.
      state: { r: ["", "a", "b"], t: [5, 0, 1, 0, 1, 2, 4, 0, 1], m: 2, last: { a: 3, b: 2 }, root },
    } as unknown as Snapshot;
    const { state, extra } = decodeState(snap.state);
    const canonical = { ...snap, state: jsonTrip(encodeState(state, extra)) };
    for (const compress of [true, false]) {
      const bytes = encodeSnapshotBinary(snap, { compress });
      expect(bytes[2]).toBe(2);
      expect(jsonTrip(decodeSnapshotBinary(bytes))).toEqual(canonical);
    }
  });

  it("codes a counter's increments in runs: a small fraction of layout 1's bytes", () => {
    const d = counterDoc(4, 2_000, () => 1);
    const b1 = d.snapshotBinary({ layout: 1 });
    const b2 = d.snapshotBinary();
    expect(d.get().c).toBe(8_000);
    expect(b2.byteLength * 20).toBeLessThan(b1.byteLength);
    const back = createDoc({
      schema: counterSchema,
      docId: "c",
      replicaId: "z",
      snapshot: b2,
      initial: { c: 0 },
    });
    expect(back.snapshot()).toEqual(d.snapshot());
    // Fractional amounts fold to the same float.
    const f = counterDoc(3, 500, (k) => (k % 3) / 10);
    const fb = createDoc({
      schema: counterSchema,
      docId: "c",
      replicaId: "z",
      snapshot: f.snapshotBinary(),
      initial: { c: 0 },
    });
    expect(Object.is(fb.get().c, f.get().c)).toBe(true);
    expect(fb.snapshot()).toEqual(f.snapshot());
  });

  it("refuses corrupted layout 2 bytes with a ValidationError only, and a count past what a body can hold", () => {
    const d = counterDoc(2, 300, (k) => (k % 5 === 0 ? 0.5 : 1));
    const bytesOf = [d.snapshotBinary(), d.snapshotBinary({ compress: false })];
    const load = (b: Uint8Array) =>
      createDoc({ schema: counterSchema, docId: "c", replicaId: "z", snapshot: b, initial: { c: 0 } });
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        (which, edits) => {
          const b = (bytesOf[which] as Uint8Array).slice();
          for (const [at, v] of edits) b[4 + (at % (b.length - 4))] = v;
          expect([undefined, ErrorCode.SchemaInvalid, ErrorCode.OpInvalid]).toContain(code(() => load(b)));
        },
      ),
      { seed: 20261207, numRuns: 300 },
    );
    expect(code(() => decodeSnapshotBinary(new Uint8Array([0x4e, 0x58, 3, 0])))).toBe(
      ErrorCode.SchemaInvalid,
    );
  });

  it("writes each replica id once, front-coded, and refuses a corrupted header with a ValidationError only", () => {
    const schema = z.object({ v: z.number().optional() });
    const dst = createDoc({ schema, docId: "b", replicaId: "dst", clock: () => 1_700_000_000_000 });
    for (let i = 0; i < 200; i++) {
      const d = createDoc({
        schema,
        docId: "b",
        replicaId: `client-${i}`,
        clock: () => 1_700_000_000_000 + i,
      });
      dst.applyRemote([d.set(["v"], i) as never]);
    }
    const raw1 = dst.snapshotBinary({ compress: false, layout: 1 });
    const raw2 = dst.snapshotBinary({ compress: false });
    // Layout 1 writes the 200 ids three times (version, replica table, last); layout 2 once, front-coded.
    expect(raw2.byteLength * 2).toBeLessThan(raw1.byteLength);
    const load = (b: Uint8Array) => createDoc({ schema, docId: "b", replicaId: "z", snapshot: b });
    expect(load(raw2).snapshot()).toEqual(dst.snapshot());
    expect(load(dst.snapshotBinary()).snapshot()).toEqual(dst.snapshot());
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(600), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        (edits) => {
          const b = raw2.slice();
          // The header is near the start of the body: corrupt there.
          for (const [at, v] of edits) b[4 + (at % (b.length - 4))] = v;
          expect([undefined, ErrorCode.SchemaInvalid, ErrorCode.OpInvalid]).toContain(code(() => load(b)));
        },
      ),
      { seed: 20261207, numRuns: 300 },
    );
  });
});
