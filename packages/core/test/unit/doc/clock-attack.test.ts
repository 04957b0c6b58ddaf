import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeHlc, HLC_COUNTER_LIMIT, HLC_MAX_COUNTER, HLC_MAX_MS } from "../../../src/clock/hlc.js";
import { createDoc } from "../../../src/doc/doc.js";
import { ErrorCode } from "../../../src/errors/errors.js";
import type { Change } from "../../../src/model/change.js";
import { fakeClock, initial, newDoc, schema } from "./fixtures.js";

/** A change of origin `x` (seq 1) re-stamped as an attacker would. */
function forged(ms: number, counter: number): Change {
  const x = createDoc({ schema, docId: "doc", replicaId: "x", initial });
  const c = JSON.parse(JSON.stringify(x.set(["kv", "k"], 1))) as Change;
  return { ...c, hlc: encodeHlc({ ms, counter, node: "x" }) };
}

describe("a poisoned remote stamp (audit finding 3)", () => {
  it("is refused with hlc/invalid when its counter is saturated, and local writes go on", () => {
    const clock = fakeClock();
    const b = newDoc("b", clock.now);
    const r = b.applyRemote([forged(clock.now() + 55_000, HLC_MAX_COUNTER)]);
    expect(r.applied).toEqual([]);
    expect(r.rejected.map((x) => x.error.code)).toEqual([ErrorCode.HlcInvalid]);
    for (let i = 0; i < 100; i++) expect(b.set(["kv", `w${i}`], i)).toBeDefined();
  });

  it("at the counter limit inside the drift limit is taken, and local writes move to the next ms", () => {
    const clock = fakeClock();
    const b = newDoc("b", clock.now);
    const ms = clock.now() + 59_000;
    expect(b.applyRemote([forged(ms, HLC_COUNTER_LIMIT)]).applied).toHaveLength(1);
    const c1 = b.set(["kv", "after"], 1) as Change;
    expect(c1.hlc).toBe(encodeHlc({ ms: ms + 1, counter: 0, node: "b" }));
    const c2 = b.set(["kv", "after"], 2) as Change;
    expect(c2.hlc > c1.hlc).toBe(true);
  });

  it("without a wall clock, a stamp far ahead of the doc's latest one is refused with hlc/drift", () => {
    const b = createDoc({ schema, docId: "doc", replicaId: "b", initial });
    const r = b.applyRemote([forged(HLC_MAX_MS, 0)]);
    expect(r.rejected.map((x) => x.error.code)).toEqual([ErrorCode.HlcDrift]);
    expect(b.set(["kv", "k"], 2)).toBeDefined();
    // Logical peers (no wall clock either) still sync both ways.
    const a = createDoc({ schema, docId: "doc", replicaId: "a", initial });
    a.set(["kv", "a"], 1);
    expect(b.applyRemote(a.changesSince({})).applied).toHaveLength(1);
    expect(a.applyRemote(b.changesSince({})).applied).toHaveLength(1);
    expect(a.get()).toEqual(b.get());
  });

  it("property: local writes never throw and stay monotonic, whatever stamps arrive", () => {
    const event = fc.oneof(
      fc.record({ t: fc.constant("set" as const), n: fc.integer({ min: 1, max: 5 }) }),
      fc.record({ t: fc.constant("wall" as const), by: fc.integer({ min: -2_000, max: 2_000 }) }),
      fc.record({
        t: fc.constant("remote" as const),
        ahead: fc.integer({ min: -1_000, max: 70_000 }),
        counter: fc.oneof(
          fc.integer({ min: 0, max: 10 }),
          fc.integer({ min: HLC_COUNTER_LIMIT - 2, max: HLC_MAX_COUNTER }),
        ),
      }),
    );
    fc.assert(
      fc.property(fc.boolean(), fc.array(event, { minLength: 1, maxLength: 40 }), (walled, events) => {
        const clock = fakeClock();
        const b = walled
          ? newDoc("b", clock.now)
          : createDoc({ schema, docId: "doc", replicaId: "b", initial });
        let origin = 0;
        let writes = 0;
        let last = "";
        let highest = "";
        for (const e of events) {
          if (e.t === "wall") clock.advance(e.by);
          else if (e.t === "set") {
            for (let i = 0; i < e.n; i++) {
              const c = b.set(["kv", "k"], writes++) as Change;
              expect(c.hlc > last && c.hlc > highest).toBe(true);
              last = c.hlc;
            }
          } else {
            const base = walled ? clock.now() : Number.parseInt(last.slice(0, 12) || "0", 16);
            const ms = Math.max(0, base + e.ahead);
            const x = createDoc({ schema, docId: "doc", replicaId: `x${origin++}`, initial });
            const c = JSON.parse(JSON.stringify(x.set(["kv", "x"], 1))) as Change;
            const hlc = encodeHlc({ ms, counter: e.counter, node: c.origin });
            const r = b.applyRemote([{ ...c, hlc }]);
            if (r.applied.length === 1 && hlc > highest) highest = hlc;
            if (e.counter > HLC_COUNTER_LIMIT) expect(r.applied).toEqual([]);
          }
        }
      }),
      { seed: 20261207, numRuns: 200 },
    );
  });
});
