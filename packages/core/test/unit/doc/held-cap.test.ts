import { describe, expect, it } from "vitest";
import { z } from "zod";
import { createDoc } from "../../../src/doc/doc.js";
import type { Change } from "../../../src/model/change.js";

// Issue 13, item 5: changes held past a gap are capped (SECURITY-AUDIT.md: 7 MB sent cost 189 MB
// of heap); what is dropped is not lost, it comes again with the pull that fills the gap.

const schema = z.object({ items: z.record(z.string(), z.number()) });
const writer = () => {
  let t = 1_700_000_000_000;
  return createDoc({ schema, docId: "d", replicaId: "w", clock: () => t++, initial: { items: {} } });
};
const reader = (maxHeld?: { perOrigin?: number; total?: number }) =>
  createDoc({
    schema,
    docId: "d",
    replicaId: "r",
    clock: () => 1_700_000_000_000,
    maxDriftMs: 10 * 60_000,
    initial: { items: {} },
    ...(maxHeld === undefined ? {} : { maxHeld }),
  });
const wire = (cs: readonly Change[]) => JSON.parse(JSON.stringify(cs)) as unknown[];

describe("changes held past a gap", () => {
  it("are capped per origin, keeping those nearest the gap; the rest comes again once the gap is filled", () => {
    const w = writer();
    for (let i = 1; i <= 50; i++) w.set(["items", `k${i}`], i);
    const all = w.changesSince({});
    const r = reader({ perOrigin: 10 });
    const res = r.applyRemote(wire(all.slice(1)));
    expect(res.applied).toEqual([]);
    expect(res.held).toBe(10);
    expect(res.dropped).toBe(39);
    expect(r.heldCount()).toBe(10);
    expect(r.gaps()).toEqual({ w: 1 });
    // The gap is filled: what was held applies; the rest comes with the same pull.
    const fill = r.applyRemote(wire(all.slice(0, 1)));
    expect(fill.applied.map((c) => c.seq)).toEqual(Array.from({ length: 11 }, (_, i) => i + 1));
    r.applyRemote(wire(all.slice(11)));
    expect(r.get()).toEqual(w.get());
    expect(r.gaps()).toEqual({});
    expect(r.heldCount()).toBe(0);
  });

  it("are capped in all, across origins (many instances of one writer)", () => {
    const r = reader({ perOrigin: 100, total: 25 });
    let dropped = 0;
    for (let o = 0; o < 10; o++) {
      let t = 1_700_000_000_000;
      const w = createDoc({
        schema,
        docId: "d",
        replicaId: `w.i${o}`,
        clock: () => t++,
        initial: { items: {} },
      });
      for (let i = 1; i <= 6; i++) w.set(["items", `o${o}k${i}`], i);
      dropped += r.applyRemote(wire(w.changesSince({}).slice(1))).dropped ?? 0;
    }
    expect(dropped).toBe(10 * 5 - 25);
    expect(r.heldCount()).toBe(25);
    expect(Object.keys(r.gaps())).toHaveLength(5);
  });

  it("the default holds 1,000 per origin", () => {
    const w = writer();
    for (let i = 1; i <= 1_200; i++) w.set(["items", `k${i % 50}`], i);
    const r = reader();
    const res = r.applyRemote(wire(w.changesSince({}).slice(1)));
    expect(res.held).toBe(1_000);
    expect(res.dropped).toBe(199);
  });
});
