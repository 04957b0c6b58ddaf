import { runInNewContext } from "node:vm";
import fc from "fast-check";
import { deflateSync } from "fflate";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { encodeHlc } from "../../../src/clock/hlc.js";
import { toDocId } from "../../../src/clock/ids.js";
import { decodeChange } from "../../../src/codec/change-codec.js";
import {
  decodeSnapshotBinary,
  encodeSnapshotBinary,
  encodeStateBinary,
} from "../../../src/codec/snapshot-binary.js";
import { decodeState, encodeState } from "../../../src/codec/state-codec.js";
import { createDoc } from "../../../src/doc/doc.js";
import { ErrorCode, ValidationError } from "../../../src/errors/errors.js";
import type { Snapshot } from "../../../src/model/change.js";
import { addWinsSet } from "../../../src/model/schema.js";
import { actionArb, canon, code, jsonTrip, runActions, schema, wire } from "./fixtures.js";

/**
 * Flips up to four bytes past the magic of either snapshot (deflated or raw), seeded, and expects
 * `load` to succeed or fail with a ValidationError code, never anything else.
 */
function expectOnlyValidationErrors(
  bytesOf: readonly Uint8Array[],
  load: (bytes: Uint8Array) => unknown,
): void {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: bytesOf.length - 1 }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
      (which, edits) => {
        const b = (bytesOf[which] as Uint8Array).slice();
        for (const [at, v] of edits) b[4 + (at % (b.length - 4))] = v;
        expect([undefined, ErrorCode.SchemaInvalid, ErrorCode.OpInvalid]).toContain(code(() => load(b)));
      },
    ),
    { seed: 20261127, numRuns: 400 },
  );
}

const params = { seed: 20261127, numRuns: 80 };
const actions = fc.array(actionArb(3), { minLength: 5, maxLength: 60, size: "max" });

const kv = z.record(z.string(), z.unknown());

function sampleSnapshot(): Snapshot {
  const doc = createDoc({ schema: kv, docId: "d", replicaId: "a", clock: () => 1_700_000_000_000 });
  for (let i = 0; i < 300; i++) doc.set([`key-${i}`], i);
  doc.set(["s"], "héllo \u{1F600} \uD800 lone");
  doc.set(["f"], 1.5);
  doc.set(["neg"], -(2 ** 53 - 1));
  doc.set(["big"], 2 ** 53 - 1);
  doc.set(["arr"], [1, "x", null, true, false, [2.5], { a: { b: [] } }]);
  doc.set(["o"], { "k\u00e9y": { x: 1 }, __proto__: 2, "": 3 } as never);
  doc.delete(["key-3"]);
  return doc.snapshot();
}

