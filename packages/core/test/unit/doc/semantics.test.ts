import { describe, expect, it } from "vitest";
import { z } from "zod";
import { createDoc, type Doc } from "../../../src/doc/doc.js";
import type { Change } from "../../../src/model/change.js";
import { addWinsSet, counter } from "../../../src/model/schema.js";
import { wire } from "./fixtures.js";

// The worked examples of docs/protocol.md. Each replica has its own wall clock so that the tests
// choose which write is newer.
const schema = z.object({
  routes: z.record(z.string(), z.object({ host: z.string().optional(), port: z.number().optional() })),
  cfg: z.union([z.number(), z.object({ a: z.number().optional(), b: z.number().optional() })]).optional(),
  hits: counter(),
  counts: z.record(z.string(), counter()),
  members: addWinsSet(z.string()),
});
const initial = { routes: {}, hits: 0, counts: {}, members: [] };

function replica(id: string) {
  let t = 1000;
  const doc = createDoc({ schema, docId: "d", replicaId: id, clock: () => t, initial });
  return Object.assign(doc, {
    at(ms: number) {
      t = ms;
      return doc;
    },
  });
}
const both = (x: Change | undefined, y: Change | undefined) =>
  wire([x, y].filter((c) => c !== undefined) as Change[]);
/** Delivers each side's changes to the other, in both orders, and returns the converged state. */
function exchange(a: Doc<z.output<typeof schema>>, b: Doc<z.output<typeof schema>>) {
  const fromA = wire(a.changesSince(b.version()));
  const fromB = wire(b.changesSince(a.version()));
  expect(b.applyRemote(fromA).rejected).toEqual([]);
  expect(a.applyRemote(fromB).rejected).toEqual([]);
  expect(a.get()).toEqual(b.get());
  return a.get();
}

describe("which write wins (docs/protocol.md examples)", () => {
  it("1. same path: the higher HLC wins; equal ms and counter fall back to the replica id", () => {
    const a = replica("a"); // both clocks at 1000
    const b = replica("b");
    a.set(["routes", "r"], { host: "from-a" });
    b.set(["routes", "r"], { host: "from-b" });
    expect(exchange(a, b).routes.r).toEqual({ host: "from-b" }); // "…000000b" > "…000000a"
    a.at(2000).set(["routes", "r", "host"], "a-later");
    b.at(1500).set(["routes", "r", "host"], "b-earlier");
    expect(exchange(a, b).routes.r).toEqual({ host: "a-later" });
  });

  it("2. objects merge per key: concurrent writes to different keys both survive", () => {
    const a = replica("a");
    const b = replica("b");
    a.set(["routes", "r"], { host: "h" });
    exchange(a, b);
    a.at(2000).set(["routes", "r", "host"], "h2");
    b.at(2000).set(["routes", "r", "port"], 443);
    expect(exchange(a, b).routes.r).toEqual({ host: "h2", port: 443 });
  });

  it("3. delete vs a concurrent older set below it: the delete wins, no resurrection", () => {
    const a = replica("a");
    const b = replica("b");
    a.set(["routes", "r"], { host: "h", port: 80 });
    exchange(a, b);
    b.at(1500).set(["routes", "r", "port"], 8080); // older
    a.at(2000).delete(["routes", "r"]); // newer
    expect(exchange(a, b).routes).toEqual({});
  });

  it("4. delete vs a concurrent newer set below it: the set survives, alone (older siblings stay deleted)", () => {
    const a = replica("a");
    const b = replica("b");
    a.set(["routes", "r"], { host: "h", port: 80 });
    exchange(a, b);
    a.at(2000).delete(["routes", "r"]); // older
    b.at(2500).set(["routes", "r", "port"], 8080); // newer
    expect(exchange(a, b).routes).toEqual({ r: { port: 8080 } });
  });

  it("5. a scalar replacing an object vs a concurrent write inside it: the newest wins", () => {
    const a = replica("a");
    const b = replica("b");
    a.set(["cfg"], { a: 1, b: 2 });
    exchange(a, b);
    a.at(3000).set(["cfg"], 5); // newer scalar hides everything older below
    b.at(2000).set(["cfg", "a"], 10);
    expect(exchange(a, b).cfg).toBe(5);
    b.at(4000).set(["cfg"], { a: 7 }); // an object again: keys older than the scalar stay hidden
    expect(exchange(a, b).cfg).toEqual({ a: 7 });
  });

  it("6. inside one change, later ops win over earlier ones on the same path", () => {
    const a = replica("a");
    const b = replica("b");
    a.batch((w) => {
      w.set(["routes", "r"], { host: "x" });
      w.delete(["routes", "r"]);
      w.set(["routes", "r", "port"], 1);
    });
    expect(a.get().routes).toEqual({ r: { port: 1 } });
    expect(exchange(a, b).routes).toEqual({ r: { port: 1 } });
  });

  it("7. counters: concurrent increments add up, in any order", () => {
    const a = replica("a");
    const b = replica("b");
    a.change((d) => {
      d.hits += 2;
    });
    b.increment(["hits"], 3);
    b.increment(["hits"], -1);
    expect(exchange(a, b).hits).toBe(4);
  });

  it("8. counters: a delete drops the increments older than it, newer ones count from zero", () => {
    const a = replica("a");
    const b = replica("b");
    a.increment(["counts", "x"], 5);
    exchange(a, b);
    a.at(1500).increment(["counts", "x"], 1); // older than the delete: dropped
    b.at(2000).delete(["counts", "x"]);
    a.at(2500).increment(["counts", "x"], 2); // newer: counts again
    expect(exchange(a, b).counts).toEqual({ x: 2 });
  });

  it("9. add-wins set: a remove cancels only the adds it saw; a concurrent add wins", () => {
    const a = replica("a");
    const b = replica("b");
    a.add(["members"], "m");
    exchange(a, b);
    b.at(3000).remove(["members"], "m"); // saw a's add only
    a.at(2000).change((d) => {
      d.members = [];
    });
    a.at(2100).add(["members"], "m"); // a concurrent re-add (older HLC than the remove, still wins)
    expect(exchange(a, b).members).toEqual(["m"]);
  });

  it("10. add-wins set: a remove that arrives before the add it cancels still cancels it", () => {
    const a = replica("a");
    const b = replica("b");
    const c = replica("c");
    const add = a.add(["members"], "m");
    b.applyRemote(both(add, undefined));
    const rem = b.remove(["members"], "m");
    c.applyRemote(both(rem, undefined)); // the remove first
    expect(c.get().members).toEqual([]);
    c.applyRemote(both(add, undefined));
    expect(c.get().members).toEqual([]);
    expect(b.get().members).toEqual([]);
  });

  it("11. the initial state is older than every change (even one stamped at wall time 0)", () => {
    const start = { ...initial, routes: { r: { host: "init", port: 1 } } };
    const a = createDoc({ schema, docId: "d", replicaId: "a", clock: () => 0, initial: start });
    const b = createDoc({ schema, docId: "d", replicaId: "b", clock: () => 0, initial: start });
    a.set(["routes", "r", "host"], "x");
    b.delete(["routes", "r", "port"]);
    b.applyRemote(wire(a.changesSince({})));
    expect(exchange(a, b).routes).toEqual({ r: { host: "x" } });
  });
});
