import { describe, expect, it } from "vitest";
import { z } from "zod";
import { createDoc } from "../../src/doc.js";

const schema = z.object({ items: z.record(z.string(), z.number()) });
const make = (now: () => number) =>
  createDoc({ schema, docId: "d", replicaId: "gw1.a", clock: now, initial: { items: {} } });

describe("replica identity across incarnations", () => {
  it("a doc that receives a snapshot covering its own origin continues after it (no seq reused)", () => {
    let t = 1_000;
    const earlier = make(() => t++);
    for (let i = 0; i < 5; i++) earlier.set(["items", `k${i}`], i);
    // A new incarnation of the same replica id on empty storage, with a clock behind the earlier one.
    const later = make(() => 10);
    later.applySnapshot(earlier.snapshot());
    const next = later.set(["items", "new"], 9);
    expect(next.seq).toBe(6);
    expect(next.hlc > (earlier.changesSince({}).at(-1)?.hlc ?? "")).toBe(true);
    // And the earlier incarnation's replicas accept it.
    expect(earlier.applyRemote([next]).applied).toHaveLength(1);
    expect(earlier.get()).toEqual(later.get());
  });

  it("a doc that pulls its own origin's earlier changes continues after them", () => {
    let t = 1_000;
    const earlier = make(() => t++);
    for (let i = 0; i < 3; i++) earlier.set(["items", `k${i}`], i);
    const later = make(() => 10);
    expect(later.applyRemote(earlier.changesSince({})).applied).toHaveLength(3);
    expect(later.set(["items", "x"], 1).seq).toBe(4);
  });
});