describe("binary snapshots (encodeSnapshotBinary / decodeSnapshotBinary)", () => {
  it("round-trips any snapshot exactly, and loads to the same state", () => {
    fc.assert(
      fc.property(actions, fc.boolean(), (acts, compress) => {
        const { docs } = runActions(acts);
        for (const d of docs) {
          const snap = d.snapshot();
          const bytes = encodeSnapshotBinary(snap, { compress });
          const back = decodeSnapshotBinary(bytes);
          expect(jsonTrip(back)).toEqual(jsonTrip(snap));
          const loaded = createDoc({ schema, docId: "doc", replicaId: "z", snapshot: back });
          expect(canon(loaded)).toBe(canon(d));
          expect(loaded.version()).toEqual(d.version());
          expect(jsonTrip(loaded.snapshot())).toEqual(jsonTrip(snap));
        }
      }),
      params,
    );
  });

  it("keeps strings, numbers, nested values and key orders of any kind", () => {
    const snap = sampleSnapshot();
    for (const compress of [true, false]) {
      const back = decodeSnapshotBinary(encodeSnapshotBinary(snap, { compress }));
      expect(back).toEqual(snap);
      const loaded = createDoc({ schema: kv, docId: "d", replicaId: "b", snapshot: back });
      expect(Object.keys(loaded.get())).toEqual(
        Object.keys(createDoc({ schema: kv, docId: "d", replicaId: "c", snapshot: snap }).get()),
      );
    }
  });

  it("round-trips key arrays (no separator fits), an empty document and a gap", () => {
    const s = z.record(z.string(), z.number());
    const doc = createDoc({ schema: s, docId: "d", replicaId: "a", clock: () => 7 });
    const empty = doc.snapshot();
    expect(decodeSnapshotBinary(encodeSnapshotBinary(empty))).toEqual(jsonTrip(empty));
    doc.set([",|/; ~^!#$*+=&@`'%"], 1);
    doc.set(["plain"], 2);
    const snap = jsonTrip(doc.snapshot()) as Snapshot & { state: { sep?: string } };
    expect(snap.state.sep).toBeUndefined();
    expect(decodeSnapshotBinary(encodeSnapshotBinary(snap))).toEqual(snap);
    // Own changes past a gap (a restarted replica): `extra` is kept.
    const later = createDoc({
      schema: s,
      docId: "d",
      replicaId: "a",
      clock: () => 9,
      last: { seq: 5, hlc: "000000000001000000a" },
    });
    later.set(["x"], 3);
    const withExtra = later.snapshot();
    expect((withExtra.state as { extra?: unknown }).extra).toBeDefined();
    expect(decodeSnapshotBinary(encodeSnapshotBinary(withExtra))).toEqual(jsonTrip(withExtra));
  });

  it("is much smaller than the JSON snapshot", () => {
    const doc = createDoc({ schema: kv, docId: "d", replicaId: "a", clock: () => 1 });
    doc.batch((w) => {
      for (let i = 0; i < 2000; i++) w.set([`k${i}`], i);
    });
    const snap = doc.snapshot();
    const json = JSON.stringify(snap).length;
    expect(encodeSnapshotBinary(snap).length * 20).toBeLessThan(json);
    expect(encodeSnapshotBinary(snap, { compress: false }).length).toBeLessThan(json);
  });

  it("refuses what is not a well-formed snapshot with schema/invalid", () => {
    const snap = jsonTrip(sampleSnapshot()) as unknown as { state: Record<string, unknown> };
    const enc = (x: unknown) => code(() => encodeSnapshotBinary(x as Snapshot));
    const st = snap.state;
    expect(enc(null)).toBe(ErrorCode.SchemaInvalid);
    expect(enc({ ...snap, format: 2 })).toBe(ErrorCode.SchemaInvalid);
    expect(enc({ ...snap, version: [] })).toBe(ErrorCode.SchemaInvalid);
    expect(enc({ ...snap, version: { a: -1 } })).toBe(ErrorCode.SchemaInvalid);
    expect(enc({ ...snap, state: [] })).toBe(ErrorCode.SchemaInvalid);
    expect(enc({ ...snap, state: { ...st, r: [1] } })).toBe(ErrorCode.SchemaInvalid);
    expect(enc({ ...snap, state: { ...st, t: [1, 2] } })).toBe(ErrorCode.SchemaInvalid);
    expect(enc({ ...snap, state: { ...st, t: [0.5, 0, 0] } })).toBe(ErrorCode.SchemaInvalid);
    expect(enc({ ...snap, state: { ...st, sep: "ab" } })).toBe(ErrorCode.SchemaInvalid);
    expect(enc({ ...snap, state: { ...st, last: 1 } })).toBe(ErrorCode.SchemaInvalid);
    expect(enc({ ...snap, state: { ...st, extra: [] } })).toBe(ErrorCode.SchemaInvalid);
    expect(enc({ ...snap, state: { ...st, extra: { a: [-1] } } })).toBe(ErrorCode.SchemaInvalid);
    expect(enc({ ...snap, state: { ...st, t: [2 ** 53, 0, 0] } })).toBe(ErrorCode.SchemaInvalid);
    const root = (root: unknown) => enc({ ...snap, state: { ...st, root } });
    expect(root(1)).toBe(ErrorCode.SchemaInvalid);
    expect(root({ s: [] })).toBe(ErrorCode.SchemaInvalid);
    expect(root({ s: [-1] })).toBe(ErrorCode.SchemaInvalid);
    expect(root({ c: [["a"], [1]] })).toBe(ErrorCode.SchemaInvalid);
    expect(root({ c: [["a"], [1, 2], []] })).toBe(ErrorCode.SchemaInvalid);
    expect(root({ c: [[1], [1], [0]] })).toBe(ErrorCode.SchemaInvalid);
    expect(root({ c: [["a"], [1], [0.5]] })).toBe(ErrorCode.SchemaInvalid);
    expect(root({ c: [["a"], [Number.NaN], [0]] })).toBe(ErrorCode.SchemaInvalid);
    expect(root({ c: [["a"], [() => 1], [0]] })).toBe(ErrorCode.SchemaInvalid);
    expect(root({ n: [0, 0] })).toBe(ErrorCode.SchemaInvalid);
    expect(root({ n: [0, 0, "x"] })).toBe(ErrorCode.SchemaInvalid);
    expect(root({ e: [[1]] })).toBe(ErrorCode.SchemaInvalid);
    expect(root({ e: [[1, [1], 0.5]] })).toBe(ErrorCode.SchemaInvalid);
    expect(root({ e: [[1, [1], -1, [-1]]] })).toBe(ErrorCode.SchemaInvalid);
    const sepless = { ...st, sep: undefined };
    expect(enc({ ...snap, state: { ...sepless, root: { c: ["a", [1], [1]] } } })).toBe(
      ErrorCode.SchemaInvalid,
    );
  });

  it("round-trips counters and sets with floors and unseen remove tags", () => {
    const root = {
      k: "s",
      c: [
        ["x", "y"],
        [
          { n: [0, 1, 2.5, 1, 2, -3], k: "c" },
          {
            e: [
              ["v", [1, 2]],
              [2, [3], -1, [1]],
              [null, [], 4],
            ],
          },
        ],
        [],
      ],
    };
    const snap = {
      format: 1,
      doc: "d",
      version: { a: 2 },
      state: { r: ["", "a"], t: [5, 0, 1, 0, 1, 1], m: 2, last: { a: 2 }, root },
    } as unknown as Snapshot;
    // Bytes carry the state, not its JSON spelling: the snapshot comes back as `doc.snapshot()` of
    // that state would write it.
    const { state, extra } = decodeState(snap.state);
    const canonical = { ...snap, state: jsonTrip(encodeState(state, extra)) };
    expect(jsonTrip(decodeSnapshotBinary(encodeSnapshotBinary(snap)))).toEqual(canonical);
  });

  it("refuses malformed bytes with a ValidationError (schema/invalid), never another error", () => {
    const bytes = encodeSnapshotBinary(sampleSnapshot());
    const raw = encodeSnapshotBinary(sampleSnapshot(), { compress: false });
    const dec = (b: unknown) => code(() => decodeSnapshotBinary(b as Uint8Array));
    expect(dec("x")).toBe(ErrorCode.SchemaInvalid);
    expect(dec(new Uint8Array([1, 2, 3]))).toBe(ErrorCode.SchemaInvalid);
    expect(dec(Uint8Array.of(0x4e, 0x58, 9, 0))).toBe(ErrorCode.SchemaInvalid);
    expect(dec(Uint8Array.of(0x4e, 0x58, 1, 7))).toBe(ErrorCode.SchemaInvalid);
    expect(dec(Uint8Array.of(0x4e, 0x58, 1, 1, 0xff, 0xff))).toBe(ErrorCode.SchemaInvalid);
    expect(
      dec(Uint8Array.of(0x4e, 0x58, 1, 0, 5, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)),
    ).toBe(ErrorCode.SchemaInvalid);
    expect(dec(new Uint8Array([...raw, 0]))).toBe(ErrorCode.SchemaInvalid);
    for (const b of [bytes, raw])
      for (let cut = 0; cut < b.length; cut += Math.max(1, Math.floor(b.length / 97)))
        expect(dec(b.subarray(0, cut))).toBe(ErrorCode.SchemaInvalid);
    try {
      decodeSnapshotBinary(raw.subarray(0, 10));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ValidationError);
    }
  });

  it("never throws anything but a ValidationError on corrupted bytes, when decoding or loading", () => {
    const s = z.record(z.string(), z.unknown());
    const bytesOf = [true, false].map((compress) => encodeSnapshotBinary(sampleSnapshot(), { compress }));
    expectOnlyValidationErrors(bytesOf, (b) =>
      createDoc({ schema: s, docId: "d", replicaId: "z", snapshot: decodeSnapshotBinary(b) }),
    );
  });
});

