import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { encodeHlc } from "../../../src/clock/hlc.js";
import { decodeChange } from "../../../src/codec/change-codec.js";
import {
  decodeChanges,
  decodeOwnChanges,
  encodeChanges,
  MAX_CHANGES_PER_BATCH,
} from "../../../src/codec/changes-codec.js";
import { createDoc } from "../../../src/doc/doc.js";
import { ErrorCode } from "../../../src/errors/errors.js";
import type { Change } from "../../../src/model/change.js";
import { counter } from "../../../src/model/schema.js";
import { actionArb, code, jsonTrip, runActions } from "../doc/fixtures.js";

const params = { seed: 20261207, numRuns: 100 };
const actions = fc.array(actionArb(3), { minLength: 1, maxLength: 80, size: "max" });

/** A change of origin "a" with the given ops, at (ms, counter). */
const change = (seq: number, ms: number, counter: number, ops: unknown[]): Change =>
  decodeChange({ doc: "d", origin: "a", seq, hlc: encodeHlc({ ms, counter, node: "a" }), ops });

describe("change batches, format 2", () => {
  it("decodes to the same changes as format 1, and the same after a JSON round trip", () => {
    fc.assert(
      fc.property(actions, fc.boolean(), (acts, shuffle) => {
        const { changes } = runActions(acts);
        const list = shuffle ? [...changes].reverse() : changes;
        const v1 = decodeChanges(jsonTrip(encodeChanges(list)));
        const e2 = encodeChanges(list, { format: 2 });
        expect(e2.f).toBe(2);
        expect(decodeChanges(jsonTrip(e2))).toEqual(v1);
        expect(decodeOwnChanges(jsonTrip(e2))).toEqual(v1);
      }),
      params,
    );
  });

  it("writes a run of identical changes once, and a repeated HLC delta once with its count", () => {
    const ops = [{ kind: "inc", path: ["c"], value: 1 }];
    const list = [
      change(1, 1000, 0, ops),
      change(2, 1000, 1, ops),
      change(3, 1000, 2, ops),
      change(4, 1001, 0, ops),
      change(5, 1001, 1, [{ kind: "inc", path: ["c"], value: 2 }]),
      change(6, 1001, 2, [{ kind: "inc", path: ["c"], value: 2 }]),
      change(7, 1001, 4, [
        { kind: "rem", path: ["s"], value: "x", tags: [encodeHlc({ ms: 9, counter: 0, node: "b" })] },
      ]),
      change(8, 1001, 5, [
        { kind: "rem", path: ["s"], value: "x", tags: [encodeHlc({ ms: 9, counter: 0, node: "b" })] },
      ]),
      change(9, 1001, 6, [
        { kind: "rem", path: ["s"], value: "x", tags: [encodeHlc({ ms: 9, counter: 1, node: "b" })] },
      ]),
      change(10, 1002, 0, [
        { kind: "del", path: ["k", "x"] },
        { kind: "set", path: ["o"], value: { a: [1] } },
      ]),
      change(11, 1003, 0, [
        { kind: "del", path: ["k", "x"] },
        { kind: "set", path: ["o"], value: { a: [1] } },
      ]),
    ];
    const e = encodeChanges(list, { format: 2 });
    expect(e.r).toHaveLength(1);
    const run = e.r[0];
    expect(run?.m).toEqual([4, 2, 2, 1, 2]);
    expect(run?.h).toEqual([-1000, { r: 2, h: 1 }, -1, { r: 2, h: 1 }, 2, { r: 2, h: 1 }, { r: 2, h: -1 }]);
    expect(run?.n).toEqual([1, 1, 1, 1, 2]);
    expect(decodeChanges(jsonTrip(e))).toEqual(list);
  });

  it("keeps paths as arrays when no separator fits", () => {
    const seg = ",|/; ~^!#$*+=&@`'%";
    const list = [
      change(1, 5, 0, [{ kind: "set", path: [seg], value: 1 }]),
      change(2, 5, 1, [{ kind: "set", path: [seg], value: 1 }]),
    ];
    const e = encodeChanges(list, { format: 2 });
    expect(e.sep).toBeUndefined();
    expect(decodeChanges(jsonTrip(e))).toEqual(list);
  });

  it("a counter's run of one-increment changes costs a few bytes per millisecond", () => {
    const schema = z.object({ c: counter() });
    let t = 1_700_000_000_000;
    const doc = createDoc({
      schema,
      docId: "d",
      replicaId: "a",
      initial: { c: 0 },
      clock: () => {
        t += 0.01;
        return Math.floor(t);
      },
    });
    for (let k = 0; k < 5_000; k++) doc.increment(["c"]);
    const list = doc.changesSince({});
    const v1 = JSON.stringify(encodeChanges(list)).length;
    const v2 = JSON.stringify(encodeChanges(list, { format: 2 })).length;
    expect(v1).toBeGreaterThan(5_000 * 6);
    // 50 ms of stamps: about 20 bytes per ms.
    expect(v2).toBeLessThan(v1 / 25);
    expect(decodeChanges(JSON.parse(JSON.stringify(encodeChanges(list, { format: 2 }))))).toEqual(list);
  });

  it("is refused by a format 1 reader (no g), and malformed repeats are refused with op/invalid", () => {
    const ops = [{ kind: "inc", path: ["c"], value: 1 }];
    const e = jsonTrip(
      encodeChanges([change(1, 10, 0, ops), change(2, 10, 1, ops), change(3, 10, 2, ops)], { format: 2 }),
    );
    expect(code(() => decodeChanges({ ...e, f: undefined }))).toBe(ErrorCode.OpInvalid);
    expect(code(() => decodeChanges({ ...e, f: 3 }))).toBe(ErrorCode.OpInvalid);
    expect(() => encodeChanges([], { format: 3 as 2 })).toThrow();
    const run = e.r[0] as unknown as Record<string, unknown>;
    const withRun = (patch: Record<string, unknown>) => ({ ...e, r: [{ ...run, ...patch }] });
    expect(decodeChanges(withRun({}))).toHaveLength(3);
    expect(code(() => decodeChanges(withRun({ m: [2] })))).toBe(ErrorCode.OpInvalid);
    expect(code(() => decodeChanges(withRun({ m: [0, 3] })))).toBe(ErrorCode.OpInvalid);
    expect(code(() => decodeChanges(withRun({ h: [-10, { r: 1, h: 1 }, 1] })))).toBe(ErrorCode.OpInvalid);
    expect(code(() => decodeChanges(withRun({ h: [-10, { r: 2, h: "1" }] })))).toBe(ErrorCode.OpInvalid);
    expect(
      code(() =>
        decodeChanges(
          withRun({ h: [-10, { r: MAX_CHANGES_PER_BATCH, h: 1 }], m: [MAX_CHANGES_PER_BATCH + 1] }),
        ),
      ),
    ).toBe(ErrorCode.OpInvalid);
    // The later changes' stamps must still increase: a repeat of 0 gives equal HLCs, which the
    // document refuses (hlc order is checked where changes apply, as for format 1).
    const same = decodeChanges(withRun({ h: [-10, { r: 2, h: 0 }] }));
    expect(same[1]?.hlc).toBe(same[2]?.hlc);
  });
});

