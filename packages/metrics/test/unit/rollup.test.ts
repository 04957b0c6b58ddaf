import {
  decodePoint,
  type MetricsPoint,
  makePoint,
  type PointData,
  pointId,
  pointSchema,
  rollupPoints,
  type SeriesValue,
} from "@nxs-sync/metrics";
import fc from "fast-check";
import { describe, expect, it } from "vitest";

const SEED = 20261207;
const bounds = [1, 10, 100];

/** A random window: a counter, a gauge and a histogram, each present or not. */
const windowData = fc
  .record({
    inc: fc.integer({ min: 0, max: 100 }),
    gauges: fc.array(fc.integer({ min: -1000, max: 1000 }), { minLength: 1, maxLength: 5 }),
    obs: fc.array(fc.integer({ min: 0, max: 200 }), { maxLength: 6 }),
  })
  .map(({ inc, gauges, obs }) => ({ inc, gauges, obs }));

function toPoints(node: string, windows: { inc: number; gauges: number[]; obs: number[] }[]): MetricsPoint[] {
  let total = 0;
  return windows.map((w, i) => {
    total += w.inc;
    const buckets = [0, 0, 0, 0];
    for (const o of w.obs)
      buckets[bounds.findIndex((b) => o <= b) === -1 ? 3 : bounds.findIndex((b) => o <= b)]!++;
    const s: Record<string, SeriesValue> = {
      c_total: ["c", w.inc, total],
      g: [
        "g",
        Math.min(...w.gauges),
        Math.max(...w.gauges),
        w.gauges.reduce((a, b) => a + b, 0),
        w.gauges.length,
        w.gauges.at(-1)!,
      ],
      h: ["h", w.obs.length, w.obs.reduce((a, b) => a + b, 0), ...buckets],
    };
    const data: PointData = { v: 1, b: { h: bounds }, s };
    return makePoint({ node, tier: "raw", start: i * 10_000, span: 10_000, n: 1, data });
  });
}

