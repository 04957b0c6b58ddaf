import { describe, expect, it, vi } from "vitest";
import { z } from "zod";
import {
  addWinsSet,
  type Change,
  counter,
  createDoc,
  decodeChanges,
  ErrorCode,
  encodeChanges,
  encodeHlc,
  ValidationError,
} from "../../src/index.js";

// The examples of docs/core.md and docs/protocol.md, run as written (with a fake clock in place of
// Date.now so that they are deterministic).
let now = 1_700_000_000_000;
const clock = () => now;

const schema = z.object({
  routes: z.record(z.string(), z.object({ host: z.string(), port: z.number().int().min(1) })),
  flags: z.object({ maintenance: z.boolean() }),
  hits: counter(),
  nodes: addWinsSet(z.string()),
});
const initial = { routes: {}, flags: { maintenance: false }, hits: 0, nodes: [] };

describe("docs/core.md", () => {
  it("quick start", () => {
    const a = createDoc({ schema, docId: "gateway", replicaId: "node-a", clock, initial });
    const b = createDoc({ schema, docId: "gateway", replicaId: "node-b", clock, initial });

    a.change((d) => {
      d.routes.api = { host: "10.0.0.2", port: 8080 };
      d.hits += 1;
      d.nodes.push("node-a");
    });
    b.increment(["hits"], 2);

    b.applyRemote(a.changesSince(b.version()));
    a.applyRemote(b.changesSince(a.version()));

    expect(a.get()).toEqual({
      routes: { api: { host: "10.0.0.2", port: 8080 } },
      flags: { maintenance: false },
      hits: 3,
      nodes: ["node-a"],
    });
    expect(b.get()).toEqual(a.get());
  });

  it("reading: subscribe fires when the selected slice changes", () => {
    const doc = createDoc({ schema, docId: "gateway", replicaId: "node-a", clock, initial });
    const log = vi.fn();
    const off = doc.subscribe(
      (s) => s.routes.api,
      (route) => log("api route is now", route),
    );
    doc.increment(["hits"]);
    expect(log).not.toHaveBeenCalled();
    doc.set(["routes", "api"], { host: "h", port: 1 });
    expect(log).toHaveBeenCalledWith("api route is now", { host: "h", port: 1 });
    off();
  });

  it("writing: change(), then helpers and batch; an invalid change throws and applies nothing", () => {
    const doc = createDoc({
      schema,
      docId: "gateway",
      replicaId: "node-a",
      clock,
      initial: {
        ...initial,
        routes: { old: { host: "x", port: 1 }, api: { host: "a", port: 1 } },
        nodes: ["node-c"],
      },
    });
    const change = doc.change((d) => {
      d.routes.web = { host: "10.0.0.3", port: 80 };
      d.flags.maintenance = true;
      delete d.routes.old;
      d.hits += 5;
      d.nodes = d.nodes.filter((n) => n !== "node-c");
    }) as Change;
    expect(change.seq).toBe(1);
    expect(change.ops.map((o) => o.kind).sort()).toEqual(["del", "inc", "rem", "set", "set", "set", "set"]);

    doc.set(["routes", "api", "port"], 9090);
    doc.batch((w) => {
      w.set(["routes", "a"], { host: "10.0.0.4", port: 80 });
      w.set(["routes", "b"], { host: "10.0.0.5", port: 80 });
      w.increment(["hits"]);
    });
    expect(doc.get()).toEqual({
      routes: {
        api: { host: "a", port: 9090 },
        web: { host: "10.0.0.3", port: 80 },
        a: { host: "10.0.0.4", port: 80 },
        b: { host: "10.0.0.5", port: 80 },
      },
      flags: { maintenance: true },
      hits: 6,
      nodes: [],
    });

    const before = doc.get();
    let error: unknown;
    try {
      doc.change((d) => {
        d.routes.api = { host: "a", port: 0 };
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).code).toBe(ErrorCode.SchemaInvalid);
    expect((error as ValidationError).issues[0]?.path).toEqual(["routes", "api", "port"]);
    expect(doc.get()).toBe(before);
    expect(doc.version()).toEqual({ "node-a": 3 });
  });

  it("replicating: rejected changes are reported, never thrown", () => {
    const b = createDoc({ schema, docId: "gateway", replicaId: "node-b", clock, initial });
    const warn = vi.fn();
    const incoming: unknown[] = [
      { doc: "gateway", origin: "node-a", seq: 1, hlc: "not-an-hlc-at-all-really", ops: [] },
      42,
    ];
    const result = b.applyRemote(incoming);
    for (const { error } of result.rejected) warn(error.code, error.message);
    expect(warn.mock.calls.map((c) => c[0])).toEqual([ErrorCode.HlcInvalid, ErrorCode.OpInvalid]);
  });

  it("creating: a restarted replica continues after `last`", () => {
    const a = createDoc({ schema, docId: "gateway", replicaId: "node-a", clock, initial });
    const snapshot = a.snapshot();
    const c1 = a.increment(["hits"]) as Change;
    now -= 5_000; // the wall clock went back
    const restarted = createDoc({ schema, docId: "gateway", replicaId: "node-a", clock, snapshot, last: c1 });
    const c2 = restarted.increment(["hits"]) as Change;
    expect(c2.seq).toBe(2);
    expect(c2.hlc > c1.hlc).toBe(true);
  });
});

describe("docs/protocol.md", () => {
  it("HLC encoding example", () => {
    expect(encodeHlc({ ms: 1000, counter: 2, node: "node-a" })).toBe("0000000003e8000002node-a");
  });

  it("the snapshot example", () => {
    const s = z.object({
      routes: z.record(z.string(), z.string()),
      hits: counter(),
      members: addWinsSet(z.string()),
    });
    const init = { routes: {}, hits: 0, members: [] };
    const a = createDoc({
      schema: s,
      docId: "gateway",
      replicaId: "node-a",
      clock: () => 1000,
      initial: init,
    });
    const b = createDoc({
      schema: s,
      docId: "gateway",
      replicaId: "node-b",
      clock: () => 1000,
      initial: init,
    });
    a.batch((w) => {
      w.set(["routes", "x"], "1");
      w.set(["routes", "y"], "2");
      w.increment(["hits"], 2);
    });
    a.batch((w) => {
      w.add(["members"], "node-c");
      w.delete(["routes", "y"]);
    });
    b.increment(["hits"], 3);
    b.applyRemote(a.changesSince({}));
    expect(b.get()).toEqual({ routes: { x: "1" }, hits: 5, members: ["node-c"] });
    expect(JSON.parse(JSON.stringify(b.snapshot()))).toEqual({
      format: 1,
      doc: "gateway",
      version: { "node-b": 1, "node-a": 2 },
      state: {
        r: ["node-a", "node-b", ""],
        t: [1000, 0, 0, 0, 0, 1, 0, 1, 0],
        m: 3,
        sep: ",",
        last: { "node-b": 2, "node-a": 3 },
        root: {
          c: [
            "routes,hits,members",
            [
              { m: 0, c: ["x,y", ["1", { s: [10] }], [3]] },
              { k: "c", n: [2, 1, 0, 1, 6, 3, 0, 5, 2] },
              { m: 2, k: "s", e: [["node-c", [9]]] },
            ],
            [],
          ],
        },
      },
    });
    // The change batch example: the same three changes, as one encodeChanges batch.
    const batch = JSON.parse(JSON.stringify(encodeChanges(b.changesSince({}))));
    expect(batch).toEqual({
      doc: "gateway",
      sep: ",",
      sep2: "|",
      g: [
        {
          o: "node-a",
          s: 1,
          h: [-1000, 1],
          n: [3, 2],
          k: "ssiad",
          p: "routes|x,routes|y,hits,members,routes|y",
          v: ["1", "2", 2, "node-c"],
        },
        { o: "node-b", s: 1, h: [-1000], n: 1, k: "i", p: "hits", v: [3] },
      ],
    });
    const c = createDoc({
      schema: s,
      docId: "gateway",
      replicaId: "node-c",
      clock: () => 1000,
      initial: init,
    });
    c.applyRemote(decodeChanges(batch));
    expect(c.get()).toEqual(b.get());
  });
});