describe("binary snapshots straight from and into the document (snapshotBinary / createDoc)", () => {
  // A property over whole documents: ~1-2 s alone, past 5 s with coverage on a loaded 2-core machine.
  it("loads to the same document as the JSON path, which then behaves the same", { timeout: 30_000 }, () => {
    fc.assert(
      fc.property(actions, fc.boolean(), fc.integer({ min: -5, max: 5 }), (acts, compress, n) => {
        const { docs } = runActions(acts);
        for (const d of docs) {
          const bytes = d.snapshotBinary({ compress });
          // The converter from the JSON snapshot writes the same bytes.
          expect(encodeSnapshotBinary(d.snapshot(), { compress })).toEqual(bytes);
          expect(jsonTrip(decodeSnapshotBinary(bytes))).toEqual(jsonTrip(d.snapshot()));
          const viaBytes = createDoc({
            schema,
            docId: "doc",
            replicaId: "z",
            clock: () => 2e12,
            snapshot: bytes,
          });
          const viaJson = createDoc({
            schema,
            docId: "doc",
            replicaId: "z",
            clock: () => 2e12,
            snapshot: jsonTrip(d.snapshot()),
          });
          const same = () => {
            expect(canon(viaBytes)).toBe(canon(viaJson));
            expect(viaBytes.version()).toEqual(viaJson.version());
            expect(jsonTrip(viaBytes.snapshot())).toEqual(jsonTrip(viaJson.snapshot()));
            expect(viaBytes.snapshotBinary()).toEqual(viaJson.snapshotBinary());
          };
          same();
          expect(canon(viaBytes)).toBe(canon(d));
          // Later changes: every replica's, then local edits, give the same results on both.
          for (const other of docs) {
            const cs = wire(other.changesSince({}));
            const a = viaBytes.applyRemote(cs);
            const b = viaJson.applyRemote(cs);
            expect(a.applied.length).toBe(b.applied.length);
            expect(a.rejected.length).toBe(b.rejected.length);
          }
          same();
          const ca = viaBytes.change((s) => {
            s.kv.later = n;
            s.hits += n;
            s.tags.push(`t${n}`);
          });
          const cb = viaJson.change((s) => {
            s.kv.later = n;
            s.hits += n;
            s.tags.push(`t${n}`);
          });
          expect(jsonTrip(ca)).toEqual(jsonTrip(cb));
          same();
          // And the bytes of the updated document load again.
          const again = createDoc({
            schema,
            docId: "doc",
            replicaId: "y",
            snapshot: viaBytes.snapshotBinary(),
          });
          expect(canon(again)).toBe(canon(viaBytes));
        }
      }),
      params,
    );
  });

  it("keeps strings, numbers, nested values, key orders, -0 as JSON does", () => {
    const snap = sampleSnapshot();
    const d = createDoc({ schema: kv, docId: "d", replicaId: "b", snapshot: snap });
    d.set(["z"], -0);
    d.set(["\uD83D"], 1);
    d.set(["\uD83D\uDE00"], 2);
    d.set(["\uD83D\uDE01"], 3);
    for (const compress of [true, false]) {
      const loaded = createDoc({
        schema: kv,
        docId: "d",
        replicaId: "c",
        snapshot: d.snapshotBinary({ compress }),
      });
      const viaJson = createDoc({ schema: kv, docId: "d", replicaId: "c", snapshot: jsonTrip(d.snapshot()) });
      expect(loaded.get()).toEqual(viaJson.get());
      expect(Object.is(loaded.get().z, 0)).toBe(true);
      expect(Object.keys(loaded.get())).toEqual(Object.keys(viaJson.get()));
      expect(Object.isFrozen((loaded.get().arr as unknown[])[6])).toBe(true);
    }
  });

  it("refuses bytes of another document (op/invalid) and malformed bytes (schema/invalid)", () => {
    const d = createDoc({ schema: kv, docId: "d", replicaId: "a", clock: () => 5 });
    d.set(["a"], 1);
    const load = (b: Uint8Array, docId = "d") =>
      code(() => createDoc({ schema: kv, docId, replicaId: "b", snapshot: b }));
    expect(load(d.snapshotBinary(), "other")).toBe(ErrorCode.OpInvalid);
    expect(load(d.snapshotBinary())).toBeUndefined();
    const raw = d.snapshotBinary({ compress: false });
    for (let cut = 0; cut < raw.length; cut++)
      expect(load(raw.subarray(0, cut))).toBe(ErrorCode.SchemaInvalid);
    const bad = sampleSnapshot();
    const big = createDoc({ schema: kv, docId: "d", replicaId: "a", snapshot: bad }).snapshotBinary();
    for (let cut = 0; cut < big.length; cut += 7)
      expect(load(big.subarray(0, cut))).toBe(ErrorCode.SchemaInvalid);
  });

  it("never throws anything but a ValidationError on corrupted bytes when loading them", () => {
    const s = z.record(z.string(), z.unknown());
    const src = createDoc({ schema: s, docId: "d", replicaId: "a", snapshot: sampleSnapshot() });
    const bytesOf = [true, false].map((compress) => src.snapshotBinary({ compress }));
    expectOnlyValidationErrors(bytesOf, (b) =>
      createDoc({ schema: s, docId: "d", replicaId: "z", snapshot: b }),
    );
  });
});