describe("rollups", () => {
  it("equal the model (min, max, sum, count, last; increases; bucket sums) for any windows, in any order", () => {
    fc.assert(
      fc.property(
        fc.array(windowData, { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 0, max: 1000 }),
        (ws, salt) => {
          const pts = toPoints("n1", ws);
          const shuffled = [...pts].sort(
            (a, b) => ((a.start * 7919 + salt) % 13) - ((b.start * 7919 + salt) % 13),
          );
          const r = rollupPoints("n1", "1m", 0, 120_000, shuffled);
          const all = ws.flatMap((w) => w.gauges);
          const obs = ws.flatMap((w) => w.obs);
          expect(r.n).toBe(ws.length);
          expect(r.data.s.c_total).toEqual([
            "c",
            ws.reduce((a, w) => a + w.inc, 0),
            ws.reduce((a, w) => a + w.inc, 0),
          ]);
          expect(r.data.s.g).toEqual([
            "g",
            Math.min(...all),
            Math.max(...all),
            all.reduce((a, b) => a + b, 0),
            all.length,
            ws.at(-1)!.gauges.at(-1),
          ]);
          const h = r.data.s.h as number[] & SeriesValue;
          expect(h[1]).toBe(obs.length);
          expect(h[2]).toBe(obs.reduce((a, b) => a + b, 0));
          expect(h.slice(3)).toEqual([
            obs.filter((o) => o <= 1).length,
            obs.filter((o) => o > 1 && o <= 10).length,
            obs.filter((o) => o > 10 && o <= 100).length,
            obs.filter((o) => o > 100).length,
          ]);
          // Deterministic and idempotent: same inputs, same record (id, rev, data).
          expect(rollupPoints("n1", "1m", 0, 120_000, pts)).toEqual(r);
          // Rolling up rollups of parts gives the rollup of the whole (tiers compose).
          const half = Math.ceil(pts.length / 2);
          const a = rollupPoints("n1", "30s", 0, 60_000, pts.slice(0, half));
          const parts =
            pts.slice(half).length > 0
              ? [a, rollupPoints("n1", "30s", 60_000, 60_000, pts.slice(half))]
              : [a];
          expect(rollupPoints("n1", "1m", 0, 120_000, parts).data).toEqual(r.data);
          expect(decodePoint(JSON.parse(JSON.stringify(r))).ok).toBe(true);
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
  });

  it("orders versions of one window: more flushes covered win, equal coverage by digest", () => {
    const pts = toPoints("n1", [
      { inc: 1, gauges: [1], obs: [] },
      { inc: 2, gauges: [2], obs: [5] },
    ]);
    const partA = rollupPoints("n1", "1m", 0, 60_000, [pts[0]!]);
    const partB = rollupPoints("n1", "1m", 0, 60_000, [pts[1]!]);
    const whole = rollupPoints("n1", "1m", 0, 60_000, pts);
    expect(whole.rev).toBeGreaterThan(Math.max(partA.rev, partB.rev));
    expect(partA.rev).not.toBe(partB.rev);
    expect(partA.id).toBe(whole.id);
    expect(whole.id).toBe(pointId("n1", "1m", 0));
  });

  it("refuses hostile records", () => {
    const good = toPoints("n1", [{ inc: 1, gauges: [1], obs: [1] }])[0]!;
    const cases: unknown[] = [
      { ...good, id: "aaaaaaaaaaaaaaa" },
      { ...good, data: "nope" },
      { ...good, data: { v: 1, b: {}, s: { h: ["h", 1, 1, 1] } } },
      { ...good, data: { v: 1, b: {}, s: { "Bad Key": ["c", 1, 1] } } },
      { ...good, data: { v: 1, b: {}, s: { g: ["g", 1, 1, 1, -1, 1] } } },
      { ...good, n: 0 },
      null,
    ];
    for (const c of cases) {
      expect(decodePoint(c).ok).toBe(false);
      // The hand decoder and the zod schema agree (the id check is the decoder's own).
      if (c !== null && (c as { id?: string }).id === good.id)
        expect(pointSchema.safeParse(c).success).toBe(false);
    }
    expect(decodePoint(good).ok).toBe(true);
    expect(pointSchema.safeParse(good).success).toBe(true);
  });

  it("the hand decoder accepts exactly what the zod schema accepts (seeded mutations)", () => {
    const good = toPoints("n1", [{ inc: 1, gauges: [1, 2], obs: [1, 50, 500] }])[0]!;
    const junk = fc.oneof(
      fc.constant(undefined),
      fc.constant(null),
      fc.integer({ min: -5, max: 5 }),
      fc.double(),
      fc.string({ maxLength: 4 }),
      fc.constant(["g", 1, 1, 1, 1, 1]),
      fc.constant(["h", 1, 1, 0, 1, 0, 0]),
      fc.constant(["c", 1]),
      fc.constant({}),
    );
    const paths = [
      "n",
      "span",
      "rev",
      "node",
      "tier",
      "data",
      "data.v",
      "data.b",
      "data.b.h",
      "data.s",
      "data.s.g",
      "data.s.h",
      "data.s.c_total",
      "data.s.Bad{",
      "data.b.h.0",
    ];
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom(...paths), junk), { minLength: 1, maxLength: 3 }),
        (edits) => {
          const rec = JSON.parse(JSON.stringify(good)) as Record<string, unknown>;
          for (const [path, value] of edits) {
            const keys = path.split(".");
            let at: Record<string, unknown> | undefined = rec;
            for (const k of keys.slice(0, -1))
              at =
                typeof at?.[k] === "object" && at[k] !== null
                  ? (at[k] as Record<string, unknown>)
                  : undefined;
            if (at !== undefined) at[keys.at(-1)!] = value;
          }
          expect(decodePoint(rec).ok).toBe(pointSchema.safeParse(rec).success);
        },
      ),
      { seed: SEED, numRuns: 500 },
    );
  });
});