describe("change batches, format 2: malformed input", () => {
  it("refuses any corruption of a batch with an NxsError (op/invalid or hlc/invalid), never anything else", () => {
    const ops = [{ kind: "inc", path: ["c"], value: 1 }];
    const rem = [
      { kind: "rem", path: ["s"], value: "x", tags: [encodeHlc({ ms: 9, counter: 0, node: "b" })] },
    ];
    const base = jsonTrip(
      encodeChanges(
        [
          change(1, 1000, 0, ops),
          change(2, 1000, 1, ops),
          change(3, 1000, 2, ops),
          change(4, 1001, 0, rem),
          change(5, 1001, 1, rem),
          change(6, 1003, 0, [{ kind: "del", path: ["k", "x"] }]),
        ],
        { format: 2 },
      ),
    ) as unknown as Record<string, unknown>;
    const fields = ["o", "s", "h", "m", "n", "k", "p", "v", "t"] as const;
    fc.assert(
      fc.property(
        fc.constantFrom(...fields),
        fc.oneof(
          fc.anything(),
          fc.array(
            fc.oneof(
              fc.integer({ min: -3, max: 5 }),
              fc.record({ r: fc.integer({ min: -1, max: 5 }), h: fc.anything() }),
            ),
          ),
        ),
        (field, value) => {
          const run = { ...((base.r as unknown[])[0] as Record<string, unknown>), [field]: value };
          const input = { ...base, r: [run] };
          const got = code(() => decodeChanges(input));
          expect([undefined, ErrorCode.OpInvalid, ErrorCode.HlcInvalid]).toContain(got);
        },
      ),
      { seed: 20261207, numRuns: 500 },
    );
  });
});