describe("binary snapshots: review fixes", () => {
  const s = z.record(z.string(), z.unknown());
  const load = (snapshot: Snapshot | Uint8Array) =>
    createDoc({ schema: s, docId: "d", replicaId: "z", clock: () => 10, snapshot });
  const raise = (f: () => unknown): unknown => {
    try {
      f();
    } catch (e) {
      return e;
    }
    return undefined;
  };

  it("round-trips arrays of consecutive integers, also as the last value", () => {
    const d = createDoc({ schema: s, docId: "d", replicaId: "a", clock: () => 5 });
    d.set(["a"], [0, 1, 2, 3, 4, 5, 6, 7]);
    d.set(["b"], [[1, 2, 3], 4, 5, [6, 7], 8, { x: 9, y: 10 }, 11]);
    d.set(["c"], 12);
    d.set(
      ["z"],
      Array.from({ length: 100 }, (_, k) => k),
    );
    for (const compress of [true, false]) {
      const bytes = d.snapshotBinary({ compress });
      expect(load(bytes).get()).toEqual(d.get());
      expect(jsonTrip(decodeSnapshotBinary(bytes))).toEqual(jsonTrip(d.snapshot()));
    }
  });

  it("refuses a run that spans array elements", () => {
    // A hand-made raw frame: root with one plain-leaf kid "a" = [1, 2] written as one run.
    const d = createDoc({ schema: s, docId: "d", replicaId: "a", clock: () => 5 });
    d.set(["a"], [1, 2]);
    const good = d.snapshotBinary({ compress: false });
    // Values column of the good bytes: T_ARR 2, T_INT +1, T_INT +1 (6 2 3 2 3 2).
    const at = good.findIndex((_, k) => [6, 2, 3, 2, 3, 2].every((b, j) => good[k + j] === b));
    expect(at).toBeGreaterThan(0);
    // Rewritten as T_ARR 2, T_RUN +1 x2 (6 2 9 2 2), the column a byte shorter.
    const bad = [...good.subarray(0, at), 6, 2, 9, 2, 2, ...good.subarray(at + 6)];
    // Fix the values column length in the frame head (count, then six lengths; the fifth).
    const head = 4;
    expect(bad[head]).toBe(6);
    const vLen = head + 5;
    bad[vLen] = (bad[vLen] as number) - 1;
    const e = raise(() => load(new Uint8Array(bad)));
    expect(e).toBeInstanceOf(ValidationError);
    expect((e as ValidationError).code).toBe(ErrorCode.SchemaInvalid);
    expect((e as Error).message).toMatch(/run across array elements/);
  });

  it("keeps a leading U+FEFF in strings and keys", () => {
    const d = createDoc({ schema: s, docId: "d", replicaId: "a", clock: () => 5 });
    d.set(["v"], "\uFEFFhello");
    d.set(["\uFEFFk"], 1);
    d.set(["k"], 2);
    d.set(["o"], { "\uFEFFx": "\uFEFF" });
    for (const compress of [true, false]) {
      const got = load(d.snapshotBinary({ compress })).get();
      expect(got).toEqual(d.get());
      expect(got.v).toBe("\uFEFFhello");
      expect(Object.keys(got).sort()).toEqual(["k", "o", "v", "\uFEFFk"].sort());
    }
  });

  it('refuses a forged "__proto__" child key in both snapshot forms', () => {
    const d = createDoc({ schema: s, docId: "d", replicaId: "a", clock: () => 5 });
    d.set(["xxxxxxxxx"], { isAdmin: true });
    d.set(["name"], "n");
    // JSON: JSON.parse makes "__proto__" an own key.
    const forged = JSON.parse(JSON.stringify(d.snapshot()).replace("xxxxxxxxx", "__proto__")) as Snapshot;
    const e1 = raise(() => load(forged));
    expect(e1).toBeInstanceOf(ValidationError);
    expect((e1 as ValidationError).code).toBe(ErrorCode.SchemaInvalid);
    expect(code(() => encodeSnapshotBinary(forged))).toBe(ErrorCode.SchemaInvalid);
    // Binary: the key bytes replaced in place (same length).
    const bytes = d.snapshotBinary({ compress: false });
    const name = new TextEncoder().encode("xxxxxxxxx");
    const at = bytes.findIndex((_, k) => name.every((b, j) => bytes[k + j] === b));
    expect(at).toBeGreaterThan(0);
    const bad = bytes.slice();
    bad.set(new TextEncoder().encode("__proto__"), at);
    const e2 = raise(() => load(bad));
    expect(e2).toBeInstanceOf(ValidationError);
    expect((e2 as ValidationError).code).toBe(ErrorCode.SchemaInvalid);
    expect(({} as { isAdmin?: boolean }).isAdmin).toBeUndefined();
  });

  it("refuses a duplicate key inside a value object", () => {
    const d = createDoc({ schema: s, docId: "d", replicaId: "a", clock: () => 5 });
    d.set(["o"], [{ ab: 1, ac: 2 }]); // an object inside an array is a value, not nodes
    const bytes = d.snapshotBinary({ compress: false });
    const at = bytes.findIndex((_, k) => bytes[k] === 2 && bytes[k + 1] === 0x61 && bytes[k + 2] === 0x63);
    expect(at).toBeGreaterThan(0);
    const bad = bytes.slice();
    bad[at + 2] = 0x62; // "ac" -> "ab"
    expect(code(() => load(bad))).toBe(ErrorCode.SchemaInvalid);
    expect(raise(() => load(bad)) as Error).toHaveProperty("message", expect.stringMatching(/duplicate key/));
  });

  it("refuses a deflated frame whose announced size is too large, wrong, or past the ratio", () => {
    const d = createDoc({ schema: s, docId: "d", replicaId: "a", clock: () => 5 });
    for (let k = 0; k < 50; k++) d.set([`key-${k}`], `value-${k}`);
    const good = d.snapshotBinary();
    expect(good[3]).toBe(1);
    const varint = (n: number): number[] => {
      const out: number[] = [];
      while (n >= 0x80) {
        out.push((n % 0x80) | 0x80);
        n = Math.floor(n / 0x80);
      }
      out.push(n);
      return out;
    };
    // The announced length: a varint after the 4-byte head.
    let p = 4;
    let len = 0;
    for (let mul = 1; ; mul *= 0x80) {
      const b = good[p++] as number;
      len += (b & 0x7f) * mul;
      if (b < 0x80) break;
    }
    const payload = good.subarray(p);
    const frame = (n: number, body: Uint8Array = payload) =>
      new Uint8Array([...good.subarray(0, 4), ...varint(n), ...body]);
    expect(load(frame(len)).get()).toEqual(d.get());
    const message = (b: Uint8Array): string => {
      const e = raise(() => load(b));
      expect(e).toBeInstanceOf(ValidationError);
      expect((e as ValidationError).code).toBe(ErrorCode.SchemaInvalid);
      return (e as Error).message;
    };
    // Refused before anything is allocated or inflated.
    expect(message(frame(2 ** 40))).toMatch(/larger than/);
    expect(message(frame(2 ** 53 - 1))).toMatch(/larger than|varint/);
    expect(message(frame(payload.length * 1032 + 1))).toMatch(/body of/);
    expect(message(frame(len - 1))).toMatch(/inflates to/);
    expect(message(frame(len + 1))).toMatch(/inflates to/);
    // A bomb: 4 MiB of zeros deflated to a few KiB, announced as small.
    const bomb = deflateSync(new Uint8Array(4 * 2 ** 20));
    expect(message(frame(100, bomb))).toMatch(/inflates to|deflate/);
  });

  it("loads a Uint8Array of another realm", () => {
    const d = createDoc({ schema: s, docId: "d", replicaId: "a", clock: () => 5 });
    d.set(["a"], [1, 2, 3]);
    for (const compress of [true, false]) {
      const bytes = d.snapshotBinary({ compress });
      const foreign = runInNewContext("new Uint8Array(bytes)", { bytes: [...bytes] }) as Uint8Array;
      expect(foreign instanceof Uint8Array).toBe(false);
      expect(load(foreign).get()).toEqual(d.get());
      expect(decodeSnapshotBinary(foreign)).toEqual(decodeSnapshotBinary(bytes));
    }
  });

  it("releases the shared writer when an encode throws", () => {
    const d = createDoc({ schema: s, docId: "d", replicaId: "a", clock: () => 5 });
    d.set(["a"], 1);
    const forged = jsonTrip(d.snapshot()) as Snapshot;
    // A state holding a tag that is no HLC (as an unchecked rem op once let in): refused, not 0.
    const state = decodeState((forged as unknown as { state: unknown }).state).state;
    state.lastHlc.set("a", "not-an-hlc-at-all-here");
    expect(code(() => encodeStateBinary(toDocId("d"), { a: 1 }, state, new Map()))).toBe(
      ErrorCode.SchemaInvalid,
    );
    // The next encode starts clean.
    const bytes = d.snapshotBinary();
    expect(load(bytes).get()).toEqual(d.get());
    expect(bytes).toEqual(d.snapshotBinary());
  });

  it("refuses a remote rem op whose tag is not an HLC; the doc still snapshots and reloads", () => {
    const schema2 = z.object({ members: addWinsSet(z.string()) });
    const a = createDoc({
      schema: schema2,
      docId: "d",
      replicaId: "a",
      clock: () => 5,
      initial: { members: [] },
    });
    a.add(["members"], "x");
    const bad = {
      doc: "d",
      origin: "b",
      seq: 1,
      hlc: encodeHlc({ ms: 6, counter: 0, node: "b" }),
      ops: [{ kind: "rem", path: ["members"], value: "x", tags: ["zzz"] }],
    };
    const r = a.applyRemote([bad]);
    expect(r.applied).toHaveLength(0);
    expect(r.rejected).toHaveLength(1);
    expect(r.rejected[0]?.error.code).toBe(ErrorCode.OpInvalid);
    const e = raise(() => decodeChange(bad));
    expect(e).toBeInstanceOf(ValidationError);
    expect((e as ValidationError).code).toBe(ErrorCode.OpInvalid);
    // A well-formed tag is still taken.
    expect(
      a.applyRemote([
        { ...bad, ops: [{ ...bad.ops[0], tags: [encodeHlc({ ms: 5, counter: 0, node: "a" })] }] },
      ]).applied,
    ).toHaveLength(1);
    for (const snapshot of [a.snapshot(), a.snapshotBinary()]) {
      const back = createDoc({ schema: schema2, docId: "d", replicaId: "c", snapshot });
      expect(back.get()).toEqual(a.get());
    }
  });
});
