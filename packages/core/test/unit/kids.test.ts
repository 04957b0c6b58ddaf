import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { hashKey, Kids } from "../../src/crdt/kids.js";

type Node = { readonly name: string };
type Entry = { kind: "leaf"; v: number; h: string; i: number } | { kind: "node"; node: Node };

/** Every live entry of a table, by key. */
function contents(kids: Kids<Node>): Map<string, Entry> {
  const out = new Map<string, Entry>();
  for (let e = 0; e < kids.end; e++) {
    const key = kids.key[e];
    if (key === undefined) continue;
    expect(out.has(key)).toBe(false);
    out.set(
      key,
      kids.isLeaf(e)
        ? { kind: "leaf", v: kids.val[e] as number, h: kids.h[e] as string, i: kids.i[e] as number }
        : { kind: "node", node: kids.val[e] as Node },
    );
  }
  return out;
}

const op = fc.oneof(
  fc.record({ t: fc.constant("leaf" as const), k: fc.integer({ min: 0, max: 300 }), v: fc.integer() }),
  fc.record({ t: fc.constant("node" as const), k: fc.integer({ min: 0, max: 300 }) }),
  fc.record({ t: fc.constant("del" as const), k: fc.integer({ min: 0, max: 300 }) }),
);

describe("Kids (the hash table of a node's children)", () => {
  it("behaves as a Map of key to leaf or node through adds, updates, removals and compactions", () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 2000 }), (ops) => {
        const kids = new Kids<Node>();
        const model = new Map<string, Entry>();
        let n = 0;
        for (const o of ops) {
          // Keys that share prefixes and lengths, and one that is empty.
          const key = o.k === 0 ? "" : `key/${o.k % 7}/${o.k}`;
          const e = kids.find(key);
          expect(e >= 0).toBe(model.has(key));
          if (o.t === "del") {
            if (e >= 0) kids.remove(e);
            model.delete(key);
          } else if (o.t === "leaf") {
            const entry: Entry = { kind: "leaf", v: o.v, h: `h${n}`, i: n % 5 };
            if (e >= 0) kids.setLeaf(e, entry.v, entry.h, entry.i);
            else kids.addLeaf(key, entry.v, entry.h, entry.i);
            model.set(key, entry);
          } else {
            const entry: Entry = { kind: "node", node: { name: `n${n}` } };
            if (e >= 0) kids.setNode(e, entry.node);
            else kids.addNode(key, entry.node);
            model.set(key, entry);
          }
          n++;
          expect(kids.size).toBe(model.size);
        }
        expect(contents(kids)).toEqual(model);
        for (const key of model.keys()) expect(kids.key[kids.find(key)]).toBe(key);
        expect(kids.find("absent")).toBe(-1);
      }),
      { seed: 7, numRuns: 60 },
    );
  });

  it("keeps the columns proportional to the live keys when most keys come and go", () => {
    const kids = new Kids<Node>();
    for (let round = 0; round < 50; round++) {
      for (let j = 0; j < 1000; j++) kids.addLeaf(`r${round}-${j}`, j, "h", 0);
      for (let j = 0; j < 1000; j++) if (j % 10 !== 0) kids.remove(kids.find(`r${round}-${j}`));
    }
    expect(kids.size).toBe(5000);
    // Removed entries are dropped from the columns as insertions go on.
    expect(kids.end).toBeLessThan(3 * kids.size);
    expect(kids.nodeAt("r49-10")).toBeUndefined();
    expect(kids.val[kids.find("r49-10")]).toBe(10);
    expect(kids.find("r49-11")).toBe(-1);
  });

  it("gives up its own index for a Map when keys are made to collide, and stays correct", () => {
    // Keys whose hashes share their low 12 bits: one probe run for every table up to 4096 slots.
    const colliding: string[] = [];
    for (let c = 0; colliding.length < 700; c++) {
      const k = `x${c.toString(36)}`;
      if ((hashKey(k) & 0xfff) === 0x5a5) colliding.push(k);
    }
    const kids = new Kids<Node>();
    for (const [j, k] of colliding.entries()) kids.addLeaf(k, j, "h", 0);
    expect(kids.degraded).toBe(true);
    for (const [j, k] of colliding.entries()) expect(kids.val[kids.find(k)]).toBe(j);
    // Removals, compactions and re-adds go on through the Map.
    for (let j = 0; j < 600; j++) kids.remove(kids.find(colliding[j] as string));
    for (let j = 0; j < 50; j++) kids.addNode(`after-${j}`, { name: `n${j}` });
    expect(kids.size).toBe(150);
    expect(kids.find(colliding[0] as string)).toBe(-1);
    expect(kids.val[kids.find(colliding[650] as string)]).toBe(650);
    expect(kids.nodeAt("after-7")).toEqual({ name: "n7" });
    expect(kids.end).toBeLessThan(3 * kids.size);
  });

  it("keeps its own index for ordinary keys (100,000 of them)", () => {
    const kids = new Kids<Node>();
    for (let j = 0; j < 100_000; j++) kids.addLeaf(`key-${j}`, j, "h", 0);
    expect(kids.degraded).toBe(false);
    expect(kids.val[kids.find("key-99999")]).toBe(99999);
  });
});
